/*
 * state-limits: resource limits and the other per-process knobs.
 *
 *   state-limits WORKDIR [pdeath-tolerant]
 *
 * Set up before W/ready (run as root; every limit is only lowered, never
 * raised: root here lacks CAP_SYS_RESOURCE):
 *  - rlimits, soft:hard, each at most what it was: NOFILE 256:512,
 *    STACK soft 4 MiB (hard kept), CORE 0:1 MiB, NPROC 3000:4000,
 *    FSIZE 1 GiB:2 GiB, CPU 100000:200000 s, MEMLOCK 1 MiB:2 MiB,
 *    LOCKS 1000:2000, MSGQUEUE 400000:500000, SIGPENDING 5000:6000,
 *    NICE 0:0, RTPRIO 0:0; all 16 limits are recorded;
 *  - umask 027; cwd W/cwd-here (mkdir + chdir);
 *  - personality ADDR_NO_RANDOMIZE | UNAME26 (both only matter at exec or to
 *    uname(): harmless here);
 *  - nice 7 (setpriority), then policy SCHED_BATCH (which keeps the nice);
 *  - CPU affinity: CPU 0 only;
 *  - oom_score_adj 345 (written to /proc/self/oom_score_adj: raising needs no
 *    privilege);
 *  - timer slack 123456 ns (PR_SET_TIMERSLACK);
 *  - comm "st-limits-comm" (PR_SET_NAME);
 *  - pdeath signal SIGWINCH (PR_SET_PDEATHSIG; SIGWINCH is ignored by default,
 *    so a parent that dies does no harm);
 *  - child subreaper 1, keep-caps 1, then dumpable 0 (last: /proc/self files
 *    become root's, which this root process can still use).
 *
 * Every check compares with the record, naming the first item that differs:
 * getrlimit of all 16 resources, umask (read from /proc/self/status Umask, so
 * the check does not change it), getcwd, personality(0xffffffff),
 * getpriority, sched_getscheduler, sched_getaffinity, /proc/self/oom_score_adj,
 * PR_GET_TIMERSLACK, PR_GET_NAME, PR_GET_PDEATHSIG, PR_GET_CHILD_SUBREAPER,
 * PR_GET_KEEPCAPS, PR_GET_DUMPABLE.
 *
 * With argv[2] = "pdeath-tolerant", PR_GET_PDEATHSIG may also read 0 (a
 * restorer may choose not to re-arm it, since the restored process has a new
 * parent). By default it must be SIGWINCH.
 * Report: "PASS counter=N nofile=256:512 nice=7".
 */
#include "state-common.h"

#include <sched.h>
#include <signal.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#define MiB (1024UL * 1024)
#define KEEP ((rlim_t)-2) /* leave this half of the limit as it is */

static const struct {
	int resource;
	const char *name;
	rlim_t soft, hard;
} lowered[] = {
	{ RLIMIT_NOFILE, "NOFILE", 256, 512 },
	{ RLIMIT_STACK, "STACK", 4 * MiB, KEEP },
	{ RLIMIT_CORE, "CORE", 0, 1 * MiB },
	{ RLIMIT_NPROC, "NPROC", 3000, 4000 },
	{ RLIMIT_FSIZE, "FSIZE", 1024 * MiB, 2048 * MiB },
	{ RLIMIT_CPU, "CPU", 100000, 200000 },
	{ RLIMIT_MEMLOCK, "MEMLOCK", 1 * MiB, 2 * MiB },
	{ RLIMIT_LOCKS, "LOCKS", 1000, 2000 },
	{ RLIMIT_MSGQUEUE, "MSGQUEUE", 400000, 500000 },
	{ RLIMIT_SIGPENDING, "SIGPENDING", 5000, 6000 },
	{ RLIMIT_NICE, "NICE", 0, 0 },
	{ RLIMIT_RTPRIO, "RTPRIO", 0, 0 },
};
static const char *const rlimit_names[RLIM_NLIMITS] = {
	"CPU", "FSIZE", "DATA", "STACK", "CORE", "RSS", "NPROC", "NOFILE",
	"MEMLOCK", "AS", "LOCKS", "SIGPENDING", "MSGQUEUE", "NICE", "RTPRIO", "RTTIME",
};

#define PERSONALITY (ADDR_NO_RANDOMIZE | UNAME26)
#define NICE 7
#define OOM_SCORE_ADJ 345
#define TIMER_SLACK 123456
#define COMM "st-limits-comm"
#define PDEATH_SIGNAL SIGWINCH

