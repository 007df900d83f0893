/* ckpt bench's wrapper around each ckpt command:
 *   maxrss OUTFILE CMD ARGS...
 * runs CMD and writes to OUTFILE its peak RSS in KiB (wait4's ru_maxrss) and
 * its wall time in ms: CLOCK_MONOTONIC from just before the fork to wait4's
 * return, so the command's whole life (its exec, node's start-up, its exit)
 * and none of the bench's own spawning. Exits with CMD's status (128+N if
 * killed by signal N). */
#include <stdio.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: maxrss OUTFILE CMD ARGS...\n"); return 2; }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pid_t pid = fork();
  if (pid < 0) { perror("fork"); return 1; }
  if (pid == 0) { execvp(argv[2], argv + 2); perror(argv[2]); _exit(127); }
  int st;
  struct rusage ru;
  if (wait4(pid, &st, 0, &ru) < 0) { perror("wait4"); return 1; }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  FILE *f = fopen(argv[1], "w");
  if (f) {
    fprintf(f, "%ld %.3f\n", ru.ru_maxrss, (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
    fclose(f);
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
