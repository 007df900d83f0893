/* ckpt bench reference: what the filesystem alone costs for the bytes a dump writes
 * and a restore reads.
 *
 *   ioref FILE BYTES SEED
 *
 * Fills BYTES (rounded up to whole pages) of fresh anonymous memory with incompressible data, then times
 *   write: open(O_CREAT|O_TRUNC) + write() of the whole buffer + fsync() + close()
 *          (ckpt fsyncs pages.img and ckpt.img before it closes them, so the
 *          reference does too; the time before fsync is reported as well);
 *   read:  open + read() of the whole file, as it is in the page cache right after the
 *          write (nothing dropped, as ckpt restore sees an image right after a dump),
 *          into fresh, untouched anonymous memory (so page faults count, as they do
 *          when a restored process's pages are filled) + close.
 * Prints one line: "write_ns N nosync_ns N read_ns N bytes N". Leaves FILE behind. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc < 4) { fprintf(stderr, "usage: ioref FILE BYTES SEED\n"); return 2; }
  const size_t size = ((size_t)strtoull(argv[2], 0, 10) + 4095) & ~(size_t)4095;
  if (size == 0) { fprintf(stderr, "ioref: BYTES must be > 0\n"); return 2; }
  uint64_t x = strtoull(argv[3], 0, 10) * 0x9e3779b97f4a7c15ull + 88172645463325252ull;
  uint64_t *a = mmap(0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (a == MAP_FAILED) { perror("mmap"); return 1; }
  for (size_t i = 0; i < size / 8; i++) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; a[i] = x; }

  uint64_t t0 = now_ns();
  int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) { perror("open"); return 1; }
  for (size_t done = 0; done < size;) {
    ssize_t n = write(fd, (char *)a + done, size - done);
    if (n <= 0) { perror("write"); return 1; }
    done += (size_t)n;
  }
  uint64_t t1 = now_ns();
  if (fsync(fd)) { perror("fsync"); return 1; }
  close(fd);
  uint64_t t2 = now_ns();
  munmap(a, size);

  uint64_t *b = mmap(0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (b == MAP_FAILED) { perror("mmap"); return 1; }
  uint64_t t3 = now_ns();
  fd = open(argv[1], O_RDONLY);
  if (fd < 0) { perror("open"); return 1; }
  for (size_t done = 0; done < size;) {
    ssize_t n = read(fd, (char *)b + done, size - done);
    if (n <= 0) { perror("read"); return 1; }
    done += (size_t)n;
  }
  close(fd);
  uint64_t t4 = now_ns();
  printf("write_ns %llu nosync_ns %llu read_ns %llu bytes %zu\n", (unsigned long long)(t2 - t0),
         (unsigned long long)(t1 - t0), (unsigned long long)(t4 - t3), size);
  return 0;
}
