/*
 * tree: a three-level process tree that checks itself (issue 4, acceptance 1).
 *
 *   tree WORKDIR [COW_MIB]
 *
 * R (root, the pid the test dumps)
 * ├── A  setsid(): the extra session (its own group {A} is orphaned: A's
 * │      parent is in another session). 4 threads: main, one blocked on a
 * │      futex, one spinning with FPU values in registers, one sleeping.
 * │   ├── A1  setpgid(0,0): group A1
 * │   ├── A2  joins group A1 (two groups in A's session: {A}, {A1,A2})
 * │   ├── A3  setpgid(0,0), then exits and A reaps it: group A3's leader is gone
 * │   └── A4  joins group A3 before A3 exits
 * ├── Z  exits with status 7; R never reaps it (a zombie, checked with WNOWAIT)
 * ├── T  stops itself with SIGSTOP (a stopped child)
 * └── U  created by clone(..., SIGUSR1): on "final" it exits and R must get SIGUSR1
 *
 * Every process increments its own counter in one MAP_SHARED|MAP_ANONYMOUS
 * area inherited by all, and every live process checks, on request, its own
 * state: pid, parent, session and group as set up; the COW_MIB (default 8)
 * of pseudo-random private memory R filled before forking (shared
 * copy-on-write by all: it must be saved once); the counters of the others
 * still moving. A holds a pipe with 4000 unread bytes written by R before
 * the dump: on "final" A reads them and checks them.
 * R answers the protocol's check with the verdicts of all:
 * "PASS counter=N procs=K" or "FAIL pid X: what". Build with -pthread.
 */
#include "protocol.h"
#include "pattern.h"

#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

enum { SALT_COW = 11, NPROC = 10, PIPE_BYTES = 4000 };
enum { R_, A_, A1_, A2_, A3_, A4_, Z_, T_, U_, NSLOT };

struct slot {
	atomic_long counter;
	atomic_int pid;
	atomic_int ready;
	atomic_long answered; /* the check generation this verdict answers */
	char verdict[160];
};

struct shared {
	atomic_long check_gen;
	atomic_int final;
	struct slot s[NSLOT];
};

static struct shared *sh;
static char *cow;
static size_t cow_pages;
static int me;
static pid_t want_ppid, want_sid, want_pgid;
static int pipe_fd[2];
static const char *names[NSLOT] = { "R", "A", "A1", "A2", "A3", "A4", "Z", "T", "U" };

