/*
 * state-seccomp: two stacked seccomp BPF filters (SECCOMP_MODE_FILTER) under
 * no_new_privs.
 *
 *   state-seccomp WORKDIR
 *
 * Set up before W/ready: PR_SET_NO_NEW_PRIVS 1, then two filters (each first
 * checks the audit arch, x86_64; anything else is allowed):
 *   filter 1 (older):  acct -> ERRNO(ENOTSUP),  swapoff -> ERRNO(EL2HLT)
 *   filter 2 (newer):  swapon -> ERRNO(EPERM),  swapoff -> ERRNO(EL3HLT)
 * The syscalls are ones neither this program nor a restorer needs. Each is
 * probed with an invalid pointer, so that without the filter it would fail
 * with EFAULT and change nothing. For swapoff both filters answer ERRNO: the
 * kernel takes the newer filter's errno, so EL3HLT also proves the order.
 *
 * Every check, naming the first item that differs: /proc/self/status has
 * Seccomp 2, Seccomp_filters 2 and NoNewPrivs 1; PR_GET_SECCOMP is 2 and
 * PR_GET_NO_NEW_PRIVS is 1; acct fails with ENOTSUP, swapon with EPERM,
 * swapoff with EL3HLT; getppid() (allowed) works.
 * Report: "PASS counter=N filters=2".
 *
 * SECCOMP_MODE_STRICT is not covered: a strict process can only read, write
 * and exit, so it cannot run this protocol (open, rename, nanosleep).
 */
#include "state-common.h"

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>

#define ALLOW BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)
#define LOAD_NR BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr))
#define LOAD_ARCH BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch))
/* if nr == NR return ERRNO(err), else go on (2 instructions) */
#define DENY(nr, err) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (err))

static const struct {
	const char *name;
	long nr;
	int err;
	const char *errname;
} expected[] = {
	{ "acct", SYS_acct, ENOTSUP, "ENOTSUP" },
	{ "swapon", SYS_swapon, EPERM, "EPERM" },
	{ "swapoff", SYS_swapoff, EL3HLT, "EL3HLT" },
};

static int install(struct sock_filter *code, unsigned short len)
{
	struct sock_fprog prog = { len, code };
	return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

static int check_all(char *msg, size_t size)
{
	EXPECT_EQ("/proc/self/status Seccomp", status_number("Seccomp"), 2);
	EXPECT_EQ("/proc/self/status Seccomp_filters", status_number("Seccomp_filters"), 2);
	EXPECT_EQ("/proc/self/status NoNewPrivs", status_number("NoNewPrivs"), 1);
	EXPECT_EQ("PR_GET_SECCOMP", prctl(PR_GET_SECCOMP, 0, 0, 0, 0), 2);
	EXPECT_EQ("PR_GET_NO_NEW_PRIVS", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), 1);
	for (size_t i = 0; i < sizeof expected / sizeof *expected; i++) {
		errno = 0;
		long r = syscall(expected[i].nr, (void *)1, 0);
		if (r != -1 || errno != expected[i].err)
			DIFFER("%s returned %ld errno %d (%s), want -1 %s from the filter", expected[i].name, r, errno,
			       strerror(errno), expected[i].errname);
	}
	if (getppid() <= 0)
		DIFFER("getppid() failed: %s", strerror(errno));
	snprintf(msg, size, "filters=2");
	return 1;
}

int main(int argc, char **argv)
{
	proto_init(argc, argv);

	struct sock_filter first[] = {
		LOAD_ARCH,
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		ALLOW,
		LOAD_NR,
		DENY(SYS_acct, ENOTSUP),
		DENY(SYS_swapoff, EL2HLT),
		ALLOW,
	};
	struct sock_filter second[] = {
		LOAD_ARCH,
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		ALLOW,
		LOAD_NR,
		DENY(SYS_swapon, EPERM),
		DENY(SYS_swapoff, EL3HLT),
		ALLOW,
	};
	SETUP(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS");
	SETUP(install(first, sizeof first / sizeof *first), "seccomp filter 1");
	SETUP(install(second, sizeof second / sizeof *second), "seccomp filter 2");

	proto_ready("filters=2");
	state_loop(check_all);
}
