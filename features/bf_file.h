/* Reading a whole input file: scans, manifests. One rule for every reader: anything but a
 * regular file (a FIFO, a device, a folder, a socket) is refused before a byte is read, without
 * blocking, and a file over the caller's limit is refused before it is allocated. */
#ifndef BF_FILE_H
#define BF_FILE_H

#include <stddef.h>
#include <stdint.h>

/* Opens path for reading (blocking reads) after those checks; *size is its length. */
int bf_file_open(const char *path, size_t max, int *fd, size_t *size);
/* The file's bytes in *out (bf_malloc'd, caller bf_frees; a NUL is appended after the n bytes
 * so text can be parsed in place). Errors name the file: BF_ENOTFOUND, BF_EIO (not a regular
 * file, read failure), BF_ELIMIT (over max bytes), BF_ENOMEM. */
int bf_file_read(const char *path, size_t max, uint8_t **out, size_t *n);

#endif
