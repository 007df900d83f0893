/*
 * state-launch: not a protocol program. It sets up a process's state, then
 * execs an unmodified command in its place, so that a test can compare what
 * /proc says about that command before a dump and after a restore.
 *
 *   state-launch COMMAND [ARGS...]     (must be started as root)
 *
 * Before the exec: RLIMIT_NOFILE 512:1024 (never above what it was), nice 5,
 * umask 0027, CPU affinity CPU 0 only, setsid (harmless if already a session
 * leader), supplementary groups none, then gid and uid 65534 (nobody:nogroup;
 * real, effective and saved). stdio goes to /dev/null; every other fd is
 * closed. Any failure exits with status 111 before the exec, naming the step
 * on stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static void need(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "state-launch: %s: %s\n", what, strerror(errno));
		exit(111);
	}
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: state-launch COMMAND [ARGS...]\n");
		return 2;
	}
	struct rlimit rl;
	need(getrlimit(RLIMIT_NOFILE, &rl) == 0, "getrlimit");
	rl.rlim_max = rl.rlim_max < 1024 ? rl.rlim_max : 1024;
	rl.rlim_cur = rl.rlim_max < 512 ? rl.rlim_max : 512;
	need(setrlimit(RLIMIT_NOFILE, &rl) == 0, "setrlimit NOFILE");
	need(setpriority(PRIO_PROCESS, 0, 5) == 0, "setpriority");
	umask(0027);
	cpu_set_t cpus;
	CPU_ZERO(&cpus);
	CPU_SET(0, &cpus);
	need(sched_setaffinity(0, sizeof cpus, &cpus) == 0, "sched_setaffinity");
	if (setsid() < 0 && getsid(0) != getpid())
		need(0, "setsid");
	int null = open("/dev/null", O_RDWR);
	need(null >= 0, "open /dev/null");
	for (int fd = 0; fd < 3; fd++)
		if (fd != null)
			need(dup2(null, fd) == fd, "dup2");
	if (null > 2)
		close(null);
	syscall(SYS_close_range, 3U, ~0U, 0U);
	need(setgroups(0, NULL) == 0, "setgroups");
	need(setresgid(65534, 65534, 65534) == 0, "setresgid");
	need(setresuid(65534, 65534, 65534) == 0, "setresuid");
	execvp(argv[1], argv + 1);
	need(0, "exec");
	return 111;
}
