/*
 * unsupported-fd: holds one fd of a kind ckpt refuses, to check that a dump
 * says so before it changes anything.
 *
 *   unsupported-fd WORKDIR KIND [MIB]
 *
 * KIND: pidfd | userfaultfd | io_uring | perf_event | bpf-map | fanotify.
 * MIB: also hold that much touched memory (a dump -R then forks a snapshot).
 * The fd is number 10. When the kernel will not make one here (a sysctl,
 * a missing config), W/ready says "made=0" and the program idles.
 * Checks: fd 10 is still open. Report: "PASS counter=N".
 */
#define _GNU_SOURCE
#include "protocol.h"

#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <sys/fanotify.h>
#include <time.h>

static int make(const char *kind)
{
	if (!strcmp(kind, "pidfd"))
		return (int)syscall(SYS_pidfd_open, getpid(), 0);
	if (!strcmp(kind, "userfaultfd"))
		return (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (!strcmp(kind, "io_uring")) {
		char params[120] = { 0 }; /* struct io_uring_params */
		return (int)syscall(425 /* io_uring_setup */, 4, params);
	}
	if (!strcmp(kind, "perf_event")) {
		struct perf_event_attr a = { .type = PERF_TYPE_SOFTWARE, .size = sizeof a, .config = PERF_COUNT_SW_TASK_CLOCK, .disabled = 1 };
		return (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
	}
	if (!strcmp(kind, "bpf-map")) {
		union bpf_attr a;
		memset(&a, 0, sizeof a);
		a.map_type = BPF_MAP_TYPE_ARRAY;
		a.key_size = 4;
		a.value_size = 4;
		a.max_entries = 1;
		return (int)syscall(SYS_bpf, BPF_MAP_CREATE, &a, sizeof a);
	}
	if (!strcmp(kind, "fanotify"))
		return fanotify_init(FAN_CLASS_NOTIF, O_RDONLY);
	return -1;
}

static int check(char *msg, size_t size)
{
	if (fcntl(10, F_GETFD) < 0) {
		snprintf(msg, size, "fd 10 is not open");
		return 0;
	}
	return 1;
}

static int idle(char *msg, size_t size) { (void)msg; (void)size; return 1; }

int main(int argc, char **argv)
{
	proto_init(argc, argv);
	if (argc < 3) return 2;
	if (argc > 3) {
		size_t size = (size_t)atol(argv[3]) << 20;
		char *mem = malloc(size);
		if (!mem) return 2;
		memset(mem, 0x5a, size);
	}
	int fd = make(argv[2]);
	int made = fd >= 0 && dup2(fd, 10) == 10;
	if (fd >= 0 && fd != 10) close(fd);
	proto_ready(made ? "made=1" : "made=0");
	for (long counter = 1;; counter++) {
		struct timespec ts = { 0, 20 * 1000000L };
		nanosleep(&ts, NULL);
		proto_tick(counter, made ? check : idle);
	}
}
