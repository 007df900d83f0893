/*
 * seccomp-pages: 64 MiB of pages under a seccomp filter that kills the
 * process at pipe2 or vmsplice, calls a large dump once had the process make
 * to splice its pages; the remote calls ckpt makes in it must pass with the
 * filter suspended (PTRACE_O_SUSPEND_SECCOMP), and its 64 MiB must be saved
 * whole (dump and dump -R). The program itself never makes either call.
 *
 *   seccomp-pages WORKDIR
 *
 * Set up before W/ready: 64 MiB of anonymous pages, each filled from its own
 * pattern; PR_SET_NO_NEW_PRIVS 1; the filter (x86_64 only; anything else is
 * allowed): pipe2, vmsplice -> KILL_PROCESS.
 * Check: every page holds its pattern; /proc/self/status has Seccomp 2.
 * Report: "PASS counter=N".
 */
#include "protocol.h"
#include "pattern.h"

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <time.h>

#define PAGES (64UL * 1024 * 1024 / PAGE)
enum { SALT = 23 };

static char *area;

static int check_all(char *msg, size_t size)
{
	long bad = first_bad_page(area, PAGES, SALT);
	if (bad >= 0) {
		snprintf(msg, size, "page %ld of the 64 MiB area differs", bad);
		return 0;
	}
	char status[4096];
	FILE *f = fopen("/proc/self/status", "r");
	int mode = -1;
	if (f) {
		while (fgets(status, sizeof status, f))
			if (sscanf(status, "Seccomp: %d", &mode) == 1)
				break;
		fclose(f);
	}
	if (mode != 2) {
		snprintf(msg, size, "Seccomp is %d, want 2", mode);
		return 0;
	}
	msg[0] = 0;
	return 1;
}

int main(int argc, char **argv)
{
	proto_init(argc, argv);
	area = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED)
		return 3;
	fill_pages(area, PAGES, SALT);

	struct sock_filter insns[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_pipe2, 2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_vmsplice, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
	};
	struct sock_fprog prog = { sizeof insns / sizeof insns[0], insns };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0)
		return 4;

	proto_ready("");
	proto_run(check_all);
}
