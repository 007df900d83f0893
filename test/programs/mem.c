/*
 * mem: memory and registers of a single-threaded process.
 *
 *   mem WORKDIR
 *
 * State it checks on W/check:
 *   - 64 MiB of anonymous memory, a different pseudo-random content per page,
 *     against the checksum taken at start (and the bad page when it differs);
 *   - a 16 MiB anonymous region where only every 16th page was ever touched:
 *     the others must still read as zeros;
 *   - a MAP_PRIVATE mapping of W/mapped (64 pages, which it creates) where
 *     every third page was written: written pages hold what was written,
 *     untouched pages what the file holds, the file itself is unchanged and
 *     /proc/self/maps still names it;
 *   - a heap grown with sbrk: its pattern, and the kernel's brk where it was;
 *   - getpid() (protocol.h).
 * Every loop it loads fresh values into the vector registers (ymm0-15, or
 * zmm0-31 and k0-7 when the CPU has AVX-512) and 8 general registers, makes a
 * raw nanosleep syscall (5-20 ms) and stores them right after it in the same
 * asm block: a checkpoint taken during that sleep must bring them back. A
 * difference, or a nanosleep that does not return 0, is remembered and every
 * later report is a FAIL.
 * Report: "PASS counter=N vec=ymm16|zmm32|none".
 */
#include "protocol.h"
#include "pattern.h"

#include <stddef.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>

#define RANDOM_PAGES (64UL << 20) / PAGE
#define SPARSE_PAGES (16UL << 20) / PAGE
#define SPARSE_STRIDE 16
#define MAPPED_PAGES 64
#define HEAP_PAGES ((3UL << 20) / PAGE + 5)

enum { SALT_RANDOM = 1, SALT_SPARSE, SALT_FILE, SALT_PRIVATE, SALT_HEAP };

static char *random_area, *sparse_area, *mapped_area, *heap_area;
static uint64_t random_sum;
static unsigned long heap_end;
static char mapped_path[PATH_MAX];
static char page_buf[PAGE] __attribute__((aligned(64)));

/* ---- registers across a raw syscall ---------------------------------- */

/* Offsets are spelled out in the asm below; the asserts keep them honest. */
struct regs_io {
	uint8_t vin[32][64];	/* 0 */
	uint8_t vout[32][64];	/* 2048 */
	uint64_t gin[8];	/* 4096: rbx r8 r9 r10 r12 r13 r14 r15 */
	uint64_t gout[8];	/* 4160 */
	uint64_t kin[8];	/* 4224 */
	uint64_t kout[8];	/* 4288 */
} __attribute__((aligned(64)));
_Static_assert(offsetof(struct regs_io, vout) == 2048, "vout");
_Static_assert(offsetof(struct regs_io, gin) == 4096, "gin");
_Static_assert(offsetof(struct regs_io, gout) == 4160, "gout");
_Static_assert(offsetof(struct regs_io, kin) == 4224, "kin");
_Static_assert(offsetof(struct regs_io, kout) == 4288, "kout");

static struct regs_io io;

#define GPR_LOAD                                                               \
	"mov 4096(%%rdx), %%rbx\n\t"                                           \
	"mov 4104(%%rdx), %%r8\n\t"                                            \
	"mov 4112(%%rdx), %%r9\n\t"                                            \
	"mov 4120(%%rdx), %%r10\n\t"                                           \
	"mov 4128(%%rdx), %%r12\n\t"                                           \
	"mov 4136(%%rdx), %%r13\n\t"                                           \
	"mov 4144(%%rdx), %%r14\n\t"                                           \
	"mov 4152(%%rdx), %%r15\n\t"
#define GPR_STORE                                                              \
	"mov %%rbx, 4160(%%rdx)\n\t"                                           \
	"mov %%r8, 4168(%%rdx)\n\t"                                            \
	"mov %%r9, 4176(%%rdx)\n\t"                                            \
	"mov %%r10, 4184(%%rdx)\n\t"                                           \
	"mov %%r12, 4192(%%rdx)\n\t"                                           \
	"mov %%r13, 4200(%%rdx)\n\t"                                           \
	"mov %%r14, 4208(%%rdx)\n\t"                                           \
	"mov %%r15, 4216(%%rdx)\n\t"
#define GPR_CLOBBERS "rcx", "r11", "rbx", "r8", "r9", "r10", "r12", "r13", "r14", "r15", "memory"

#define Y_LOAD(n) "vmovdqu " #n "*64(%%rdx), %%ymm" #n "\n\t"
#define Y_STORE(n) "vmovdqu %%ymm" #n ", 2048+" #n "*64(%%rdx)\n\t"
#define Z_LOAD(n) "vmovdqu64 " #n "*64(%%rdx), %%zmm" #n "\n\t"
#define Z_STORE(n) "vmovdqu64 %%zmm" #n ", 2048+" #n "*64(%%rdx)\n\t"
#define K_LOAD(n) "kmovw 4224+" #n "*8(%%rdx), %%k" #n "\n\t"
#define K_STORE(n) "kmovw %%k" #n ", 4288+" #n "*8(%%rdx)\n\t"

