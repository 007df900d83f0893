/*
 * state-creds: user and group ids, supplementary groups, capabilities,
 * securebits and no_new_privs.
 *
 *   state-creds WORKDIR        (must be started as root)
 *
 * Set up before W/ready, as root (then no longer root):
 *  - W is made mode 0777 first, so that the program can still create, rename
 *    and delete its protocol files in W once it is uid 1001 (the test's files
 *    there are 0644: readable by everyone).
 *  - securebits SECBIT_KEEP_CAPS | SECBIT_NOROOT (keeps the permitted set
 *    across the uid change below), supplementary groups 2001, 2002, 2003;
 *  - setresgid(1000, 1001, 1002), setresuid(1000, 1001, 1002);
 *  - setfsuid(1003), setfsgid(1004);
 *  - bounding set: CAP_SYS_BOOT, CAP_SYS_MODULE, CAP_MKNOD, CAP_AUDIT_WRITE,
 *    CAP_SYS_TIME and CAP_WAKE_ALARM dropped (PR_CAPBSET_DROP);
 *  - capset: permitted CHOWN DAC_OVERRIDE FOWNER KILL SETGID SETUID
 *    NET_BIND_SERVICE NET_RAW; effective CHOWN KILL; inheritable KILL
 *    NET_BIND_SERVICE;
 *  - ambient: CAP_NET_BIND_SERVICE raised (PR_CAP_AMBIENT_RAISE);
 *  - no_new_privs 1; dumpable 1 (it fell to 0 with the uid change).
 *
 * Every check compares with the record (what the kernel reported right after
 * the setup, itself checked against the list above), naming the first item
 * that differs: getresuid, getresgid, fsuid, fsgid, getgroups, capget
 * (effective, permitted, inheritable, both 32-bit words), PR_CAPBSET_READ for
 * every cap up to /proc/sys/kernel/cap_last_cap, PR_CAP_AMBIENT_IS_SET for
 * every cap, PR_GET_SECUREBITS, PR_GET_KEEPCAPS, PR_GET_NO_NEW_PRIVS,
 * PR_GET_DUMPABLE, and the Uid/Gid/Groups/CapInh/CapPrm/CapEff/CapBnd/CapAmb
 * lines of /proc/self/status.
 * Report: "PASS counter=N uid=1000/1001/1002 fsuid=1003".
 */
#include "state-common.h"

#include <grp.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>

#define NGROUPS 3
static const gid_t groups_set[NGROUPS] = { 2001, 2002, 2003 };
static const int bset_dropped[] = { CAP_SYS_BOOT, CAP_SYS_MODULE, CAP_MKNOD, CAP_AUDIT_WRITE, CAP_SYS_TIME, CAP_WAKE_ALARM };

#define CAPBIT(c) (1ULL << (c))
static const unsigned long long want_permitted = CAPBIT(CAP_CHOWN) | CAPBIT(CAP_DAC_OVERRIDE) | CAPBIT(CAP_FOWNER) |
						  CAPBIT(CAP_KILL) | CAPBIT(CAP_SETGID) | CAPBIT(CAP_SETUID) |
						  CAPBIT(CAP_NET_BIND_SERVICE) | CAPBIT(CAP_NET_RAW);
static const unsigned long long want_effective = CAPBIT(CAP_CHOWN) | CAPBIT(CAP_KILL);
static const unsigned long long want_inheritable = CAPBIT(CAP_KILL) | CAPBIT(CAP_NET_BIND_SERVICE);
static const unsigned long long want_ambient = CAPBIT(CAP_NET_BIND_SERVICE);
static const int want_securebits = SECBIT_KEEP_CAPS | SECBIT_NOROOT;

struct creds {
	uid_t ruid, euid, suid, fsuid;
	gid_t rgid, egid, sgid, fsgid;
	int ngroups;
	gid_t groups[64];
	unsigned long long eff, prm, inh, bnd, amb;
	int securebits, keepcaps, nnp, dumpable;
	char status[8][128]; /* see status_lines */
};

static const char *const status_lines[8] = { "Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb" };
static struct creds recorded;
static int cap_last;

