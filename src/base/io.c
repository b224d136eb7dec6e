/* io.c — message output and environment lookup without malloc or stdio (see io.h). */
#include "base/io.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

extern char** environ;

void hak_write_fd(int fd, const char* s, size_t n) {
  int e = errno;
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w < 0) { if (errno == EINTR) continue; break; }
    s += w; n -= (size_t)w;
  }
  errno = e;
}

void hak_write_err(const char* s, size_t n) { hak_write_fd(2, s, n); }

int hak_dup_stderr(void) {
  int e = errno;
  int fd = fcntl(2, F_DUPFD_CLOEXEC, 100);
  if (fd < 0) fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
  errno = e;
  return fd;
}

const char* hak_getenv(const char* name) {
  char** env = environ;
  if (!env || !name) return NULL;
  size_t n = strlen(name);
  for (; *env; env++) {
    if (strncmp(*env, name, n) == 0 && (*env)[n] == '=') return *env + n + 1;
  }
  return NULL;
}
