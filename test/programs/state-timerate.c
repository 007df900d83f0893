/*
 * state-timerate: timers that keep firing, at a rate a test can measure.
 *
 *   state-timerate WORKDIR
 *
 * Set up before W/ready:
 *  - ITIMER_REAL every 10 ms (SIGALRM, SA_RESTART handler counts: 100/s);
 *  - a POSIX timer (raw timer_create: the kernel's id) on CLOCK_MONOTONIC,
 *    SIGEV_SIGNAL SIGRTMIN value 0x5050, every 50 ms (SA_SIGINFO handler
 *    counts 1 + si_overrun expirations: 20/s). Its handler checks every
 *    delivery: si_code SI_TIMER, si_value 0x5050, si_timerid = the recorded
 *    id; anything else is remembered as a failure.
 * The main loop samples both counts with CLOCK_MONOTONIC every ~50 ms into a
 * ring. A check measures the rates over the last second or more (from the
 * newest sample at least 1 s old; at most 3 s) and reports them; it FAILs
 * only when a timer is no longer armed with its interval (getitimer,
 * timer_gettime on the recorded id) or a delivery was wrong. The test judges
 * the rates. Report:
 *   "PASS counter=N itimer_hz=H posix_hz=P window=S alarms=A expirations=E"
 * (window=0 when no sample is a second old yet).
 */
#include "state-common.h"

#include <signal.h>
#include <sys/time.h>

#define POSIX_VALUE 0x5050
#define RING 64

static volatile long alarms, expirations;
static int timer_id = -1;
static struct {
	double t;
	long alarms, expirations;
} ring[RING];
static long samples;

static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

static void on_timer(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	if (si->si_code != SI_TIMER || si->si_value.sival_int != POSIX_VALUE || si->si_timerid != timer_id)
		proto_fail("POSIX timer signal with si_code %d value %#x timerid %d, want %d %#x %d", si->si_code,
			   si->si_value.sival_int, si->si_timerid, SI_TIMER, POSIX_VALUE, timer_id);
	expirations += 1 + si->si_overrun;
}

static int check_all(char *msg, size_t size)
{
	struct itimerval it;
	getitimer(ITIMER_REAL, &it);
	if (it.it_interval.tv_sec != 0 || it.it_interval.tv_usec != 10000)
		DIFFER("ITIMER_REAL interval is %ld.%06ld s, was 0.010000 s", (long)it.it_interval.tv_sec,
		       (long)it.it_interval.tv_usec);
	struct itimerspec its;
	if (syscall(SYS_timer_gettime, timer_id, &its) != 0)
		DIFFER("timer_gettime(id %d): %s", timer_id, strerror(errno));
	if (its.it_interval.tv_sec != 0 || its.it_interval.tv_nsec != 50000000L)
		DIFFER("POSIX timer %d interval is %ld.%09ld s, was 0.050000000 s", timer_id,
		       (long)its.it_interval.tv_sec, its.it_interval.tv_nsec);

	double now = now_seconds(CLOCK_MONOTONIC);
	long a = alarms, e = expirations;
	double itimer_hz = 0, posix_hz = 0, window = 0;
	/* the newest sample at least a second old, if any within 3 s */
	for (long k = samples - 1; k >= 0 && k >= samples - RING; k--) {
		double age = now - ring[k % RING].t;
		if (age > 3.0)
			break;
		if (age >= 1.0) {
			window = age;
			itimer_hz = (double)(a - ring[k % RING].alarms) / age;
			posix_hz = (double)(e - ring[k % RING].expirations) / age;
			break;
		}
	}
	snprintf(msg, size, "itimer_hz=%.1f posix_hz=%.1f window=%.2f alarms=%ld expirations=%ld", itimer_hz, posix_hz,
		 window, a, e);
	return 1;
}

int main(int argc, char **argv)
{
	proto_init(argc, argv);

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_alarm;
	sa.sa_flags = SA_RESTART;
	SETUP(sigaction(SIGALRM, &sa, NULL), "sigaction SIGALRM");
	sa.sa_sigaction = on_timer;
	sa.sa_flags = SA_RESTART | SA_SIGINFO;
	SETUP(sigaction(SIGRTMIN, &sa, NULL), "sigaction SIGRTMIN");

	struct sigevent sev;
	memset(&sev, 0, sizeof sev);
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = SIGRTMIN;
	sev.sigev_value.sival_int = POSIX_VALUE;
	SETUP(syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, &timer_id), "timer_create");
	struct itimerspec its = { { 0, 50000000L }, { 0, 50000000L } };
	SETUP(syscall(SYS_timer_settime, timer_id, 0, &its, NULL), "timer_settime");
	struct itimerval it = { { 0, 10000 }, { 0, 10000 } };
	SETUP(setitimer(ITIMER_REAL, &it, NULL), "setitimer");

	char facts[64];
	snprintf(facts, sizeof facts, "timer=%d", timer_id);
	proto_ready(facts);
	for (long counter = 1;; counter++) {
		sleep_ms(50);
		ring[samples % RING].t = now_seconds(CLOCK_MONOTONIC);
		ring[samples % RING].alarms = alarms;
		ring[samples % RING].expirations = expirations;
		samples++;
		proto_tick(counter, check_all);
	}
}
