/*
 * state-memsem: the semantics attached to memory areas (madvise, mlock,
 * protections, MAP_GROWSDOWN), and the process's cmdline, environ and exe.
 *
 *   state-memsem WORKDIR [ARGS...]     (the test adds args and environment)
 *
 * Set up before W/ready, each area a VMA of its own at a fixed place inside a
 * range this program reserved (holes between them), each filled with its own
 * pseudo-random pattern (pattern.h):
 *   dontfork   4 pages   MADV_DONTFORK      VmFlags "dc"
 *   wipefork   4 pages   MADV_WIPEONFORK    VmFlags "wf"
 *   dontdump   4 pages   MADV_DONTDUMP      VmFlags "dd"
 *   locked     4 pages   mlock              VmFlags "lo"
 *   below      2 pages   RW, then a PROT_NONE guard page ("---p"), then
 *   above      2 pages   RW: three VMAs
 *   nohuge     4 pages   MADV_NOHUGEPAGE    VmFlags "nh"
 *   growsdown  8 pages   MAP_GROWSDOWN      VmFlags "gd" (1 MiB hole below)
 *   huge       4 MiB, 2 MiB-aligned, MADV_HUGEPAGE  VmFlags "hg"
 *
 * Every check, naming the first item that differs:
 *  - for each area, the /proc/self/smaps entry starting at its address: same
 *    end, same permissions, same VmFlags as recorded at start except "sd"
 *    (soft-dirty is a tracking bit that any new mapping has and clear_refs
 *    clears; it is no property of the area) and "ac" (commit accounting: the
 *    guard page has it because it was made RW, then PROT_NONE; a PROT_NONE
 *    mapping made as such has not; the process cannot tell), and the flag
 *    above is there;
 *  - every page of every RW area still holds its pattern;
 *  - the guard page is unreadable: process_vm_readv of it fails with EFAULT;
 *  - /proc/self/cmdline, /proc/self/environ (bytes) and readlink
 *    /proc/self/exe are what they were at start.
 * Report: "PASS counter=N areas=10".
 */
#include "state-common.h"
#include "pattern.h"

#include <sys/mman.h>
#include <sys/uio.h>

#define MiB (1024UL * 1024)
#define RESERVE (32 * MiB)

struct area {
	const char *name;
	size_t offset, pages;
	int prot, extra_flags, advice; /* advice: MADV_* or -1 (mlock: -2) */
	const char *flag;              /* VmFlags it must show, or NULL */
	const char *perms;             /* its permissions in smaps */
	char *addr;
	char rec_perms[8];
	char rec_vmflags[128];
	unsigned long rec_end;
};

enum { MLOCK = -2, NONE = -1 };

static struct area areas[] = {
	{ "dontfork", 0 * PAGE, 4, PROT_READ | PROT_WRITE, 0, MADV_DONTFORK, "dc", "rw-p" },
	{ "wipefork", 8 * PAGE, 4, PROT_READ | PROT_WRITE, 0, MADV_WIPEONFORK, "wf", "rw-p" },
	{ "dontdump", 16 * PAGE, 4, PROT_READ | PROT_WRITE, 0, MADV_DONTDUMP, "dd", "rw-p" },
	{ "locked", 24 * PAGE, 4, PROT_READ | PROT_WRITE, 0, MLOCK, "lo", "rw-p" },
	{ "below", 32 * PAGE, 2, PROT_READ | PROT_WRITE, 0, NONE, NULL, "rw-p" },
	{ "guard", 34 * PAGE, 1, PROT_NONE, 0, NONE, NULL, "---p" },
	{ "above", 35 * PAGE, 2, PROT_READ | PROT_WRITE, 0, NONE, NULL, "rw-p" },
	{ "nohuge", 48 * PAGE, 4, PROT_READ | PROT_WRITE, 0, MADV_NOHUGEPAGE, "nh", "rw-p" },
	{ "growsdown", 4 * MiB, 8, PROT_READ | PROT_WRITE, MAP_GROWSDOWN, NONE, "gd", "rw-p" },
	{ "huge", 16 * MiB, 1024, PROT_READ | PROT_WRITE, 0, MADV_HUGEPAGE, "hg", "rw-p" },
};
#define NAREAS (sizeof areas / sizeof *areas)