#define X16(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11) M(12) M(13) M(14) M(15)
#define X16_HI(M) M(16) M(17) M(18) M(19) M(20) M(21) M(22) M(23) M(24) M(25) M(26) M(27) M(28) M(29) M(30) M(31)
#define X8(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7)

#define XMM_CLOBBERS "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", \
	"xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15"
#define XMM_HI_CLOBBERS "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", \
	"xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31"
#define K_CLOBBERS "k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"

static long nanosleep_keeping_gprs(const struct timespec *ts)
{
	long ret;
	asm volatile(GPR_LOAD "syscall\n\t" GPR_STORE
		     : "=a"(ret)
		     : "a"((long)SYS_nanosleep), "D"(ts), "S"(0L), "d"(&io)
		     : GPR_CLOBBERS);
	return ret;
}

__attribute__((target("avx"))) static long nanosleep_keeping_ymm(const struct timespec *ts)
{
	long ret;
	asm volatile(X16(Y_LOAD) GPR_LOAD "syscall\n\t" X16(Y_STORE) GPR_STORE "vzeroupper\n\t"
		     : "=a"(ret)
		     : "a"((long)SYS_nanosleep), "D"(ts), "S"(0L), "d"(&io)
		     : GPR_CLOBBERS, XMM_CLOBBERS);
	return ret;
}

__attribute__((target("avx512f"))) static long nanosleep_keeping_zmm(const struct timespec *ts)
{
	long ret;
	asm volatile(X16(Z_LOAD) X16_HI(Z_LOAD) X8(K_LOAD) GPR_LOAD "syscall\n\t"
		     X16(Z_STORE) X16_HI(Z_STORE) X8(K_STORE) GPR_STORE "vzeroupper\n\t"
		     : "=a"(ret)
		     : "a"((long)SYS_nanosleep), "D"(ts), "S"(0L), "d"(&io)
		     : GPR_CLOBBERS, XMM_CLOBBERS, XMM_HI_CLOBBERS, K_CLOBBERS);
	return ret;
}

enum vec_kind { VEC_NONE, VEC_YMM, VEC_ZMM };
static enum vec_kind vec_kind;
static const char *const vec_names[] = { "none", "ymm16", "zmm32" };

static void sleep_checking_registers(long counter)
{
	struct timespec ts = { 0, (5 + counter % 16) * 1000000L };
	uint64_t s = page_seed(0xfeed, (size_t)counter);

	for (size_t i = 0; i < sizeof io.vin / 8; i++)
		((uint64_t *)io.vin)[i] = xorshift64(&s);
	for (int i = 0; i < 8; i++) {
		io.gin[i] = xorshift64(&s);
		io.kin[i] = xorshift64(&s) & 0xffff;
	}
	memset(io.vout, 0, sizeof io.vout);
	memset(io.gout, 0, sizeof io.gout);
	memset(io.kout, 0, sizeof io.kout);

	long ret = vec_kind == VEC_ZMM ? nanosleep_keeping_zmm(&ts)
		 : vec_kind == VEC_YMM ? nanosleep_keeping_ymm(&ts)
				       : nanosleep_keeping_gprs(&ts);
	if (ret != 0)
		proto_fail("raw nanosleep returned %ld on loop %ld", ret, counter);

	static const char *const gpr_names[] = { "rbx", "r8", "r9", "r10", "r12", "r13", "r14", "r15" };
	for (int i = 0; i < 8; i++)
		if (io.gout[i] != io.gin[i])
			proto_fail("%s changed across nanosleep on loop %ld", gpr_names[i], counter);

	int nvec = vec_kind == VEC_ZMM ? 32 : vec_kind == VEC_YMM ? 16 : 0;
	size_t width = vec_kind == VEC_ZMM ? 64 : 32;
	for (int i = 0; i < nvec; i++)
		if (memcmp(io.vin[i], io.vout[i], width) != 0)
			proto_fail("%cmm%d changed across nanosleep on loop %ld",
				   vec_kind == VEC_ZMM ? 'z' : 'y', i, counter);
	if (vec_kind == VEC_ZMM)
		for (int i = 0; i < 8; i++)
			if (io.kin[i] != io.kout[i])
				proto_fail("k%d changed across nanosleep on loop %ld", i, counter);
}

/* ---- memory ------------------------------------------------------------ */

static void *map_anon(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		exit(10);
	return p;
}

