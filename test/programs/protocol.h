/*
 * The file protocol every test program speaks (see README.md in this folder).
 *
 * argv[1] is a work directory W. The program writes W/ready once its state is
 * set up, keeps W/counter current, answers W/check with one line in W/report
 * ("PASS counter=N ..." or "FAIL <what differed>"), and exits with the code
 * written in W/exit. Every file is opened by path when needed and closed at
 * once: the program holds no fd for the protocol, so a checkpoint sees only the
 * fds the program is about.
 *
 * Nothing here may call malloc: mem.c checks that the program break stays
 * where it left it.
 */
#ifndef CKPT_TEST_PROTOCOL_H
#define CKPT_TEST_PROTOCOL_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static const char *proto_dir;
static pid_t proto_pid;
/* The first failure seen outside a check (e.g. a register that changed across
 * a syscall). It stays: every later report is a FAIL. */
static char proto_failure[256];

/* The check a program runs on request: returns 1 when all its state is as it
 * should be, writing extra "key=value" text into msg; returns 0 otherwise,
 * writing what differed into msg. */
typedef int (*proto_check_fn)(char *msg, size_t size);

static inline void proto_path(char *out, const char *name)
{
	snprintf(out, PATH_MAX, "%s/%s", proto_dir, name);
}

__attribute__((format(printf, 1, 2))) static inline void proto_fail(const char *fmt, ...)
{
	if (proto_failure[0])
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(proto_failure, sizeof proto_failure, fmt, ap);
	va_end(ap);
}

/* Writes W/name atomically: W/.name.tmp then rename. */
static inline void proto_write(const char *name, const char *text)
{
	char tmp[PATH_MAX], dst[PATH_MAX];
	snprintf(tmp, sizeof tmp, "%s/.%s.tmp", proto_dir, name);
	proto_path(dst, name);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		proto_fail("open %s: %s", tmp, strerror(errno));
		return;
	}
	size_t len = strlen(text), done = 0;
	while (done < len) {
		ssize_t n = write(fd, text + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			proto_fail("write %s: %s", tmp, strerror(errno));
			break;
		}
		done += (size_t)n;
	}
	close(fd);
	if (rename(tmp, dst) != 0)
		proto_fail("rename %s: %s", dst, strerror(errno));
}

/* Reads at most size-1 bytes of W/name; returns -1 when it does not exist. */
static inline ssize_t proto_read(const char *name, char *buf, size_t size)
{
	char path[PATH_MAX];
	proto_path(path, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, size - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	return n;
}

static inline int proto_take(const char *name)
{
	char path[PATH_MAX];
	proto_path(path, name);
	if (access(path, F_OK) != 0)
		return 0;
	unlink(path);
	return 1;
}

/* Call first. Points stdio at /dev/null and closes every fd the caller leaked
 * to us, so that the program holds exactly the fds it sets up itself. */
static inline void proto_init(int argc, char **argv)
{
	if (argc < 2) {
		static const char usage[] = "usage: PROGRAM WORKDIR [ARGS...]\n";
		if (write(2, usage, sizeof usage - 1) < 0)
			_exit(2);
		_exit(2);
	}
	proto_dir = argv[1];
	proto_pid = getpid();
	int null = open("/dev/null", O_RDWR);
	for (int fd = 0; fd < 3; fd++)
		if (null != fd)
			dup2(null, fd);
	syscall(SYS_close_range, 3U, ~0U, 0U);
}

/* W/ready holds "pid=N" and the program's own "key=value" facts (addresses a
 * test may poke at through /proc/PID/mem). */
static inline void proto_ready(const char *facts)
{
	char text[512];
	snprintf(text, sizeof text, "pid=%d%s%s\n", (int)proto_pid, facts[0] ? " " : "", facts);
	proto_write("ready", text);
}

/* One turn of the protocol: publish the counter, answer a check, obey an exit
 * request. Programs call it on every loop. */
static inline void proto_tick(long counter, proto_check_fn check)
{
	char text[512], msg[400];

	snprintf(text, sizeof text, "%ld\n", counter);
	proto_write("counter", text);

	if (proto_take("check")) {
		msg[0] = 0;
		int ok = check(msg, sizeof msg);
		pid_t now = getpid();
		if (proto_failure[0])
			snprintf(text, sizeof text, "FAIL %s\n", proto_failure);
		else if (now != proto_pid)
			snprintf(text, sizeof text, "FAIL getpid() is %d, was %d\n", (int)now, (int)proto_pid);
		else if (!ok)
			snprintf(text, sizeof text, "FAIL %s\n", msg);
		else
			snprintf(text, sizeof text, "PASS counter=%ld%s%s\n", counter, msg[0] ? " " : "", msg);
		proto_write("report", text);
	}

	char code[32];
	if (proto_read("exit", code, sizeof code) >= 0) {
		proto_take("exit");
		exit(atoi(code));
	}
}

/* A child that only sleeps, and dies with its parent (PR_SET_PDEATHSIG), for
 * programs whose tree has one; its pid, or -1. */
static inline pid_t proto_sleeping_child(void)
{
	pid_t child = fork();
	if (child == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;)
			pause();
	}
	return child;
}

/* The usual main loop: a turn of the protocol every 20 ms, for ever. */
__attribute__((noreturn)) static inline void proto_run(proto_check_fn check)
{
	for (long counter = 1;; counter++) {
		struct timespec ts = { 0, 20 * 1000000L };
		nanosleep(&ts, NULL);
		proto_tick(counter, check);
	}
}

#endif
