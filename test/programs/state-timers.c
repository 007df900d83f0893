/*
 * state-timers: interval timers and POSIX timers, armed far in the future so
 * that none fires during a test (any that fires is a FAIL).
 *
 *   state-timers WORKDIR
 *
 * Set up before W/ready:
 *  - setitimer ITIMER_REAL 3000 s, interval 3600 s; ITIMER_VIRTUAL 1700 s,
 *    interval 1800 s; ITIMER_PROF 800 s, interval 900 s;
 *  - POSIX timers by raw syscalls (the kernel's own timer ids), with gaps in
 *    the ids: two placeholder timers are created and deleted among them:
 *      T1 CLOCK_REALTIME           SIGEV_SIGNAL SIGRTMIN+2 value 0x1111  900 s / 1000 s
 *      T2 CLOCK_MONOTONIC          SIGEV_THREAD_ID (main thread) SIGRTMIN+3 value 0x2222  400 s / 500 s
 *      T3 CLOCK_BOOTTIME           SIGEV_NONE  200 s / 250 s
 *      T4 CLOCK_PROCESS_CPUTIME_ID SIGEV_SIGNAL SIGRTMIN+4 value 0x4444  90 s / 100 s
 *      T5 CLOCK_THREAD_CPUTIME_ID  SIGEV_SIGNAL SIGRTMIN+5 value 0x5555  80 s / 0 (one-shot)
 *      T6 CLOCK_MONOTONIC          SIGEV_SIGNAL SIGRTMIN+6  disarmed
 *    (value / interval).
 *  Handlers for SIGALRM, SIGVTALRM, SIGPROF and SIGRTMIN+2..6 record a firing.
 *
 * Every check, naming the first item that differs:
 *  - no timer fired;
 *  - getitimer: each interval equals the recorded one; the value left is > 0
 *    and at most the recorded one; for ITIMER_REAL it is also at least the
 *    recorded one minus the CLOCK_MONOTONIC time elapsed since (minus 0.5 s);
 *  - timer_gettime on the SAME kernel timer ids: each interval equals the
 *    recorded one; T6 is still disarmed; the others have 0 < value left <=
 *    the recorded value, and for T1..T3 value >= recorded - elapsed - 0.5 s;
 *    timer_getoverrun is 0; timer_gettime on the ids of the deleted
 *    placeholders fails with EINVAL (no timer appeared there);
 *  - /proc/self/timers, as a set of entries (ID, signal/value, notify,
 *    ClockID), equals the one recorded.
 * Report: "PASS counter=N ids=a,b,c,d,e,f".
 */
#include "state-common.h"

#include <signal.h>
#include <sys/time.h>

#define NTIMERS 6

struct ptimer {
	const char *name;
	clockid_t clock;
	int notify; /* SIGEV_* */
	int signo_offset; /* from SIGRTMIN */
	int value;
	long initial_s, interval_s;
	int id;
	struct itimerspec recorded;
	int elapsed_applies; /* a wall-clock timer: bounded below by elapsed time */
};

static struct ptimer timers[NTIMERS] = {
	{ "T1", CLOCK_REALTIME, SIGEV_SIGNAL, 2, 0x1111, 900, 1000, -1, {}, 1 },
	{ "T2", CLOCK_MONOTONIC, SIGEV_THREAD_ID, 3, 0x2222, 400, 500, -1, {}, 1 },
	{ "T3", CLOCK_BOOTTIME, SIGEV_NONE, 0, 0, 200, 250, -1, {}, 1 },
	{ "T4", CLOCK_PROCESS_CPUTIME_ID, SIGEV_SIGNAL, 4, 0x4444, 90, 100, -1, {}, 0 },
	{ "T5", CLOCK_THREAD_CPUTIME_ID, SIGEV_SIGNAL, 5, 0x5555, 80, 0, -1, {}, 0 },
	{ "T6", CLOCK_MONOTONIC, SIGEV_SIGNAL, 6, 0x6666, 0, 0, -1, {}, 0 },
};
static int deleted_ids[2] = { -1, -1 };

static const int itimer_which[3] = { ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF };
static const char *const itimer_names[3] = { "ITIMER_REAL", "ITIMER_VIRTUAL", "ITIMER_PROF" };
static const long itimer_setup[3][2] = { { 3000, 3600 }, { 1700, 1800 }, { 800, 900 } };
static struct itimerval itimer_recorded[3];
static double recorded_at; /* CLOCK_MONOTONIC when the timers were read back */
static char recorded_timers[4096];
static volatile sig_atomic_t fired_signal;