struct knobs {
	struct rlimit rl[RLIM_NLIMITS];
	char umask[16];
	char cwd[PATH_MAX];
	int personality, nice, policy;
	cpu_set_t affinity;
	int oom_score_adj;
	long timerslack;
	char comm[17];
	int pdeath, subreaper, keepcaps, dumpable;
};

static struct knobs recorded;
static int pdeath_tolerant;

static void read_knobs(struct knobs *k)
{
	memset(k, 0, sizeof *k);
	for (int r = 0; r < RLIM_NLIMITS; r++)
		getrlimit(r, &k->rl[r]);
	if (status_field("Umask", k->umask, sizeof k->umask) < 0)
		strcpy(k->umask, "(missing)");
	if (!getcwd(k->cwd, sizeof k->cwd))
		snprintf(k->cwd, sizeof k->cwd, "(getcwd: %s)", strerror(errno));
	k->personality = personality(0xffffffff);
	errno = 0;
	k->nice = getpriority(PRIO_PROCESS, 0);
	k->policy = sched_getscheduler(0);
	sched_getaffinity(0, sizeof k->affinity, &k->affinity);
	char text[32];
	k->oom_score_adj = read_whole("/proc/self/oom_score_adj", text, sizeof text) > 0 ? atoi(text) : -9999;
	k->timerslack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
	prctl(PR_GET_NAME, k->comm, 0, 0, 0);
	prctl(PR_GET_PDEATHSIG, &k->pdeath, 0, 0, 0);
	prctl(PR_GET_CHILD_SUBREAPER, &k->subreaper, 0, 0, 0);
	k->keepcaps = prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0);
	k->dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
}

static int compare(const struct knobs *now, const struct knobs *was, char *msg, size_t size)
{
	for (int r = 0; r < RLIM_NLIMITS; r++)
		if (now->rl[r].rlim_cur != was->rl[r].rlim_cur || now->rl[r].rlim_max != was->rl[r].rlim_max)
			DIFFER("RLIMIT_%s is %lld:%lld, was %lld:%lld", rlimit_names[r], (long long)now->rl[r].rlim_cur,
			       (long long)now->rl[r].rlim_max, (long long)was->rl[r].rlim_cur,
			       (long long)was->rl[r].rlim_max);
	if (strcmp(now->umask, was->umask) != 0)
		DIFFER("umask is %s, was %s", now->umask, was->umask);
	if (strcmp(now->cwd, was->cwd) != 0)
		DIFFER("cwd is %s, was %s", now->cwd, was->cwd);
	if (now->personality != was->personality)
		DIFFER("personality is %#x, was %#x", (unsigned)now->personality, (unsigned)was->personality);
	EXPECT_EQ("nice (getpriority)", now->nice, was->nice);
	EXPECT_EQ("scheduling policy", now->policy, was->policy);
	if (!CPU_EQUAL(&now->affinity, &was->affinity))
		DIFFER("CPU affinity: %d CPUs (CPU 0 %s), was %d CPUs (CPU 0 %s)", CPU_COUNT(&now->affinity),
		       CPU_ISSET(0, &now->affinity) ? "in" : "out", CPU_COUNT(&was->affinity),
		       CPU_ISSET(0, &was->affinity) ? "in" : "out");
	EXPECT_EQ("oom_score_adj", now->oom_score_adj, was->oom_score_adj);
	EXPECT_EQ("timer slack", now->timerslack, was->timerslack);
	if (strcmp(now->comm, was->comm) != 0)
		DIFFER("comm is '%s', was '%s'", now->comm, was->comm);
	if (!(pdeath_tolerant && now->pdeath == 0))
		EXPECT_EQ("PR_GET_PDEATHSIG", now->pdeath, was->pdeath);
	EXPECT_EQ("PR_GET_CHILD_SUBREAPER", now->subreaper, was->subreaper);
	EXPECT_EQ("PR_GET_KEEPCAPS", now->keepcaps, was->keepcaps);
	EXPECT_EQ("PR_GET_DUMPABLE", now->dumpable, was->dumpable);
	return 1;
}

static int check_all(char *msg, size_t size)
{
	static struct knobs now;
	read_knobs(&now);
	if (!compare(&now, &recorded, msg, size))
		return 0;
	snprintf(msg, size, "nofile=%lld:%lld nice=%d pdeath=%d", (long long)now.rl[RLIMIT_NOFILE].rlim_cur,
		 (long long)now.rl[RLIMIT_NOFILE].rlim_max, now.nice, now.pdeath);
	return 1;
}

