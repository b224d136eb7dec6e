/* io.h — the few libc services every layer needs for messages and configuration:
 * writing whole buffers to a file descriptor, a private copy of stderr, and reading the
 * environment before libc's constructors ran. None of these allocates, uses stdio or
 * changes errno. */
#ifndef HAK_BASE_IO_H
#define HAK_BASE_IO_H

#include "base/base.h"

/* Write a whole buffer to stderr (fd 2). */
HAK_HIDDEN void hak_write_err(const char* s, size_t n);
/* Write a whole buffer to file descriptor fd (retries on EINTR, gives up on error). */
HAK_HIDDEN void hak_write_fd(int fd, const char* s, size_t n);
/* A close-on-exec duplicate of fd 2 (>= 100 where possible), or -1. */
HAK_HIDDEN int  hak_dup_stderr(void);
/* The value of environment variable `name`, or NULL. Reads `environ` directly, so it
 * works inside the first malloc, before libc constructors ran. */
HAK_HIDDEN const char* hak_getenv(const char* name);

#endif
