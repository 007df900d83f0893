/* ckpt bench fallback for when GNU time (/usr/bin/time) is not installed:
 *   maxrss OUTFILE CMD ARGS...
 * runs CMD, writes its peak RSS in KiB (wait4's ru_maxrss, as GNU time's %M) to
 * OUTFILE, and exits with CMD's status (128+N if killed by signal N). */
#include <stdio.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: maxrss OUTFILE CMD ARGS...\n"); return 2; }
  pid_t pid = fork();
  if (pid < 0) { perror("fork"); return 1; }
  if (pid == 0) { execvp(argv[2], argv + 2); perror(argv[2]); _exit(127); }
  int st;
  struct rusage ru;
  if (wait4(pid, &st, 0, &ru) < 0) { perror("wait4"); return 1; }
  FILE *f = fopen(argv[1], "w");
  if (f) { fprintf(f, "%ld\n", ru.ru_maxrss); fclose(f); }
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