static int capget3(unsigned long long *eff, unsigned long long *prm, unsigned long long *inh)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d) != 0)
		return -1;
	*eff = d[0].effective | (unsigned long long)d[1].effective << 32;
	*prm = d[0].permitted | (unsigned long long)d[1].permitted << 32;
	*inh = d[0].inheritable | (unsigned long long)d[1].inheritable << 32;
	return 0;
}

static int capset3(unsigned long long eff, unsigned long long prm, unsigned long long inh)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2] = {
		{ (unsigned)eff, (unsigned)prm, (unsigned)inh },
		{ (unsigned)(eff >> 32), (unsigned)(prm >> 32), (unsigned)(inh >> 32) },
	};
	return (int)syscall(SYS_capset, &h, d);
}

static void read_creds(struct creds *c)
{
	memset(c, 0, sizeof *c);
	getresuid(&c->ruid, &c->euid, &c->suid);
	getresgid(&c->rgid, &c->egid, &c->sgid);
	c->fsuid = (uid_t)setfsuid((uid_t)-1); /* an invalid id changes nothing and returns the current one */
	c->fsgid = (gid_t)setfsgid((gid_t)-1);
	c->ngroups = getgroups(64, c->groups);
	if (capget3(&c->eff, &c->prm, &c->inh) != 0)
		c->eff = c->prm = c->inh = ~0ULL;
	for (int cap = 0; cap <= cap_last; cap++) {
		if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1)
			c->bnd |= CAPBIT(cap);
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap, 0, 0) == 1)
			c->amb |= CAPBIT(cap);
	}
	c->securebits = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
	c->keepcaps = prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0);
	c->nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
	c->dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
	for (int i = 0; i < 8; i++)
		if (status_field(status_lines[i], c->status[i], sizeof c->status[i]) < 0)
			strcpy(c->status[i], "(missing)");
}

static int compare(const struct creds *now, const struct creds *was, char *msg, size_t size)
{
	if (now->ruid != was->ruid || now->euid != was->euid || now->suid != was->suid)
		DIFFER("getresuid is %u/%u/%u, was %u/%u/%u", now->ruid, now->euid, now->suid, was->ruid, was->euid,
		       was->suid);
	if (now->rgid != was->rgid || now->egid != was->egid || now->sgid != was->sgid)
		DIFFER("getresgid is %u/%u/%u, was %u/%u/%u", now->rgid, now->egid, now->sgid, was->rgid, was->egid,
		       was->sgid);
	EXPECT_EQ("fsuid", now->fsuid, was->fsuid);
	EXPECT_EQ("fsgid", now->fsgid, was->fsgid);
	EXPECT_EQ("getgroups() count", now->ngroups, was->ngroups);
	for (int i = 0; i < was->ngroups; i++)
		if (now->groups[i] != was->groups[i])
			DIFFER("supplementary group %d is %u, was %u", i, now->groups[i], was->groups[i]);
	if (now->eff != was->eff)
		DIFFER("effective caps are %#llx, were %#llx", now->eff, was->eff);
	if (now->prm != was->prm)
		DIFFER("permitted caps are %#llx, were %#llx", now->prm, was->prm);
	if (now->inh != was->inh)
		DIFFER("inheritable caps are %#llx, were %#llx", now->inh, was->inh);
	if (now->bnd != was->bnd)
		DIFFER("bounding set (PR_CAPBSET_READ) is %#llx, was %#llx", now->bnd, was->bnd);
	if (now->amb != was->amb)
		DIFFER("ambient set (PR_CAP_AMBIENT_IS_SET) is %#llx, was %#llx", now->amb, was->amb);
	if (now->securebits != was->securebits)
		DIFFER("securebits are %#x, were %#x", now->securebits, was->securebits);
	EXPECT_EQ("PR_GET_KEEPCAPS", now->keepcaps, was->keepcaps);
	EXPECT_EQ("PR_GET_NO_NEW_PRIVS", now->nnp, was->nnp);
	EXPECT_EQ("PR_GET_DUMPABLE", now->dumpable, was->dumpable);
	for (int i = 0; i < 8; i++)
		if (strcmp(now->status[i], was->status[i]) != 0)
			DIFFER("/proc/self/status %s is '%s', was '%s'", status_lines[i], now->status[i], was->status[i]);
	return 1;
}

