/*
 * thread-signal: a second thread with a signal pending for it alone.
 *
 *   thread-signal WORKDIR
 *
 * The worker thread blocks SIGUSR1; the main thread sends it one with
 * pthread_kill, so it stays pending on the worker. Checks: the worker still
 * sees SIGUSR1 pending (it looks every 10 ms) and the main thread does not
 * (the signal is the worker's, not the process's). Report: "PASS counter=N".
 */
#include "protocol.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>

static atomic_int worker_sees;
static atomic_long worker_looks;

static void *worker(void *arg)
{
	(void)arg;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	for (;;) {
		sigset_t pending;
		sigpending(&pending);
		atomic_store(&worker_sees, sigismember(&pending, SIGUSR1));
		atomic_fetch_add(&worker_looks, 1);
		struct timespec ts = { 0, 10 * 1000000L };
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static int check_all(char *msg, size_t size)
{
	long looks = atomic_load(&worker_looks);
	for (int i = 0; i < 1000 && atomic_load(&worker_looks) < looks + 2; i++) {
		struct timespec ms = { 0, 1000000L };
		nanosleep(&ms, NULL);
	}
	if (!atomic_load(&worker_sees)) {
		snprintf(msg, size, "the worker thread no longer has SIGUSR1 pending");
		return 0;
	}
	sigset_t pending;
	sigpending(&pending);
	if (sigismember(&pending, SIGUSR1)) {
		snprintf(msg, size, "SIGUSR1 is pending for the main thread too");
		return 0;
	}
	return 1;
}

int main(int argc, char **argv)
{
	proto_init(argc, argv);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL); /* the main thread blocks it too: no handler runs */
	pthread_t t;
	if (pthread_create(&t, NULL, worker, NULL) != 0)
		return 10;
	struct timespec ts = { 0, 50 * 1000000L };
	nanosleep(&ts, NULL);
	pthread_kill(t, SIGUSR1);
	nanosleep(&ts, NULL);
	proto_ready("");
	for (long counter = 1;; counter++) {
		nanosleep(&(struct timespec){ 0, 20 * 1000000L }, NULL);
		proto_tick(counter, check_all);
	}
}
