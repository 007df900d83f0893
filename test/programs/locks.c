/*
 * locks: holds a flock, a POSIX record lock and an OFD lock; another process
 * must still be refused each of them after a restore.
 *
 *   locks WORKDIR
 *
 * WORKDIR/a: flock LOCK_EX. WORKDIR/b: POSIX write lock on bytes 10..29.
 * WORKDIR/c: OFD read lock on the whole file. A check forks a child that
 * opens each file itself and tries a conflicting lock: all three must fail,
 * and a POSIX lock on bytes 100..109 of b must succeed (outside the range).
 * Report: "PASS counter=N".
 */
#define _GNU_SOURCE
#include "protocol.h"

#include <errno.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>

static int fa, fb, fc;

static int try_posix(int fd, int cmd, short type, off_t start, off_t len)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };
	return fcntl(fd, cmd, &fl);
}

static int child_conflicts(void)
{
	char path[PATH_MAX];
	proto_path(path, "a");
	int a = open(path, O_RDWR);
	if (flock(a, LOCK_EX | LOCK_NB) == 0 || errno != EWOULDBLOCK) return 1;
	proto_path(path, "b");
	int b = open(path, O_RDWR);
	if (try_posix(b, F_SETLK, F_WRLCK, 15, 2) == 0) return 2;
	if (try_posix(b, F_SETLK, F_WRLCK, 100, 10) != 0) return 3;
	proto_path(path, "c");
	int c = open(path, O_RDWR);
	if (try_posix(c, F_OFD_SETLK, F_WRLCK, 0, 0) == 0) return 4;
	return 0;
}

static int check_all(char *msg, size_t size)
{
	pid_t child = fork();
	if (child == 0)
		_exit(child_conflicts());
	int status = 0;
	waitpid(child, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		static const char *what[] = { "", "the flock on a", "the POSIX lock on b", "a lock outside b's range", "the OFD lock on c" };
		int code = WIFEXITED(status) ? WEXITSTATUS(status) : 9;
		snprintf(msg, size, "another process is no longer refused %s (child %d)", code < 5 ? what[code] : "?", code);
		return 0;
	}
	return 1;
}

int main(int argc, char **argv)
{
	proto_init(argc, argv);
	char path[PATH_MAX];
	proto_path(path, "a");
	fa = open(path, O_RDWR | O_CREAT, 0600);
	proto_path(path, "b");
	fb = open(path, O_RDWR | O_CREAT, 0600);
	proto_path(path, "c");
	fc = open(path, O_RDWR | O_CREAT, 0600);
	if (fa < 0 || fb < 0 || fc < 0 || flock(fa, LOCK_EX | LOCK_NB) != 0 ||
	    try_posix(fb, F_SETLK, F_WRLCK, 10, 20) != 0 || try_posix(fc, F_OFD_SETLK, F_RDLCK, 0, 0) != 0)
		return 10;
	proto_ready("");
	for (long counter = 1;; counter++) {
		nanosleep(&(struct timespec){ 0, 20 * 1000000L }, NULL);
		proto_tick(counter, check_all);
	}
}