static void setup_mapped_file(void)
{
	char path[PATH_MAX];
	proto_path(path, "mapped");
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		exit(11);
	for (size_t p = 0; p < MAPPED_PAGES; p++) {
		fill_page(page_buf, SALT_FILE, p);
		if (write(fd, page_buf, PAGE) != (ssize_t)PAGE)
			exit(12);
	}
	mapped_area = mmap(NULL, MAPPED_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	close(fd);
	if (mapped_area == MAP_FAILED || !realpath(path, mapped_path))
		exit(13);
	for (size_t p = 0; p < MAPPED_PAGES; p += 3)
		fill_page(mapped_area + p * PAGE, SALT_PRIVATE, p);
}

static void setup_heap(void)
{
	char *cur = sbrk(0);
	size_t pad = -(uintptr_t)cur & (PAGE - 1);
	if (sbrk(pad + HEAP_PAGES * PAGE) == (void *)-1)
		exit(14);
	heap_area = cur + pad;
	heap_end = (unsigned long)syscall(SYS_brk, 0);
	fill_pages(heap_area, HEAP_PAGES, SALT_HEAP);
}

/* Finds the /proc/self/maps line of the mapping starting at addr and copies
 * its path (empty when anonymous). Returns 0 when there is no such line. */
static int mapping_path(const void *addr, char *path, size_t size)
{
	static char maps[1 << 16];
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	size_t len = 0;
	ssize_t n;
	while (len < sizeof maps - 1 && (n = read(fd, maps + len, sizeof maps - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	maps[len] = 0;

	for (char *line = maps; line && *line;) {
		char *next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		unsigned long start;
		int consumed = 0;
		if (sscanf(line, "%lx-%*x %*s %*x %*x:%*x %*u %n", &start, &consumed) == 1 &&
		    start == (unsigned long)addr) {
			snprintf(path, size, "%s", consumed ? line + consumed : "");
			return 1;
		}
		line = next;
	}
	return 0;
}

static int check_mapped_file(char *msg, size_t size)
{
	for (size_t p = 0; p < MAPPED_PAGES; p++) {
		int written = p % 3 == 0;
		if (!page_matches(mapped_area + p * PAGE, written ? SALT_PRIVATE : SALT_FILE, p)) {
			snprintf(msg, size, "mapped page %zu (%s) differs", p,
				 written ? "written" : "untouched, as in the file");
			return 0;
		}
	}
	char where[PATH_MAX];
	if (!mapping_path(mapped_area, where, sizeof where)) {
		snprintf(msg, size, "no mapping starts at %p in /proc/self/maps", (void *)mapped_area);
		return 0;
	}
	if (strcmp(where, mapped_path) != 0) {
		snprintf(msg, size, "mapping at %p is '%s', not %s", (void *)mapped_area, where, mapped_path);
		return 0;
	}
	int fd = open(mapped_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(msg, size, "cannot open %s", mapped_path);
		return 0;
	}
	for (size_t p = 0; p < MAPPED_PAGES; p++) {
		if (pread(fd, page_buf, PAGE, (off_t)(p * PAGE)) != (ssize_t)PAGE ||
		    !page_matches(page_buf, SALT_FILE, p)) {
			close(fd);
			snprintf(msg, size, "file %s page %zu changed", mapped_path, p);
			return 0;
		}
	}
	close(fd);
	return 1;
}

static int check_all(char *msg, size_t size)
{
	if (checksum(random_area, RANDOM_PAGES * PAGE) != random_sum) {
		snprintf(msg, size, "random area checksum differs, first bad page %ld",
			 first_bad_page(random_area, RANDOM_PAGES, SALT_RANDOM));
		return 0;
	}
	for (size_t p = 0; p < SPARSE_PAGES; p++) {
		const char *page = sparse_area + p * PAGE;
		int ok = p % SPARSE_STRIDE == 0 ? page_matches(page, SALT_SPARSE, p) : page_is_zero(page);
		if (!ok) {
			snprintf(msg, size, "sparse page %zu differs", p);
			return 0;
		}
	}
	if (!check_mapped_file(msg, size))
		return 0;
	long bad = first_bad_page(heap_area, HEAP_PAGES, SALT_HEAP);
	if (bad >= 0) {
		snprintf(msg, size, "heap page %ld differs", bad);
		return 0;
	}
	unsigned long brk_now = (unsigned long)syscall(SYS_brk, 0);
	if (brk_now != heap_end) {
		snprintf(msg, size, "brk is %#lx, was %#lx", brk_now, heap_end);
		return 0;
	}
	snprintf(msg, size, "vec=%s", vec_names[vec_kind]);
	return 1;
}

int main(int argc, char **argv)
{
	proto_init(argc, argv);

	__builtin_cpu_init();
	vec_kind = __builtin_cpu_supports("avx512f") ? VEC_ZMM
		 : __builtin_cpu_supports("avx")   ? VEC_YMM
						   : VEC_NONE;

	random_area = map_anon(RANDOM_PAGES * PAGE);
	fill_pages(random_area, RANDOM_PAGES, SALT_RANDOM);
	random_sum = checksum(random_area, RANDOM_PAGES * PAGE);

	sparse_area = map_anon(SPARSE_PAGES * PAGE);
	for (size_t p = 0; p < SPARSE_PAGES; p += SPARSE_STRIDE)
		fill_page(sparse_area + p * PAGE, SALT_SPARSE, p);

	setup_mapped_file();
	setup_heap();

	char facts[400];
	snprintf(facts, sizeof facts, "random=%p sparse=%p mapped=%p heap=%p vec=%s",
		 (void *)random_area, (void *)sparse_area, (void *)mapped_area, (void *)heap_area,
		 vec_names[vec_kind]);
	proto_ready(facts);

	for (long counter = 1;; counter++) {
		sleep_checking_registers(counter);
		proto_tick(counter, check_all);
	}
}