static void on_fire(int sig)
{
	fired_signal = sig;
}

/* /proc/self/timers as a canonical text: its entries (4 lines each), sorted. */
static int canonical_timers(char *out, size_t size)
{
	static char text[4096];
	static char entries[32][256];
	int n = 0;
	if (read_whole("/proc/self/timers", text, sizeof text) < 0)
		return -1;
	char *line = text;
	while (*line && n < 32) {
		if (strncmp(line, "ID:", 3) == 0) {
			entries[n][0] = 0;
			n++;
		}
		char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		if (n > 0 && strlen(entries[n - 1]) + len + 2 < sizeof entries[0]) {
			strncat(entries[n - 1], line, len);
			strcat(entries[n - 1], "|");
		}
		line += len + (end ? 1 : 0);
	}
	/* insertion sort: a restorer may create them in another order */
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && strcmp(entries[j - 1], entries[j]) > 0; j--) {
			char tmp[256];
			strcpy(tmp, entries[j]);
			strcpy(entries[j], entries[j - 1]);
			strcpy(entries[j - 1], tmp);
		}
	out[0] = 0;
	for (int i = 0; i < n; i++)
		if (strlen(out) + strlen(entries[i]) + 2 < size) {
			strcat(out, entries[i]);
			strcat(out, " ");
		}
	return 0;
}

static int create_timer(clockid_t clock, int notify, int signo, int value)
{
	struct sigevent sev;
	memset(&sev, 0, sizeof sev);
	sev.sigev_notify = notify;
	sev.sigev_signo = signo;
	sev.sigev_value.sival_int = value;
	if (notify == SIGEV_THREAD_ID)
		sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
	int id = -1;
	if (syscall(SYS_timer_create, clock, &sev, &id) != 0) {
		proto_fail("setup: timer_create(clock %d): %s", (int)clock, strerror(errno));
		return -1;
	}
	return id;
}

