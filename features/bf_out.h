/* Output files written whole or not at all, and never onto the data they were made from.
 * Every file a command writes (DOT, PNG, CSV/JSON exports) goes through here: the target is
 * checked first, the bytes go to a new temporary beside it (O_CREAT|O_EXCL|O_NOFOLLOW, so a
 * planted symlink is never followed), and only a complete file is renamed into place. */
#ifndef BF_OUT_H
#define BF_OUT_H

#include <stddef.h>
#include <stdio.h>

typedef struct bf_out bf_out;

/* Protects path (a store, as a file or a folder) for the rest of the process: no output may be
 * the path itself, its lock and temporary (path.lock, path.tmp*), a file with the same device
 * and inode as any of them, or anything inside it when it is a folder. Compared both by device
 * and inode and by resolved path, so other spellings and links are caught. */
int bf_out_protect(const char *path);
/* 0 when path may be written: not protected, not a folder or a special file, in a folder that
 * exists. Else the message names path and the reason. */
int bf_out_check(const char *path);
/* bf_out_check, then a new temporary file beside path. */
int bf_out_open(bf_out **out, const char *path);
FILE *bf_out_file(bf_out *o);
/* The temporary's name (for a child process that writes it, such as Graphviz). */
const char *bf_out_tmp(const bf_out *o);
/* Flushes and closes the temporary and renames it onto the target; frees o. On any failure the
 * temporary is removed and the target left as it was. */
int bf_out_commit(bf_out *o);
/* Removes the temporary, leaves the target untouched, frees o. NULL is a no-op. */
void bf_out_abort(bf_out *o);
/* Writes len bytes to path through the above. */
int bf_out_write(const char *path, const void *buf, size_t len);

#endif