static void msleep(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static unsigned char pipe_byte(int i) { return (unsigned char)(i * 7 + 3); }

/* A's threads */
static atomic_int futex_word;
static atomic_long futex_wakes, spins, sleeps;
static atomic_int fpu_bad;

static void *futex_thread(void *arg)
{
	(void)arg;
	for (;;) {
		int seen = atomic_load(&futex_word);
		syscall(SYS_futex, &futex_word, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
		if (atomic_load(&futex_word) != seen)
			atomic_fetch_add(&futex_wakes, 1);
	}
	return NULL;
}

static void *spin_thread(void *arg)
{
	(void)arg;
	for (;;) {
		double a = 1.0, b = 3.0, c = 0.5;
		for (int i = 0; i < 100000; i++) {
			__asm__ volatile("" : "+x"(a), "+x"(b), "+x"(c));
			/* Exact in binary floating point: the values come back unless a register is lost. */
			a = a * 2.0;
			b = b + 1.0;
			c = c * 3.0;
			__asm__ volatile("" : "+x"(a), "+x"(b), "+x"(c));
			a = a * 0.5;
			b = b - 1.0;
			c = c / 3.0;
		}
		if (a != 1.0 || b != 3.0 || c != 0.5)
			atomic_store(&fpu_bad, 1);
		atomic_fetch_add(&spins, 1);
	}
	return NULL;
}

static void *sleep_thread(void *arg)
{
	(void)arg;
	for (;;) {
		msleep(20);
		atomic_fetch_add(&sleeps, 1);
	}
	return NULL;
}

static long last_futex, last_spins, last_sleeps;

/* This process's own state; returns 1 if it is as set up. */
static int self_check(char *msg, size_t size)
{
	if (getpid() != atomic_load(&sh->s[me].pid)) {
		snprintf(msg, size, "getpid %d, was %d", (int)getpid(), atomic_load(&sh->s[me].pid));
		return 0;
	}
	/* R's parent is whoever restored it. */
	if ((me != R_ && getppid() != want_ppid) || getsid(0) != want_sid || getpgrp() != want_pgid) {
		snprintf(msg, size, "ppid/sid/pgid %d/%d/%d, want %d/%d/%d", (int)getppid(), (int)getsid(0), (int)getpgrp(),
			 (int)want_ppid, (int)want_sid, (int)want_pgid);
		return 0;
	}
	long bad = first_bad_page(cow, cow_pages, SALT_COW);
	if (bad >= 0) {
		snprintf(msg, size, "inherited page %ld differs", bad);
		return 0;
	}
	if (me == A_) {
		atomic_fetch_add(&futex_word, 1);
		syscall(SYS_futex, &futex_word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
		for (int i = 0; i < 200 && (atomic_load(&futex_wakes) == last_futex || atomic_load(&spins) == last_spins ||
					    atomic_load(&sleeps) == last_sleeps); i++)
			msleep(10);
		if (atomic_load(&futex_wakes) == last_futex || atomic_load(&spins) == last_spins || atomic_load(&sleeps) == last_sleeps) {
			snprintf(msg, size, "a thread stopped: futex %ld spins %ld sleeps %ld", atomic_load(&futex_wakes),
				 atomic_load(&spins), atomic_load(&sleeps));
			return 0;
		}
		if (atomic_load(&fpu_bad)) {
			snprintf(msg, size, "the spinning thread's FPU values changed");
			return 0;
		}
		last_futex = atomic_load(&futex_wakes);
		last_spins = atomic_load(&spins);
		last_sleeps = atomic_load(&sleeps);
		if (atomic_load(&sh->final)) {
			unsigned char buf[PIPE_BYTES + 1];
			size_t got = 0;
			fcntl(pipe_fd[0], F_SETFL, O_NONBLOCK);
			while (got < sizeof buf) {
				ssize_t n = read(pipe_fd[0], buf + got, sizeof buf - got);
				if (n <= 0)
					break;
				got += (size_t)n;
			}
			if (got != PIPE_BYTES) {
				snprintf(msg, size, "pipe held %zu bytes, want %d", got, PIPE_BYTES);
				return 0;
			}
			for (int i = 0; i < PIPE_BYTES; i++)
				if (buf[i] != pipe_byte(i)) {
					snprintf(msg, size, "pipe byte %d differs", i);
					return 0;
				}
		}
	}
	snprintf(msg, size, "ok");
	return 1;
}

/* A live process other than R: count, and answer check generations. */
static void serve(void)
{
	long answered = 0;
	for (;;) {
		atomic_fetch_add(&sh->s[me].counter, 1);
		long gen = atomic_load(&sh->check_gen);
		if (gen != answered) {
			char msg[sizeof sh->s[me].verdict];
			int ok = self_check(msg, sizeof msg);
			snprintf(sh->s[me].verdict, sizeof sh->s[me].verdict, "%s %s", ok ? "PASS" : "FAIL", msg);
			atomic_store(&sh->s[me].answered, gen);
			answered = gen;
		}
		if (me == U_ && atomic_load(&sh->final))
			_exit(0);
		msleep(5);
	}
}

static pid_t start(int slot, pid_t ppid, void (*setup)(void))
{
	pid_t pid = fork();
	if (pid < 0)
		exit(20 + slot);
	if (pid == 0) {
		me = slot;
		want_ppid = ppid;
		atomic_store(&sh->s[slot].pid, getpid());
		if (setup)
			setup();
		want_sid = getsid(0);
		want_pgid = getpgrp();
		atomic_store(&sh->s[slot].ready, 1);
		serve();
	}
	return pid;
}

static pid_t a1_pid, a3_pid;
static void setup_a1(void) { setpgid(0, 0); }
static void setup_a2(void) { while (setpgid(0, a1_pid) != 0) msleep(1); }
static void setup_a3(void) { setpgid(0, 0); }
static void setup_a4(void) { while (setpgid(0, a3_pid) != 0) msleep(1); }

static void setup_a(void)
{
	setsid();
	close(pipe_fd[1]);
	pthread_t t;
	pthread_create(&t, NULL, futex_thread, NULL);
	pthread_create(&t, NULL, spin_thread, NULL);
	pthread_create(&t, NULL, sleep_thread, NULL);
	pid_t self = getpid();
	a1_pid = start(A1_, self, setup_a1);
	while (!atomic_load(&sh->s[A1_].ready))
		msleep(1);
	start(A2_, self, setup_a2);
	/* A3 leads a group, A4 joins it, then A3 exits (A reaps it): the group outlives its leader. */
	pid_t a3 = fork();
	if (a3 == 0) {
		setpgid(0, 0);
		for (;;)
			pause();
	}
	a3_pid = a3;
	setpgid(a3, a3);
	start(A4_, self, setup_a4);
	while (!atomic_load(&sh->s[A4_].ready))
		msleep(1);
	kill(a3, SIGKILL);
	waitpid(a3, NULL, 0);
}

static void setup_t(void) { }

static atomic_int usr1;
static void on_usr1(int sig) { (void)sig; atomic_fetch_add(&usr1, 1); }

static int u_stack[16384];
static int u_main(void *arg)
{
	(void)arg;
	me = U_;
	atomic_store(&sh->s[U_].pid, getpid());
	atomic_store(&sh->s[U_].ready, 1);
	want_ppid = getppid();
	want_sid = getsid(0);
	want_pgid = getpgrp();
	serve();
	return 0;
}

static pid_t z_pid, t_pid, u_pid;

static int check_all(char *msg, size_t size)
{
	char own[160];
	if (!self_check(own, sizeof own)) {
		snprintf(msg, size, "pid %d (R): %s", (int)getpid(), own);
		return 0;
	}
	long gen = atomic_fetch_add(&sh->check_gen, 1) + 1;
	int live[] = { A_, A1_, A2_, A4_, U_ };
	int nlive = atomic_load(&sh->final) ? 4 : 5;
	for (int k = 0; k < nlive; k++) {
		int i = live[k];
		for (int w = 0; w < 1200 && atomic_load(&sh->s[i].answered) != gen; w++)
			msleep(5);
		if (atomic_load(&sh->s[i].answered) != gen) {
			snprintf(msg, size, "pid %d (%s) did not answer", atomic_load(&sh->s[i].pid), names[i]);
			return 0;
		}
		if (strncmp(sh->s[i].verdict, "PASS", 4) != 0) {
			snprintf(msg, size, "pid %d (%s): %s", atomic_load(&sh->s[i].pid), names[i], sh->s[i].verdict);
			return 0;
		}
	}
	siginfo_t si;
	memset(&si, 0, sizeof si);
	if (waitid(P_PID, z_pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid != z_pid || si.si_code != CLD_EXITED || si.si_status != 7) {
		snprintf(msg, size, "zombie %d: not a zombie that exited with 7 (si_pid %d code %d status %d)", (int)z_pid, (int)si.si_pid, si.si_code, si.si_status);
		return 0;
	}
	char path[64], stat[256];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)t_pid);
	int fd = open(path, O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, stat, sizeof stat - 1) : -1;
	if (fd >= 0)
		close(fd);
	stat[n > 0 ? n : 0] = 0;
	char *rp = strrchr(stat, ')');
	if (!rp || rp[2] != 'T') {
		snprintf(msg, size, "child %d is not stopped: %s", (int)t_pid, stat);
		return 0;
	}
	if (atomic_load(&sh->final) && u_pid) {
		int status;
		for (int w = 0; w < 400 && !atomic_load(&usr1); w++)
			msleep(5);
		if (!atomic_load(&usr1) || waitpid(u_pid, &status, __WALL) != u_pid) {
			snprintf(msg, size, "U (%d) exited without SIGUSR1 to its parent", (int)u_pid);
			return 0;
		}
		u_pid = 0;
	}
	long sum = 0;
	for (int i = 0; i < NSLOT; i++)
		sum += atomic_load(&sh->s[i].counter);
	snprintf(msg, size, "procs=%d counters=%ld", NPROC - 1, sum);
	return 1;
}

int main(int argc, char **argv)
{
	proto_init(argc, argv);
	long mib = argc > 2 ? atol(argv[2]) : 8;
	cow_pages = (size_t)mib * 256;
	sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cow = mmap(NULL, cow_pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED || cow == MAP_FAILED || pipe(pipe_fd) != 0)
		return 10;
	/* khugepaged would copy the parent's pages into huge pages and end the sharing. */
	madvise(cow, cow_pages * PAGE, MADV_NOHUGEPAGE);
	fill_pages(cow, cow_pages, SALT_COW);
	me = R_;
	pid_t self = getpid();
	atomic_store(&sh->s[R_].pid, self);
	want_ppid = getppid();
	want_sid = getsid(0);
	want_pgid = getpgrp();
	signal(SIGUSR1, on_usr1);

	start(A_, self, setup_a);
	close(pipe_fd[0]);
	for (int i = 0; i < PIPE_BYTES; i++) {
		unsigned char b = pipe_byte(i);
		if (write(pipe_fd[1], &b, 1) != 1)
			return 11;
	}
	z_pid = fork();
	if (z_pid == 0)
		_exit(7);
	t_pid = start(T_, self, setup_t);
	while (!atomic_load(&sh->s[T_].ready))
		msleep(1);
	kill(t_pid, SIGSTOP);
	u_pid = clone(u_main, (char *)u_stack + sizeof u_stack, SIGUSR1, NULL);
	if (u_pid < 0)
		return 12;
	int need[] = { A_, A1_, A2_, A4_, U_ };
	for (int k = 0; k < 5; k++)
		while (!atomic_load(&sh->s[need[k]].ready))
			msleep(1);
	char facts[64];
	snprintf(facts, sizeof facts, "shared=%p", (void *)sh);
	proto_ready(facts);
	long counter = 0;
	for (;;) {
		if (proto_take("final"))
			atomic_store(&sh->final, 1);
		atomic_fetch_add(&sh->s[R_].counter, 1);
		proto_tick(++counter, check_all);
		msleep(10);
	}
}
