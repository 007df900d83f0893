/* ckpt bench: a process holding SIZE MiB of anonymous memory, the first TOUCH MiB
 * of it filled with incompressible xorshift data (the rest never touched).
 *
 *   memhog CTLDIR SIZE_MIB TOUCH_MIB SEED
 *
 * Protocol (files in CTLDIR; the process keeps no fd open between polls):
 *   the bench writes CTLDIR/cmd.tmp "SEQ VERB\n" and renames it to CTLDIR/cmd;
 *   the process polls for CTLDIR/cmd about every millisecond, unlinks it, acts,
 *   and answers with CTLDIR/resp (written to resp.tmp, renamed) "SEQ ...\n".
 *   At start-up, once its memory is filled, it answers "0 ready SUM".
 * Verbs:
 *   reset   enter spin mode: a tight clock_gettime(CLOCK_MONOTONIC) loop that keeps
 *           the largest gap between consecutive iterations; answers "SEQ reset".
 *   report  answers "SEQ maxgap NS spin NS iters N" (NS = largest gap, ns, since reset;
 *           spin = time since reset) and leaves spin mode.
 *   verify  checks the touched memory against the checksum taken at start-up, and
 *           (verify-all) that the untouched part still reads as zeros (this maps
 *           the zero page everywhere, so do it only as the last check of a run):
 *           answers "SEQ PASS SUM" or "SEQ FAIL got SUM want SUM".
 * Outside spin mode it sleeps 1 ms between polls. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static char cmdpath[4096], resppath[4096], tmppath[4096];

static inline uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t checksum(const uint64_t *p, size_t words) {
  uint64_t a = 0x9e3779b97f4a7c15ull, b = 0;
  for (size_t i = 0; i < words; i++) { a = (a ^ p[i]) * 0x100000001b3ull; b += p[i] ^ i; }
  return a ^ (b * 0xff51afd7ed558ccdull);
}

static void respond(const char *line) {
  int fd = open(tmppath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return;
  ssize_t n = write(fd, line, strlen(line));
  (void)n;
  close(fd);
  rename(tmppath, resppath);
}

/* Returns 1 and fills seq/verb if a command is waiting. */
static int poll_cmd(unsigned long *seq, char *verb, size_t verblen) {
  int fd = open(cmdpath, O_RDONLY);
  if (fd < 0) return 0;
  char buf[128];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  unlink(cmdpath);
  if (n <= 0) return 0;
  buf[n] = 0;
  char v[64] = "";
  if (sscanf(buf, "%lu %63s", seq, v) != 2) return 0;
  snprintf(verb, verblen, "%s", v);
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 5) { fprintf(stderr, "usage: memhog CTLDIR SIZE_MIB TOUCH_MIB SEED\n"); return 2; }
  const size_t size = (size_t)strtoull(argv[2], 0, 10) << 20;
  const size_t touch = (size_t)strtoull(argv[3], 0, 10) << 20;
  uint64_t x = strtoull(argv[4], 0, 10) * 0x9e3779b97f4a7c15ull + 88172645463325252ull;
  snprintf(cmdpath, sizeof cmdpath, "%s/cmd", argv[1]);
  snprintf(resppath, sizeof resppath, "%s/resp", argv[1]);
  snprintf(tmppath, sizeof tmppath, "%s/resp.tmp", argv[1]);
  if (touch > size) return 2;
  /* Hold nothing but stdio, whatever the bench's own parent leaked to it (a pipe to
   * elsewhere would make ckpt refuse the process). */
  for (int fd = 3; fd < 1024; fd++) close(fd);
  uint64_t *mem = mmap(0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) { perror("mmap"); return 1; }
  const size_t words = touch / 8;
  for (size_t i = 0; i < words; i++) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; mem[i] = x; }
  const uint64_t want = checksum(mem, words);
  char line[256];
  snprintf(line, sizeof line, "0 ready %016llx\n", (unsigned long long)want);
  respond(line);

  int spinning = 0;
  uint64_t maxgap = 0, reset_at = 0, iters = 0, last = 0, next_poll = 0;
  for (;;) {
    if (spinning) {
      uint64_t t = now_ns();
      uint64_t gap = t - last;
      if (gap > maxgap) maxgap = gap;
      last = t;
      iters++;
      if (t < next_poll) continue;
      next_poll = t + 1000000;
    } else {
      struct timespec ts = { 0, 1000000 };
      nanosleep(&ts, 0);
    }
    unsigned long seq;
    char verb[64];
    if (!poll_cmd(&seq, verb, sizeof verb)) continue;
    if (!strcmp(verb, "reset")) {
      spinning = 1;
      maxgap = 0;
      iters = 0;
      reset_at = last = now_ns();
      next_poll = reset_at + 1000000;
      snprintf(line, sizeof line, "%lu reset\n", seq);
    } else if (!strcmp(verb, "report")) {
      uint64_t t = now_ns();
      snprintf(line, sizeof line, "%lu maxgap %llu spin %llu iters %llu\n", seq, (unsigned long long)maxgap,
               (unsigned long long)(t - reset_at), (unsigned long long)iters);
      spinning = 0;
    } else if (!strcmp(verb, "verify") || !strcmp(verb, "verify-all")) {
      uint64_t got = checksum(mem, words);
      int ok = got == want;
      size_t bad_zero = 0;
      if (!strcmp(verb, "verify-all")) {
        for (size_t i = words; i < size / 8; i++) if (mem[i]) { bad_zero++; ok = 0; }
      }
      if (ok) snprintf(line, sizeof line, "%lu PASS %016llx\n", seq, (unsigned long long)got);
      else snprintf(line, sizeof line, "%lu FAIL got %016llx want %016llx nonzero-untouched-words %zu\n", seq,
                    (unsigned long long)got, (unsigned long long)want, bad_zero);
    } else {
      snprintf(line, sizeof line, "%lu unknown %s\n", seq, verb);
    }
    respond(line);
  }
}