static int check_all(char *msg, size_t size)
{
	static struct creds now;
	read_creds(&now);
	if (!compare(&now, &recorded, msg, size))
		return 0;
	snprintf(msg, size, "uid=%u/%u/%u fsuid=%u", now.ruid, now.euid, now.suid, now.fsuid);
	return 1;
}

/* The record must be what the setup asked for: otherwise the setup failed. */
static void verify_setup(const struct creds *c)
{
	unsigned long long bnd_want = 0;
	for (int cap = 0; cap <= cap_last; cap++)
		bnd_want |= CAPBIT(cap);
	for (size_t i = 0; i < sizeof bset_dropped / sizeof *bset_dropped; i++)
		bnd_want &= ~CAPBIT(bset_dropped[i]);
	/* Caps the runner never had (CAP_SYS_RESOURCE here) are not in our bounding set either. */
	if (c->ruid != 1000 || c->euid != 1001 || c->suid != 1002 || c->fsuid != 1003)
		proto_fail("setup: uids are %u/%u/%u fsuid %u", c->ruid, c->euid, c->suid, c->fsuid);
	else if (c->rgid != 1000 || c->egid != 1001 || c->sgid != 1002 || c->fsgid != 1004)
		proto_fail("setup: gids are %u/%u/%u fsgid %u", c->rgid, c->egid, c->sgid, c->fsgid);
	else if (c->ngroups != NGROUPS || memcmp(c->groups, groups_set, sizeof groups_set) != 0)
		proto_fail("setup: %d supplementary groups", c->ngroups);
	else if (c->eff != want_effective || c->prm != want_permitted || c->inh != want_inheritable)
		proto_fail("setup: caps are eff %#llx prm %#llx inh %#llx", c->eff, c->prm, c->inh);
	else if ((c->bnd & ~bnd_want) != 0 || (bnd_want & ~c->bnd & ~CAPBIT(CAP_SYS_RESOURCE)) != 0)
		proto_fail("setup: bounding set is %#llx, want %#llx", c->bnd, bnd_want);
	else if (c->amb != want_ambient)
		proto_fail("setup: ambient set is %#llx", c->amb);
	else if (c->securebits != want_securebits || c->keepcaps != 1 || c->nnp != 1 || c->dumpable != 1)
		proto_fail("setup: securebits %#x keepcaps %d nnp %d dumpable %d", c->securebits, c->keepcaps, c->nnp,
			   c->dumpable);
}

int main(int argc, char **argv)
{
	proto_init(argc, argv);
	char text[64];
	cap_last = read_whole("/proc/sys/kernel/cap_last_cap", text, sizeof text) > 0 ? atoi(text) : 40;
	if (cap_last > 63)
		cap_last = 63;

	if (getuid() != 0 || geteuid() != 0)
		proto_fail("setup: must be started as root (uid %u euid %u)", getuid(), geteuid());
	SETUP(chmod(proto_dir, 0777), "chmod W 0777");
	SETUP(prctl(PR_SET_SECUREBITS, want_securebits, 0, 0, 0), "PR_SET_SECUREBITS");
	SETUP(setgroups(NGROUPS, groups_set), "setgroups");
	SETUP(setresgid(1000, 1001, 1002), "setresgid");
	SETUP(setresuid(1000, 1001, 1002), "setresuid");
	/* KEEP_CAPS kept the permitted set; the uid change emptied the effective one. */
	unsigned long long eff, prm, inh;
	SETUP(capget3(&eff, &prm, &inh), "capget");
	SETUP(capset3(prm, prm, inh), "capset (raise effective)");
	for (size_t i = 0; i < sizeof bset_dropped / sizeof *bset_dropped; i++)
		SETUP(prctl(PR_CAPBSET_DROP, bset_dropped[i], 0, 0, 0), "PR_CAPBSET_DROP");
	setfsuid(1003);
	setfsgid(1004);
	SETUP(capset3(want_effective, want_permitted, want_inheritable), "capset");
	SETUP(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0), "PR_CAP_AMBIENT_RAISE");
	SETUP(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS");
	SETUP(prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), "PR_SET_DUMPABLE");

	read_creds(&recorded);
	verify_setup(&recorded);

	snprintf(text, sizeof text, "uid=%u euid=%u suid=%u fsuid=%u", recorded.ruid, recorded.euid, recorded.suid,
		 recorded.fsuid);
	proto_ready(text);
	state_loop(check_all);
}
