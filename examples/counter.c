/* The demo's sample process: counts, keeps a 16 MiB buffer whose checksum it
 * re-verifies, and writes "count checksum-ok" to the file named by argv[1]
 * ten times a second (written beside it and renamed into place). */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

#define SIZE (16u << 20)

static uint64_t sum(const uint8_t *p, size_t n) {
  uint64_t s = 1469598103934665603ull;
  for (size_t i = 0; i < n; i += 64) s = (s ^ p[i]) * 1099511628211ull;
  return s;
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  /* Like any daemon, keep no fd inherited from whoever started us. */
  syscall(SYS_close_range, 3U, ~0U, 0U);
  uint8_t *buf = malloc(SIZE);
  uint64_t x = 88172645463325252ull;
  for (size_t i = 0; i < SIZE; i++) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; buf[i] = (uint8_t)x; }
  const uint64_t want = sum(buf, SIZE);
  for (unsigned long count = 1;; count++) {
    char line[96];
    int n = snprintf(line, sizeof line, "%lu %s\n", count, sum(buf, SIZE) == want ? "memory-ok" : "MEMORY-CORRUPT");
    /* A new file renamed over the old one: a reader never sees it half written. */
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", argv[1]);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      if (write(fd, line, n) == n) rename(tmp, argv[1]);
      close(fd);
    }
    struct timespec ts = { 0, 100 * 1000 * 1000 };
    nanosleep(&ts, NULL);
  }
}