static char smaps[1 << 20];
static char rec_cmdline[8192], rec_environ[65536], rec_exe[PATH_MAX];
static ssize_t rec_cmdline_len, rec_environ_len;

/* Finds the smaps entry starting at addr: its end, perms and VmFlags (without "sd" and "ac"). */
static int smaps_entry(const char *text, unsigned long addr, unsigned long *end, char *perms, char *vmflags, size_t size)
{
	const char *line = text;
	while (line && *line) {
		unsigned long s, e;
		char p[8];
		if (sscanf(line, "%lx-%lx %7s", &s, &e, p) == 3 && strchr(line, '-') < strchr(line, ' ') && s == addr) {
			*end = e;
			strcpy(perms, p);
			const char *vf = strstr(line, "\nVmFlags:");
			/* the VmFlags of this entry: before the next entry's header */
			if (!vf)
				return -1;
			vf += strlen("\nVmFlags:");
			vmflags[0] = 0;
			while (*vf && *vf != '\n') {
				while (*vf == ' ')
					vf++;
				size_t n = strcspn(vf, " \n");
				int ignored = n == 2 && (strncmp(vf, "sd", 2) == 0 || strncmp(vf, "ac", 2) == 0);
				if (n && !ignored && strlen(vmflags) + n + 2 < size) {
					strncat(vmflags, vf, n);
					strcat(vmflags, " ");
				}
				vf += n;
			}
			return 0;
		}
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return -1;
}

static int has_flag(const char *vmflags, const char *flag)
{
	char needle[8];
	snprintf(needle, sizeof needle, "%s ", flag);
	for (const char *p = vmflags; (p = strstr(p, needle)); p++)
		if (p == vmflags || p[-1] == ' ')
			return 1;
	return 0;
}

static int same_bytes(const char *path, const char *was, ssize_t was_len)
{
	static char now[65536];
	ssize_t n = read_whole(path, now, sizeof now);
	return n == was_len && memcmp(now, was, (size_t)n) == 0;
}

static int check_all(char *msg, size_t size)
{
	if (read_whole("/proc/self/smaps", smaps, sizeof smaps) < 0)
		DIFFER("cannot read /proc/self/smaps: %s", strerror(errno));
	for (size_t i = 0; i < NAREAS; i++) {
		struct area *a = &areas[i];
		unsigned long end;
		char perms[8], vmflags[128];
		if (smaps_entry(smaps, (unsigned long)a->addr, &end, perms, vmflags, sizeof vmflags) < 0)
			DIFFER("%s: no mapping starts at %p any more", a->name, (void *)a->addr);
		if (end != a->rec_end)
			DIFFER("%s: the mapping at %p ends at %#lx, was %#lx", a->name, (void *)a->addr, end, a->rec_end);
		if (strcmp(perms, a->rec_perms) != 0)
			DIFFER("%s: permissions are %s, were %s", a->name, perms, a->rec_perms);
		if (a->flag && !has_flag(vmflags, a->flag))
			DIFFER("%s: VmFlags '%s' lack '%s'", a->name, vmflags, a->flag);
		if (strcmp(vmflags, a->rec_vmflags) != 0)
			DIFFER("%s: VmFlags are '%s', were '%s' (sd, ac ignored)", a->name, vmflags, a->rec_vmflags);
	}
	for (size_t i = 0; i < NAREAS; i++) {
		struct area *a = &areas[i];
		if (a->prot == PROT_NONE)
			continue;
		long bad = first_bad_page(a->addr, a->pages, 100 + i);
		if (bad >= 0)
			DIFFER("%s: page %ld differs", a->name, bad);
	}
	for (size_t i = 0; i < NAREAS; i++)
		if (areas[i].prot == PROT_NONE) {
			char byte;
			struct iovec local = { &byte, 1 }, remote = { areas[i].addr, 1 };
			ssize_t n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
			if (n >= 0 || errno != EFAULT)
				DIFFER("%s: reading the PROT_NONE page gave %zd (%s), want EFAULT", areas[i].name, n,
				       n >= 0 ? "readable" : strerror(errno));
		}
	if (!same_bytes("/proc/self/cmdline", rec_cmdline, rec_cmdline_len))
		DIFFER("/proc/self/cmdline differs from the one at start");
	if (!same_bytes("/proc/self/environ", rec_environ, rec_environ_len))
		DIFFER("/proc/self/environ differs from the one at start");
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	exe[n > 0 ? n : 0] = 0;
	if (strcmp(exe, rec_exe) != 0)
		DIFFER("/proc/self/exe is '%s', was '%s'", exe, rec_exe);
	snprintf(msg, size, "areas=%zu", NAREAS);
	return 1;
}

int main(int argc, char **argv)
{
	proto_init(argc, argv);

	/* a 2 MiB-aligned range of our own, then emptied: the areas go at fixed places in it */
	char *reserve = mmap(NULL, RESERVE + 2 * MiB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (reserve == MAP_FAILED)
		proto_fail("setup: reserve: %s", strerror(errno));
	char *base = (char *)(((unsigned long)reserve + 2 * MiB - 1) & ~(2 * MiB - 1));
	munmap(reserve, RESERVE + 2 * MiB);

	for (size_t i = 0; i < NAREAS; i++) {
		struct area *a = &areas[i];
		void *want = base + a->offset;
		size_t len = a->pages * PAGE;
		a->addr = mmap(want, len, a->prot == PROT_NONE ? PROT_READ | PROT_WRITE : a->prot,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | a->extra_flags, -1, 0);
		if (a->addr != want) {
			proto_fail("setup: mmap %s at %p: %s", a->name, want, strerror(errno));
			a->addr = want;
			continue;
		}
		if (a->prot == PROT_NONE)
			SETUP(mprotect(a->addr, len, PROT_NONE), "mprotect guard");
		else
			fill_pages(a->addr, a->pages, 100 + i);
		if (a->advice == MLOCK)
			SETUP(mlock(a->addr, len), "mlock");
		else if (a->advice != NONE && madvise(a->addr, len, a->advice) != 0)
			proto_fail("setup: madvise %s: %s", a->name, strerror(errno));
	}

	rec_cmdline_len = read_whole("/proc/self/cmdline", rec_cmdline, sizeof rec_cmdline);
	rec_environ_len = read_whole("/proc/self/environ", rec_environ, sizeof rec_environ);
	ssize_t n = readlink("/proc/self/exe", rec_exe, sizeof rec_exe - 1);
	rec_exe[n > 0 ? n : 0] = 0;
	if (rec_cmdline_len <= 0 || rec_environ_len < 0 || n <= 0)
		proto_fail("setup: cannot read cmdline/environ/exe");

	if (read_whole("/proc/self/smaps", smaps, sizeof smaps) < 0)
		proto_fail("setup: cannot read /proc/self/smaps: %s", strerror(errno));
	for (size_t i = 0; i < NAREAS; i++) {
		struct area *a = &areas[i];
		if (smaps_entry(smaps, (unsigned long)a->addr, &a->rec_end, a->rec_perms, a->rec_vmflags,
				sizeof a->rec_vmflags) < 0) {
			proto_fail("setup: %s: no smaps entry at %p", a->name, (void *)a->addr);
			continue;
		}
		if (a->rec_end != (unsigned long)a->addr + a->pages * PAGE || strcmp(a->rec_perms, a->perms) != 0 ||
		    (a->flag && !has_flag(a->rec_vmflags, a->flag)))
			proto_fail("setup: %s is %p-%#lx %s '%s', want %zu pages %s with '%s'", a->name, (void *)a->addr,
				   a->rec_end, a->rec_perms, a->rec_vmflags, a->pages, a->perms, a->flag ? a->flag : "");
	}

	char facts[256];
	snprintf(facts, sizeof facts, "base=%p huge=%p growsdown=%p guard=%p", (void *)base, (void *)areas[9].addr,
		 (void *)areas[8].addr, (void *)areas[5].addr);
	proto_ready(facts);
	state_loop(check_all);
}
