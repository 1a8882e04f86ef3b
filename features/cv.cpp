// The one C++ file: OpenCV called through extern "C" entry points that never throw.
#include "bf_cv.h"

extern "C" {
#include "bf_error.h"
#include "bf_out.h"
}

#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <exception>
#include <mutex>
#include <string>
#include <opencv2/core.hpp>
#include <opencv2/core/utils/logger.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <png.h>
#include <vector>

/* OpenCV reports through its log and its error callback, libpng (under OpenCV) through its own
 * stderr lines: bfm prints one message of its own, so both are silenced once here and every
 * failure comes back as a BF_E* code with bf_error_last(). */
static int cv_silent_error(int, const char *, const char *, const char *, int, void *) { return 0; }
static std::once_flag cv_once;
static void cv_quiet()
{
  std::call_once(cv_once, [] {
    cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_SILENT);
    cv::redirectError(cv_silent_error);
  });
}

/* PNG through libpng's simplified API, whose errors and warnings land in image.message rather
 * than on stderr (OpenCV's PNG decoder lets libpng print "libpng warning: ..." lines). */
static int png_decode(uint32_t **out, int *w, int *h, const void *buf, size_t len)
{
  png_image img;
  memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&img, buf, len))
    return bf_error_set(BF_EFORMAT, "PNG could not be decoded (%s)", img.message);
  if (img.width == 0 || img.height == 0 || (uint64_t)img.width * img.height > (1ull << 28)) {
    png_image_free(&img);
    return bf_error_set(BF_ELIMIT, "PNG of %u x %u pixels refused", img.width, img.height);
  }
  img.format = PNG_FORMAT_RGBA; /* alpha read and dropped, as OpenCV's IMREAD_COLOR does */
  size_t n = (size_t)img.width * img.height;
  uint8_t *rgb = (uint8_t *)malloc(n * 4);
  uint32_t *o = (uint32_t *)malloc(n * sizeof *o);
  int rc = 0;
  if (!rgb || !o) {
    png_image_free(&img);
    rc = bf_error_set(BF_ENOMEM, "out of memory decoding a PNG");
  } else if (!png_image_finish_read(&img, NULL, rgb, 0, NULL))
    rc = bf_error_set(BF_EFORMAT, "PNG could not be decoded (%s)", img.message);
  if (rc) {
    free(rgb);
    free(o);
    return rc;
  }
  for (size_t i = 0; i < n; i++)
    o[i] = (uint32_t)rgb[4 * i] << 16 | (uint32_t)rgb[4 * i + 1] << 8 | rgb[4 * i + 2];
  free(rgb);
  *out = o;
  *w = (int)img.width;
  *h = (int)img.height;
  return 0;
}

/* OpenCV's image codecs pull in ~100 shared libraries (GDAL, GDCM, ...) whose loading and
 * static constructors cost ~0.1 s of CPU at the start of every bfm command, most of which never
 * read or write an image. So they are opened on first use (BF_OPENCV_IMGCODECS: the library the
 * build found) and their two entry points looked up by their C++ names. */
namespace {
struct codecs {
  cv::Mat (*imdecode)(cv::InputArray, int);
  bool (*imencode)(const cv::String &, cv::InputArray, std::vector<uchar> &, const std::vector<int> &);
};

const codecs *load_codecs()
{
  static const codecs c = [] {
    codecs k = {};
    void *h = dlopen(BF_OPENCV_IMGCODECS, RTLD_NOW | RTLD_LOCAL);
    if (h) {
      k.imdecode = reinterpret_cast<decltype(k.imdecode)>(dlsym(h, "_ZN2cv8imdecodeERKNS_11_InputArrayEi"));
      k.imencode = reinterpret_cast<decltype(k.imencode)>(dlsym(
        h, "_ZN2cv8imencodeERKNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEERKNS_11_InputArrayERSt6vectorIhSaIhEERKSB_IiSaIiEE"));
    }
    return k;
  }();
  return c.imdecode && c.imencode ? &c : nullptr;
}
} // namespace

#define BF_CV_CODECS(k_)                                                                    \
  const codecs *k_ = load_codecs();                                                         \
  if (!k_)                                                                                  \
    return bf_error_set(BF_EIO, "OpenCV image codecs (%s) could not be loaded", BF_OPENCV_IMGCODECS);

