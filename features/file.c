#include "bf_file.h"
#include "bf_alloc.h"
#include "bf_error.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int bf_file_open(const char *path, size_t max, int *fd_out, size_t *size)
{
  *fd_out = -1;
  *size = 0;
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC); /* a FIFO must not hang */
  if (fd < 0)
    return bf_error_set(errno == ENOENT ? BF_ENOTFOUND : BF_EIO, "%s: cannot open: %s", path,
                        strerror(errno));
  struct stat st;
  int rc = 0;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    const char *what = S_ISDIR(st.st_mode)    ? "a folder"
                       : S_ISFIFO(st.st_mode) ? "a FIFO (named pipe)"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                       : (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) ? "a device"
                                                                      : "not a regular file";
    rc = bf_error_set(BF_EIO, "%s: is %s, not a regular file", path, what);
  } else if ((unsigned long long)st.st_size > max)
    rc = bf_error_set(BF_ELIMIT, "%s: file of %lld bytes is larger than the %zu allowed", path,
                      (long long)st.st_size, max);
  if (rc) {
    close(fd);
    return rc;
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0)
    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  *fd_out = fd;
  *size = (size_t)st.st_size;
  return 0;
}

int bf_file_read(const char *path, size_t max, uint8_t **out, size_t *n)
{
  *out = NULL;
  *n = 0;
  int fd;
  size_t want, got = 0;
  int rc = bf_file_open(path, max, &fd, &want);
  if (rc)
    return rc;
  if (!(*out = bf_malloc(want + 1))) {
    rc = bf_error_set(BF_ENOMEM, "%s: out of memory reading %zu bytes", path, want);
    goto done;
  }
  while (got < want) {
    ssize_t r = read(fd, *out + got, want - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0) {
      rc = bf_error_set(BF_EIO, "%s: read failed (%s)", path, r < 0 ? strerror(errno) : "file shrank");
      goto done;
    }
    got += (size_t)r;
  }
  (*out)[want] = 0;
  *n = want;
done:
  close(fd);
  if (rc) {
    bf_free(*out);
    *out = NULL;
  }
  return rc;
}
