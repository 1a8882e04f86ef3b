/* OpenCV behind plain C: every entry catches C++ exceptions and returns a BF_E* code. */
#ifndef BF_CV_H
#define BF_CV_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Decodes a PNG/JPEG/... held in memory into w*h colours 0xRRGGBB (malloc'ed, caller frees). */
int bf_cv_decode_rgb(uint32_t **out, int *w, int *h, const void *buf, size_t len);
/* Encodes w*h colours 0xRRGGBB as PNG into a malloc'ed buffer. */
int bf_cv_encode_png_rgb(uint8_t **out, size_t *len, const uint32_t *rgb, int w, int h);
/* Writes w*h colours 0xRRGGBB as an image file (format from the extension). */
int bf_cv_write_rgb(const char *path, const uint32_t *rgb, int w, int h);

#ifdef __cplusplus
}
#endif

#endif