#define BF_CV_TRY try {
#define BF_CV_CATCH(ctx_)                                                                   \
  }                                                                                         \
  catch (const std::exception &e)                                                           \
  {                                                                                         \
    return bf_error_set(BF_EFORMAT, "%s: OpenCV: %s", ctx_, e.what());                      \
  }                                                                                         \
  catch (...)                                                                               \
  {                                                                                         \
    return bf_error_set(BF_EFORMAT, "%s: OpenCV failed", ctx_);                             \
  }

static cv::Mat rgb_to_bgr_mat(const uint32_t *rgb, int w, int h)
{
  cv::Mat m(h, w, CV_8UC3);
  for (int y = 0; y < h; y++) {
    uint8_t *row = m.ptr<uint8_t>(y);
    for (int x = 0; x < w; x++) {
      uint32_t c = rgb[(size_t)y * w + x];
      row[3 * x] = c & 255;
      row[3 * x + 1] = (c >> 8) & 255;
      row[3 * x + 2] = (c >> 16) & 255;
    }
  }
  return m;
}

extern "C" int bf_cv_decode_rgb(uint32_t **out, int *w, int *h, const void *buf, size_t len)
{
  *out = NULL;
  static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (len >= 8 && !memcmp(buf, png_sig, 8))
    return png_decode(out, w, h, buf, len);
  cv_quiet();
  BF_CV_TRY
  BF_CV_CODECS(k)
  if (len == 0 || len > (size_t)INT32_MAX)
    return bf_error_set(BF_EFORMAT, "image is empty or too large");
  cv::Mat raw(1, (int)len, CV_8UC1, const_cast<void *>(buf));
  cv::Mat img = k->imdecode(raw, cv::IMREAD_COLOR);
  if (img.empty())
    return bf_error_set(BF_EFORMAT, "image could not be decoded");
  size_t n = (size_t)img.cols * img.rows;
  uint32_t *o = (uint32_t *)malloc(n * sizeof *o);
  if (!o)
    return bf_error_set(BF_ENOMEM, "out of memory decoding an image");
  for (int y = 0; y < img.rows; y++) {
    const uint8_t *row = img.ptr<uint8_t>(y);
    for (int x = 0; x < img.cols; x++)
      o[(size_t)y * img.cols + x] =
        (uint32_t)row[3 * x + 2] << 16 | (uint32_t)row[3 * x + 1] << 8 | row[3 * x];
  }
  *out = o;
  *w = img.cols;
  *h = img.rows;
  return 0;
  BF_CV_CATCH("decode image")
}

extern "C" int bf_cv_encode_png_rgb(uint8_t **out, size_t *len, const uint32_t *rgb, int w, int h)
{
  *out = NULL;
  *len = 0;
  cv_quiet();
  BF_CV_TRY
  BF_CV_CODECS(k)
  std::vector<uchar> v;
  if (!k->imencode(".png", rgb_to_bgr_mat(rgb, w, h), v, std::vector<int>()))
    return bf_error_set(BF_EFORMAT, "PNG encoding failed");
  uint8_t *o = (uint8_t *)malloc(v.size() ? v.size() : 1);
  if (!o)
    return bf_error_set(BF_ENOMEM, "out of memory encoding PNG");
  memcpy(o, v.data(), v.size());
  *out = o;
  *len = v.size();
  return 0;
  BF_CV_CATCH("encode PNG")
}

extern "C" int bf_cv_write_rgb(const char *path, const uint32_t *rgb, int w, int h)
{
  /* Encoded in memory (format from the extension), then written through bf_out: the target is
   * checked, the bytes go to an O_EXCL|O_NOFOLLOW temporary and only a whole file replaces it. */
  const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
  std::string ext = dot && (!slash || dot > slash) ? dot : ".png";
  int rc = bf_out_check(path);
  if (rc)
    return rc;
  cv_quiet();
  std::vector<uchar> v;
  BF_CV_TRY
  BF_CV_CODECS(k)
  if (!k->imencode(ext, rgb_to_bgr_mat(rgb, w, h), v, std::vector<int>()))
    return bf_error_set(BF_EIO, "%s: could not encode the image", path);
  BF_CV_CATCH(path)
  return bf_out_write(path, v.data(), v.size());
}
