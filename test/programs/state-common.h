/*
 * Helpers shared by the state-*.c programs (on top of protocol.h).
 *
 * The state programs set up some kernel-side state before W/ready, record it,
 * and on every W/check compare the live state with the record. A setup step
 * that fails is remembered with proto_fail(): the program still writes W/ready,
 * and every report is "FAIL setup: ...", so a test sees why at once.
 *
 * No malloc here either: everything lives in static buffers.
 */
#ifndef CKPT_TEST_STATE_COMMON_H
#define CKPT_TEST_STATE_COMMON_H

#include "protocol.h"

#include <time.h>

/* A setup step that must succeed: on failure remembers "setup: WHAT: errno". */
#define SETUP(call, what)                                                              \
	do {                                                                           \
		if ((call) < 0)                                                        \
			proto_fail("setup: %s: %s", what, strerror(errno));            \
	} while (0)

/* In a check function (msg, size in scope): report the first difference and return 0. */
#define DIFFER(...)                                                                    \
	do {                                                                           \
		snprintf(msg, size, __VA_ARGS__);                                      \
		return 0;                                                              \
	} while (0)

#define EXPECT_EQ(what, now, was)                                                      \
	do {                                                                           \
		long long now_ = (long long)(now), was_ = (long long)(was);           \
		if (now_ != was_)                                                      \
			DIFFER("%s is %lld, was %lld", what, now_, was_);              \
	} while (0)

/* Reads a whole (small) file into buf, NUL-terminated; returns its length or -1. */
static inline ssize_t read_whole(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t done = 0;
	while (done < size - 1) {
		ssize_t n = read(fd, buf + done, size - 1 - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	close(fd);
	buf[done] = 0;
	return (ssize_t)done;
}

/* The value of "Name:\tvalue" in /proc/self/status (or any such file), trimmed; -1 if absent. */
static inline int status_field_in(const char *path, const char *name, char *out, size_t size)
{
	static char text[16384];
	if (read_whole(path, text, sizeof text) < 0)
		return -1;
	size_t len = strlen(name);
	for (char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		if (strncmp(line, name, len) == 0 && line[len] == ':') {
			char *v = line + len + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			size_t n = strcspn(v, "\n");
			if (n >= size)
				n = size - 1;
			memcpy(out, v, n);
			out[n] = 0;
			return 0;
		}
	}
	return -1;
}

static inline int status_field(const char *name, char *out, size_t size)
{
	return status_field_in("/proc/self/status", name, out, size);
}

/* A status field as a hex mask (SigPnd, CapEff...), or ~0 when absent. */
static inline unsigned long long status_mask(const char *name)
{
	char value[64];
	if (status_field(name, value, sizeof value) < 0)
		return ~0ULL;
	return strtoull(value, NULL, 16);
}

/* A status field as a decimal number, or LLONG_MIN when absent. */
static inline long long status_number(const char *name)
{
	char value[64];
	if (status_field(name, value, sizeof value) < 0)
		return LLONG_MIN;
	return strtoll(value, NULL, 10);
}

static inline double now_seconds(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sleeps `ms` milliseconds of real time, whatever signals arrive meanwhile. */
static inline void sleep_ms(long ms)
{
	struct timespec deadline;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_nsec += ms * 1000000L;
	deadline.tv_sec += deadline.tv_nsec / 1000000000L;
	deadline.tv_nsec %= 1000000000L;
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL) == EINTR)
		;
}

/* The usual main loop: a turn of the protocol every ~20 ms. */
static inline __attribute__((noreturn)) void state_loop(proto_check_fn check)
{
	for (long counter = 1;; counter++) {
		sleep_ms(20);
		proto_tick(counter, check);
	}
}

#endif
