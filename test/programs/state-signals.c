/*
 * state-signals: signal dispositions, the blocked mask, pending signals with
 * their siginfo, and the alternate signal stack.
 *
 *   state-signals WORKDIR
 *
 * Set up before W/ready (and recorded as the kernel reports it back):
 *  - sigaction for 18 signals, each with its own handler function, its own
 *    sa_mask and flags among SA_SIGINFO, SA_RESTART, SA_ONSTACK, SA_NODEFER,
 *    SA_RESETHAND, SA_NOCLDSTOP; SIGQUIT, SIGPIPE, SIGWINCH, SIGTTIN and
 *    SIGRTMIN+5 are SIG_IGN. (SIGTRAP, SIGSEGV, SIGSTOP, SIGCONT keep SIG_DFL.)
 *  - the blocked mask: SIGHUP, SIGUSR2, SIGRTMIN+1, SIGRTMAX-1.
 *  - pending: SIGUSR2 sent to the main thread with tgkill (thread-directed:
 *    /proc/self/status SigPnd) and SIGRTMIN+1 queued three times with
 *    sigqueue values 11, 22, 33 (process-directed: ShdPnd).
 *  - sigaltstack: a 64 KiB static buffer, flags SS_AUTODISARM.
 *
 * Every check compares with the record, in this order, naming the first item
 * that differs: every signal's handler, sa_flags, sa_restorer and sa_mask; the
 * blocked mask; sigaltstack (sp, size, flags); sigpending() and SigPnd/ShdPnd/
 * SigBlk/SigIgn/SigCgt in /proc/self/status. Then it lets the pending signals
 * in: it unblocks SIGUSR2 and SIGRTMIN+1 and records what arrives. Exactly four
 * arrivals, in this order: SIGUSR2 (si_code SI_TKILL, si_pid = our pid, run on
 * the alternate stack), then SIGRTMIN+1 with values 11, 22, 33 (si_code
 * SI_QUEUE, si_pid = our pid). Finally it blocks them again and sends the same
 * four signals again, so the state is as at start for the next check (or
 * dump). Report: "PASS counter=N delivered=4 checks=K".
 *
 * A stop/continue test also uses this program: a SIGSTOP'ed process shows
 * State T and its counter stands still until SIGCONT.
 */
#include "state-common.h"

#include <signal.h>

#define NSIG_MAX 65
#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31) /* linux/signal.h */
#endif
#define ALTSTACK_SIZE (64 * 1024)

static char altstack[ALTSTACK_SIZE] __attribute__((aligned(16)));
static struct sigaction recorded[NSIG_MAX];
static sigset_t recorded_blocked;
static stack_t recorded_stack;
static unsigned long long recorded_sigblk, recorded_sigign, recorded_sigcgt;
static long checks;

/* What arrived while the check let the pending signals in. */
struct arrival {
	int sig, code, value, pid, uid, on_altstack;
};
static volatile struct arrival arrivals[8];
static volatile sig_atomic_t narrivals;