static double ts_seconds(struct timespec ts)
{
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double tv_seconds(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static int check_all(char *msg, size_t size)
{
	if (fired_signal)
		DIFFER("signal %d fired: a timer expired", (int)fired_signal);
	double elapsed = now_seconds(CLOCK_MONOTONIC) - recorded_at;

	for (int i = 0; i < 3; i++) {
		struct itimerval now;
		if (getitimer(itimer_which[i], &now) != 0)
			DIFFER("getitimer %s: %s", itimer_names[i], strerror(errno));
		const struct itimerval *was = &itimer_recorded[i];
		if (now.it_interval.tv_sec != was->it_interval.tv_sec || now.it_interval.tv_usec != was->it_interval.tv_usec)
			DIFFER("%s interval is %.6f s, was %.6f s", itimer_names[i], tv_seconds(now.it_interval),
			       tv_seconds(was->it_interval));
		double left = tv_seconds(now.it_value), had = tv_seconds(was->it_value);
		if (left <= 0 || left > had)
			DIFFER("%s has %.6f s left, had %.6f s", itimer_names[i], left, had);
		if (itimer_which[i] == ITIMER_REAL && left < had - elapsed - 0.5)
			DIFFER("%s has %.6f s left, had %.6f s %.3f s ago", itimer_names[i], left, had, elapsed);
	}

	for (int i = 0; i < NTIMERS; i++) {
		struct ptimer *t = &timers[i];
		struct itimerspec now;
		if (syscall(SYS_timer_gettime, t->id, &now) != 0)
			DIFFER("timer_gettime(%s id %d): %s", t->name, t->id, strerror(errno));
		if (now.it_interval.tv_sec != t->recorded.it_interval.tv_sec ||
		    now.it_interval.tv_nsec != t->recorded.it_interval.tv_nsec)
			DIFFER("%s (id %d) interval is %.9f s, was %.9f s", t->name, t->id, ts_seconds(now.it_interval),
			       ts_seconds(t->recorded.it_interval));
		double left = ts_seconds(now.it_value), had = ts_seconds(t->recorded.it_value);
		if (t->initial_s == 0) {
			if (left != 0)
				DIFFER("%s (id %d) was disarmed, now has %.9f s left", t->name, t->id, left);
		} else {
			if (left <= 0 || left > had)
				DIFFER("%s (id %d) has %.9f s left, had %.9f s", t->name, t->id, left, had);
			if (t->elapsed_applies && left < had - elapsed - 0.5)
				DIFFER("%s (id %d) has %.9f s left, had %.9f s %.3f s ago", t->name, t->id, left, had,
				       elapsed);
		}
		long overrun = syscall(SYS_timer_getoverrun, t->id);
		if (overrun != 0)
			DIFFER("%s (id %d) overrun is %ld", t->name, t->id, overrun);
	}
	for (int i = 0; i < 2; i++) {
		struct itimerspec its;
		if (syscall(SYS_timer_gettime, deleted_ids[i], &its) == 0 || errno != EINVAL)
			DIFFER("timer id %d (deleted) answers timer_gettime: %s", deleted_ids[i],
			       errno == EINVAL ? "ok" : strerror(errno));
	}

	static char now_timers[4096];
	if (canonical_timers(now_timers, sizeof now_timers) < 0)
		DIFFER("cannot read /proc/self/timers: %s", strerror(errno));
	if (strcmp(now_timers, recorded_timers) != 0) {
		size_t at = 0;
		while (now_timers[at] && now_timers[at] == recorded_timers[at])
			at++;
		size_t from = at > 40 ? at - 40 : 0;
		DIFFER("/proc/self/timers differs at byte %zu: now '%.100s', was '%.100s'", at, now_timers + from,
		       recorded_timers + from);
	}

	snprintf(msg, size, "ids=%d,%d,%d,%d,%d,%d", timers[0].id, timers[1].id, timers[2].id, timers[3].id,
		 timers[4].id, timers[5].id);
	return 1;
}

int main(int argc, char **argv)
{
	proto_init(argc, argv);

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_fire;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	sigaction(SIGVTALRM, &sa, NULL);
	sigaction(SIGPROF, &sa, NULL);
	for (int off = 2; off <= 6; off++)
		sigaction(SIGRTMIN + off, &sa, NULL);

	for (int i = 0; i < 3; i++) {
		struct itimerval it = { { itimer_setup[i][1], 0 }, { itimer_setup[i][0], 0 } };
		SETUP(setitimer(itimer_which[i], &it, NULL), itimer_names[i]);
	}

	for (int i = 0; i < NTIMERS; i++) {
		struct ptimer *t = &timers[i];
		if (i == 1 || i == 4) { /* a placeholder before T2 and T5, deleted: gaps in the ids */
			int placeholder = create_timer(CLOCK_MONOTONIC, SIGEV_NONE, 0, 0);
			deleted_ids[i == 1 ? 0 : 1] = placeholder;
			if (placeholder >= 0)
				SETUP(syscall(SYS_timer_delete, placeholder), "timer_delete placeholder");
		}
		t->id = create_timer(t->clock, t->notify, t->notify == SIGEV_NONE ? 0 : SIGRTMIN + t->signo_offset, t->value);
		struct itimerspec its = { { t->interval_s, 0 }, { t->initial_s, 0 } };
		if (t->id >= 0)
			SETUP(syscall(SYS_timer_settime, t->id, 0, &its, NULL), "timer_settime");
	}

	for (int i = 0; i < 3; i++)
		getitimer(itimer_which[i], &itimer_recorded[i]);
	for (int i = 0; i < NTIMERS; i++) {
		syscall(SYS_timer_gettime, timers[i].id, &timers[i].recorded);
		if (timers[i].recorded.it_interval.tv_sec != timers[i].interval_s)
			proto_fail("setup: %s interval reads back as %ld s", timers[i].name,
				   (long)timers[i].recorded.it_interval.tv_sec);
	}
	recorded_at = now_seconds(CLOCK_MONOTONIC);
	if (canonical_timers(recorded_timers, sizeof recorded_timers) < 0)
		proto_fail("setup: cannot read /proc/self/timers: %s", strerror(errno));

	char facts[128];
	snprintf(facts, sizeof facts, "ids=%d,%d,%d,%d,%d,%d deleted=%d,%d", timers[0].id, timers[1].id, timers[2].id,
		 timers[3].id, timers[4].id, timers[5].id, deleted_ids[0], deleted_ids[1]);
	proto_ready(facts);
	state_loop(check_all);
}
