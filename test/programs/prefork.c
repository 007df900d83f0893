/*
 * prefork: descriptions shared across a tree in the ways a prefork server
 * shares them (review findings on restoreFds).
 *
 *   prefork WORKDIR
 *
 * The parent makes an eventfd and opens a file, then forks A and B. A watches
 * the inherited eventfd with an epoll of its own. B calls setsid() (so a
 * restore handles it before A) and shares the file's offset with A. Checks,
 * through shared memory: a count the parent adds to the eventfd wakes A's
 * epoll; B and A see one offset of the inherited file.
 * Report: "PASS counter=N".
 */
#include "protocol.h"

#include <stdatomic.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>

struct shared {
	atomic_long a_wakes, a_turns, b_turns;
	atomic_long b_moved; /* offsets B moved the shared file to */
	atomic_long a_saw;   /* the offset A read back */
};

static struct shared *sh;
static int efd, file;

static void msleep(long ms)
{
	struct timespec ts = { 0, ms * 1000000L };
	nanosleep(&ts, NULL);
}

static void child_a(void)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 7 };
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev) != 0)
		_exit(20);
	for (;;) {
		struct epoll_event got;
		if (epoll_wait(ep, &got, 1, 5) == 1 && got.data.u64 == 7) {
			uint64_t n;
			if (read(efd, &n, sizeof n) == sizeof n)
				atomic_fetch_add(&sh->a_wakes, 1);
		}
		atomic_store(&sh->a_saw, (long)lseek(file, 0, SEEK_CUR));
		atomic_fetch_add(&sh->a_turns, 1);
	}
}

static void child_b(void)
{
	setsid();
	for (long i = 1;; i++) {
		lseek(file, i % 100, SEEK_SET);
		atomic_store(&sh->b_moved, i % 100);
		atomic_fetch_add(&sh->b_turns, 1);
		msleep(5);
	}
}

static int check_all(char *msg, size_t size)
{
	long wakes = atomic_load(&sh->a_wakes);
	uint64_t one = 1;
	if (write(efd, &one, sizeof one) != sizeof one) {
		snprintf(msg, size, "write to the eventfd: %s", strerror(errno));
		return 0;
	}
	for (int i = 0; i < 400 && atomic_load(&sh->a_wakes) == wakes; i++)
		msleep(5);
	if (atomic_load(&sh->a_wakes) == wakes) {
		snprintf(msg, size, "A's epoll did not wake for the inherited eventfd");
		return 0;
	}
	/* B moves the offset; A reads the same offset of the one description. */
	long a0 = atomic_load(&sh->a_turns), b0 = atomic_load(&sh->b_turns);
	for (int i = 0; i < 400 && (atomic_load(&sh->a_turns) < a0 + 3 || atomic_load(&sh->b_turns) < b0 + 3); i++)
		msleep(5);
	int same = 0;
	for (int i = 0; i < 200 && !same; i++) {
		long moved = atomic_load(&sh->b_moved), saw = atomic_load(&sh->a_saw);
		same = moved == saw;
		if (!same)
			msleep(1);
	}
	if (!same) {
		snprintf(msg, size, "A and B do not share the file offset (B %ld, A %ld)", atomic_load(&sh->b_moved), atomic_load(&sh->a_saw));
		return 0;
	}
	snprintf(msg, size, "wakes=%ld", atomic_load(&sh->a_wakes));
	return 1;
}

int main(int argc, char **argv)
{
	proto_init(argc, argv);
	char path[PATH_MAX];
	proto_path(path, "shared-file");
	sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	efd = eventfd(0, EFD_NONBLOCK);
	file = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (sh == MAP_FAILED || efd < 0 || file < 0 || ftruncate(file, 4096) != 0)
		return 10;
	if (fork() == 0)
		child_a();
	if (fork() == 0)
		child_b();
	close(file);
	while (atomic_load(&sh->a_turns) < 1 || atomic_load(&sh->b_turns) < 1)
		msleep(1);
	proto_ready("");
	long counter = 0;
	for (;;) {
		proto_tick(++counter, check_all);
		msleep(10);
	}
}