/* Distinct handler functions: a restore that mixes them up is caught. */
#define HANDLER(name)                                                                  \
	static void name(int sig) { (void)sig; proto_fail("handler " #name " ran (signal %d)", sig); }
#define ACTION(name)                                                                   \
	static void name(int sig, siginfo_t *si, void *uc)                             \
	{                                                                              \
		(void)si; (void)uc;                                                    \
		proto_fail("handler " #name " ran (signal %d)", sig);                 \
	}
HANDLER(h_hup)
ACTION(a_int)
ACTION(a_usr1)
HANDLER(h_alrm)
HANDLER(h_term)
HANDLER(h_chld)
ACTION(a_urg)
HANDLER(h_xcpu)
HANDLER(h_vtalrm)
ACTION(a_rtmin)
HANDLER(h_rtmin3)
ACTION(a_rtmax1)
HANDLER(h_rtmax)

static void record_arrival(int sig, siginfo_t *si)
{
	int i = narrivals;
	char here;
	if (i >= 8)
		return;
	arrivals[i].sig = sig;
	arrivals[i].code = si->si_code;
	arrivals[i].value = si->si_value.sival_int;
	arrivals[i].pid = si->si_pid;
	arrivals[i].uid = (int)si->si_uid;
	arrivals[i].on_altstack = &here >= altstack && &here < altstack + ALTSTACK_SIZE;
	narrivals = i + 1;
}

static void a_usr2(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	record_arrival(sig, si);
}

static void a_rtmin1(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	record_arrival(sig, si);
}

struct setup {
	int sig;
	void *handler; /* SIG_IGN, a sa_handler or a sa_sigaction */
	int flags;
	int mask[3]; /* 0-terminated */
};

static struct setup setups[32];
static int nsetups;

static void add(int sig, void *handler, int flags, int m1, int m2, int m3)
{
	setups[nsetups++] = (struct setup){ sig, handler, flags, { m1, m2, m3 } };
}

static void install_all(void)
{
	add(SIGHUP, (void *)h_hup, SA_RESTART, SIGINT, 0, 0);
	add(SIGINT, (void *)a_int, SA_SIGINFO, SIGHUP, SIGUSR1, 0);
	add(SIGQUIT, (void *)SIG_IGN, 0, 0, 0, 0);
	add(SIGUSR1, (void *)a_usr1, SA_SIGINFO | SA_RESTART | SA_ONSTACK, SIGTERM, SIGRTMIN + 2, 0);
	/* SIGRTMIN+1 in SIGUSR2's mask: while SIGUSR2's frame is set up, SIGRTMIN+1
	 * waits, so the handlers run in the order the signals are dequeued. */
	add(SIGUSR2, (void *)a_usr2, SA_SIGINFO | SA_ONSTACK, SIGALRM, SIGRTMIN + 1, 0);
	add(SIGPIPE, (void *)SIG_IGN, 0, 0, 0, 0);
	add(SIGALRM, (void *)h_alrm, SA_NODEFER, 0, 0, 0);
	add(SIGTERM, (void *)h_term, SA_RESETHAND | SA_RESTART, SIGUSR1, SIGUSR2, SIGCHLD);
	add(SIGCHLD, (void *)h_chld, SA_NOCLDSTOP | SA_RESTART, 0, 0, 0);
	add(SIGURG, (void *)a_urg, SA_SIGINFO | SA_ONSTACK | SA_NODEFER, SIGRTMAX, 0, 0);
	add(SIGXCPU, (void *)h_xcpu, 0, SIGXFSZ, 0, 0);
	add(SIGVTALRM, (void *)h_vtalrm, SA_RESTART | SA_NODEFER | SA_RESETHAND, 0, 0, 0);
	add(SIGWINCH, (void *)SIG_IGN, 0, 0, 0, 0);
	add(SIGTTIN, (void *)SIG_IGN, 0, 0, 0, 0);
	add(SIGRTMIN, (void *)a_rtmin, SA_SIGINFO | SA_NODEFER | SA_RESETHAND, SIGRTMIN + 1, 0, 0);
	add(SIGRTMIN + 1, (void *)a_rtmin1, SA_SIGINFO | SA_RESTART, SIGUSR2, 0, 0);
	add(SIGRTMIN + 3, (void *)h_rtmin3, SA_ONSTACK, SIGHUP, SIGINT, SIGQUIT);
	add(SIGRTMIN + 5, (void *)SIG_IGN, 0, 0, 0, 0);
	add(SIGRTMAX - 1, (void *)a_rtmax1, SA_SIGINFO | SA_RESTART | SA_ONSTACK, 0, 0, 0);
	add(SIGRTMAX, (void *)h_rtmax, SA_RESTART | SA_ONSTACK, SIGRTMIN, SIGRTMIN + 1, 0);

	for (int i = 0; i < nsetups; i++) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		if (setups[i].flags & SA_SIGINFO)
			sa.sa_sigaction = (void (*)(int, siginfo_t *, void *))setups[i].handler;
		else
			sa.sa_handler = (void (*)(int))setups[i].handler;
		sa.sa_flags = setups[i].flags;
		sigemptyset(&sa.sa_mask);
		for (int m = 0; m < 3 && setups[i].mask[m]; m++)
			sigaddset(&sa.sa_mask, setups[i].mask[m]);
		if (sigaction(setups[i].sig, &sa, NULL) != 0)
			proto_fail("setup: sigaction(%d): %s", setups[i].sig, strerror(errno));
	}
}

static void send_pending(void)
{
	if (syscall(SYS_tgkill, proto_pid, (pid_t)syscall(SYS_gettid), SIGUSR2) != 0)
		proto_fail("tgkill SIGUSR2: %s", strerror(errno));
	for (int v = 11; v <= 33; v += 11)
		if (sigqueue(proto_pid, SIGRTMIN + 1, (union sigval){ .sival_int = v }) != 0)
			proto_fail("sigqueue SIGRTMIN+1 %d: %s", v, strerror(errno));
}

static unsigned long long bit(int sig)
{
	return 1ULL << (sig - 1);
}

static int same_mask(const sigset_t *a, const sigset_t *b, int *first)
{
	for (int s = 1; s < NSIG_MAX; s++)
		if (sigismember(a, s) != sigismember(b, s)) {
			*first = s;
			return 0;
		}
	return 1;
}

static int check_actions(char *msg, size_t size)
{
	for (int s = 1; s < NSIG_MAX; s++) {
		if (s == SIGKILL || s == SIGSTOP || s == 32 || s == 33)
			continue;
		struct sigaction now;
		if (sigaction(s, NULL, &now) != 0)
			DIFFER("sigaction(%d): %s", s, strerror(errno));
		const struct sigaction *was = &recorded[s];
		if ((void *)now.sa_handler != (void *)was->sa_handler)
			DIFFER("signal %d handler is %p, was %p", s, (void *)now.sa_handler, (void *)was->sa_handler);
		if (now.sa_flags != was->sa_flags)
			DIFFER("signal %d sa_flags is %#x, was %#x", s, (unsigned)now.sa_flags, (unsigned)was->sa_flags);
		if ((void *)now.sa_restorer != (void *)was->sa_restorer)
			DIFFER("signal %d sa_restorer is %p, was %p", s, (void *)now.sa_restorer, (void *)was->sa_restorer);
		int first;
		if (!same_mask(&now.sa_mask, &was->sa_mask, &first))
			DIFFER("signal %d sa_mask differs at signal %d", s, first);
	}
	return 1;
}

static int check_pending(char *msg, size_t size)
{
	sigset_t pending, expected;
	int first;
	sigemptyset(&expected);
	sigaddset(&expected, SIGUSR2);
	sigaddset(&expected, SIGRTMIN + 1);
	sigpending(&pending);
	if (!same_mask(&pending, &expected, &first))
		DIFFER("sigpending() differs at signal %d (%s)", first,
		       sigismember(&pending, first) ? "pending, was not" : "not pending, was");
	unsigned long long sigpnd = status_mask("SigPnd"), shdpnd = status_mask("ShdPnd");
	if (sigpnd != bit(SIGUSR2))
		DIFFER("SigPnd (thread-directed) is %016llx, was %016llx (SIGUSR2)", sigpnd, bit(SIGUSR2));
	if (shdpnd != bit(SIGRTMIN + 1))
		DIFFER("ShdPnd (process-directed) is %016llx, was %016llx (SIGRTMIN+1)", shdpnd, bit(SIGRTMIN + 1));
	return 1;
}

static int check_delivery(char *msg, size_t size)
{
	sigset_t let_in;
	sigemptyset(&let_in);
	sigaddset(&let_in, SIGUSR2);
	sigaddset(&let_in, SIGRTMIN + 1);
	narrivals = 0;
	sigprocmask(SIG_UNBLOCK, &let_in, NULL); /* they are delivered before this returns */
	sigprocmask(SIG_BLOCK, &let_in, NULL);
	int n = narrivals;
	send_pending(); /* the state as at start, for the next check or dump */

	const struct arrival want[4] = {
		{ SIGUSR2, SI_TKILL, 0, proto_pid, 0, 1 },
		{ SIGRTMIN + 1, SI_QUEUE, 11, proto_pid, 0, 0 },
		{ SIGRTMIN + 1, SI_QUEUE, 22, proto_pid, 0, 0 },
		{ SIGRTMIN + 1, SI_QUEUE, 33, proto_pid, 0, 0 },
	};
	for (int i = 0; i < 4 && i < n; i++) {
		const volatile struct arrival *a = &arrivals[i];
		if (a->sig != want[i].sig || a->code != want[i].code || a->pid != want[i].pid || a->uid != want[i].uid)
			DIFFER("arrival %d: signal %d code %d pid %d uid %d, want signal %d code %d pid %d uid %d", i + 1,
			       a->sig, a->code, a->pid, a->uid, want[i].sig, want[i].code, want[i].pid, want[i].uid);
		if (want[i].sig != SIGUSR2 && a->value != want[i].value)
			DIFFER("arrival %d: SIGRTMIN+1 value %d, want %d", i + 1, a->value, want[i].value);
		if (want[i].on_altstack && !a->on_altstack)
			DIFFER("arrival %d: the SA_ONSTACK handler of signal %d did not run on the alternate stack", i + 1,
			       a->sig);
	}
	if (n != 4)
		DIFFER("%d signals arrived when SIGUSR2 and SIGRTMIN+1 were unblocked, want 4", n);
	return 1;
}

static int check_all(char *msg, size_t size)
{
	if (!check_actions(msg, size))
		return 0;

	sigset_t blocked;
	int first;
	sigprocmask(SIG_BLOCK, NULL, &blocked);
	if (!same_mask(&blocked, &recorded_blocked, &first))
		DIFFER("blocked mask differs at signal %d (%s)", first,
		       sigismember(&blocked, first) ? "blocked, was not" : "not blocked, was");

	stack_t ss;
	sigaltstack(NULL, &ss);
	if (ss.ss_sp != recorded_stack.ss_sp || ss.ss_size != recorded_stack.ss_size ||
	    ss.ss_flags != recorded_stack.ss_flags)
		DIFFER("sigaltstack is sp %p size %zu flags %#x, was sp %p size %zu flags %#x", ss.ss_sp, ss.ss_size,
		       (unsigned)ss.ss_flags, recorded_stack.ss_sp, recorded_stack.ss_size,
		       (unsigned)recorded_stack.ss_flags);

	if (!check_pending(msg, size))
		return 0;
	unsigned long long blk = status_mask("SigBlk"), ign = status_mask("SigIgn"), cgt = status_mask("SigCgt");
	if (blk != recorded_sigblk)
		DIFFER("SigBlk is %016llx, was %016llx", blk, recorded_sigblk);
	if (ign != recorded_sigign)
		DIFFER("SigIgn is %016llx, was %016llx", ign, recorded_sigign);
	if (cgt != recorded_sigcgt)
		DIFFER("SigCgt is %016llx, was %016llx", cgt, recorded_sigcgt);

	if (!check_delivery(msg, size))
		return 0;
	checks++;
	snprintf(msg, size, "delivered=4 checks=%ld", checks);
	return 1;
}

int main(int argc, char **argv)
{
	proto_init(argc, argv);

	install_all();

	stack_t ss = { .ss_sp = altstack, .ss_size = ALTSTACK_SIZE, .ss_flags = SS_AUTODISARM };
	SETUP(sigaltstack(&ss, NULL), "sigaltstack");

	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGUSR2);
	sigaddset(&block, SIGRTMIN + 1);
	sigaddset(&block, SIGRTMAX - 1);
	SETUP(sigprocmask(SIG_SETMASK, &block, NULL), "sigprocmask");
	send_pending();

	/* The record: what the kernel reports back, checked against what was asked. */
	for (int s = 1; s < NSIG_MAX; s++)
		if (s != SIGKILL && s != SIGSTOP && s != 32 && s != 33)
			sigaction(s, NULL, &recorded[s]);
	for (int i = 0; i < nsetups; i++) {
		const struct sigaction *r = &recorded[setups[i].sig];
		if ((void *)r->sa_handler != setups[i].handler || (r->sa_flags & setups[i].flags) != setups[i].flags)
			proto_fail("setup: signal %d reads back as handler %p flags %#x", setups[i].sig,
				   (void *)r->sa_handler, (unsigned)r->sa_flags);
	}
	sigprocmask(SIG_BLOCK, NULL, &recorded_blocked);
	sigaltstack(NULL, &recorded_stack);
	if (recorded_stack.ss_sp != altstack || recorded_stack.ss_size != ALTSTACK_SIZE ||
	    recorded_stack.ss_flags != SS_AUTODISARM)
		proto_fail("setup: sigaltstack reads back as %p/%zu/%#x", recorded_stack.ss_sp, recorded_stack.ss_size,
			   (unsigned)recorded_stack.ss_flags);
	recorded_sigblk = status_mask("SigBlk");
	recorded_sigign = status_mask("SigIgn");
	recorded_sigcgt = status_mask("SigCgt");

	char facts[128];
	snprintf(facts, sizeof facts, "altstack=%p rtmin=%d", (void *)altstack, SIGRTMIN);
	proto_ready(facts);
	state_loop(check_all);
}