static void lower_limits(void)
{
	for (size_t i = 0; i < sizeof lowered / sizeof *lowered; i++) {
		struct rlimit rl;
		getrlimit(lowered[i].resource, &rl);
		rlim_t hard = lowered[i].hard == KEEP || lowered[i].hard > rl.rlim_max ? rl.rlim_max : lowered[i].hard;
		rlim_t soft = lowered[i].soft == KEEP || lowered[i].soft > rl.rlim_cur ? rl.rlim_cur : lowered[i].soft;
		if (soft > hard)
			soft = hard;
		rl.rlim_cur = soft;
		rl.rlim_max = hard;
		if (setrlimit(lowered[i].resource, &rl) != 0)
			proto_fail("setup: setrlimit %s: %s", lowered[i].name, strerror(errno));
	}
}

int main(int argc, char **argv)
{
	proto_init(argc, argv);
	pdeath_tolerant = argc > 2 && strcmp(argv[2], "pdeath-tolerant") == 0;

	lower_limits();
	umask(027);
	char cwd[PATH_MAX];
	snprintf(cwd, sizeof cwd, "%s/cwd-here", proto_dir);
	SETUP(mkdir(cwd, 0755), "mkdir W/cwd-here");
	SETUP(chdir(cwd), "chdir W/cwd-here");
	SETUP(personality(PERSONALITY), "personality");
	SETUP(setpriority(PRIO_PROCESS, 0, NICE), "setpriority");
	struct sched_param sp = { .sched_priority = 0 };
	SETUP(sched_setscheduler(0, SCHED_BATCH, &sp), "sched_setscheduler SCHED_BATCH");
	cpu_set_t cpus;
	CPU_ZERO(&cpus);
	CPU_SET(0, &cpus);
	SETUP(sched_setaffinity(0, sizeof cpus, &cpus), "sched_setaffinity");
	int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
	char text[64];
	snprintf(text, sizeof text, "%d\n", OOM_SCORE_ADJ);
	if (fd < 0 || write(fd, text, strlen(text)) < 0)
		proto_fail("setup: write /proc/self/oom_score_adj: %s", strerror(errno));
	if (fd >= 0)
		close(fd);
	SETUP(prctl(PR_SET_TIMERSLACK, TIMER_SLACK, 0, 0, 0), "PR_SET_TIMERSLACK");
	SETUP(prctl(PR_SET_NAME, COMM, 0, 0, 0), "PR_SET_NAME");
	SETUP(prctl(PR_SET_PDEATHSIG, PDEATH_SIGNAL, 0, 0, 0), "PR_SET_PDEATHSIG");
	SETUP(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "PR_SET_CHILD_SUBREAPER");
	SETUP(prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0), "PR_SET_KEEPCAPS");
	SETUP(prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "PR_SET_DUMPABLE");

	read_knobs(&recorded);
	if ((recorded.personality & 0xffff) != 0 || (recorded.personality & PERSONALITY) != PERSONALITY ||
	    recorded.nice != NICE || recorded.policy != SCHED_BATCH || CPU_COUNT(&recorded.affinity) != 1 ||
	    recorded.oom_score_adj != OOM_SCORE_ADJ || recorded.timerslack != TIMER_SLACK ||
	    strcmp(recorded.comm, COMM) != 0 || recorded.pdeath != PDEATH_SIGNAL || recorded.subreaper != 1 ||
	    recorded.keepcaps != 1 || recorded.dumpable != 0 || strcmp(recorded.umask, "0027") != 0)
		proto_fail("setup: reads back personality %#x nice %d policy %d cpus %d oom %d slack %ld comm %s "
			   "pdeath %d subreaper %d keepcaps %d dumpable %d umask %s",
			   (unsigned)recorded.personality, recorded.nice, recorded.policy, CPU_COUNT(&recorded.affinity),
			   recorded.oom_score_adj, recorded.timerslack, recorded.comm, recorded.pdeath,
			   recorded.subreaper, recorded.keepcaps, recorded.dumpable, recorded.umask);

	snprintf(text, sizeof text, "comm=%s nofile=%lld", COMM, (long long)recorded.rl[RLIMIT_NOFILE].rlim_max);
	proto_ready(text);
	state_loop(check_all);
}
