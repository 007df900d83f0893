/*
 * memfd: memfds held as fds, with their names, contents, seals, offsets and
 * flags, one of them open twice.
 *
 *   memfd WORKDIR
 *
 * Holds:
 *  - fd 10: memfd "ckpt-mem-a" (close-on-exec, sealing not allowed) of
 *    100000 patterned bytes, offset 12345; fd 11 a dup of it (one offset);
 *  - fd 12: the same memfd opened again through /proc/self/fd/10, read-only,
 *    offset 7 (its own offset, the same content);
 *  - fd 13: memfd "ckpt-mem-b" holding "sealed", sealed against write,
 *    shrink, grow and further seals;
 *  - fd 14: memfd "empty", zero bytes, O_APPEND.
 * Checks: names (readlink), sizes and content, offsets (10 and 11 share
 * one, 12 has its own), seals, a write through fd 10 seen through fd 12, a
 * write to fd 13 refused (EPERM), flags and close-on-exec.
 * Report: "PASS counter=N".
 */
#define _GNU_SOURCE
#include "protocol.h"

#include <sys/mman.h>
#include <time.h>

#define FAIL(...) do { snprintf(msg, size, __VA_ARGS__); return 0; } while (0)
#define SIZE 100000

static const struct { int fd, flags, cloexec; const char *name; } h[] = {
	{ 10, O_RDWR, 1, "ckpt-mem-a" }, { 11, O_RDWR, 0, "ckpt-mem-a" }, { 12, O_RDONLY, 0, "ckpt-mem-a" },
	{ 13, O_RDWR, 0, "ckpt-mem-b" }, { 14, O_RDWR | O_APPEND, 0, "empty" },
};
static char pattern[SIZE], buf[SIZE];

static int check_all(char *msg, size_t size)
{
	for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) {
		int fl = fcntl(h[i].fd, F_GETFL);
		if (fl < 0) FAIL("fd %d is not open", h[i].fd);
		if ((fl & (O_ACCMODE | O_APPEND | O_NONBLOCK)) != h[i].flags) FAIL("fd %d flags 0%o", h[i].fd, fl);
		if (!!(fcntl(h[i].fd, F_GETFD) & FD_CLOEXEC) != h[i].cloexec) FAIL("fd %d close-on-exec", h[i].fd);
		char link[64], target[128], want[128];
		snprintf(link, sizeof link, "/proc/self/fd/%d", h[i].fd);
		ssize_t k = readlink(link, target, sizeof target - 1);
		target[k > 0 ? k : 0] = 0;
		snprintf(want, sizeof want, "/memfd:%s (deleted)", h[i].name);
		if (strcmp(target, want)) FAIL("fd %d is '%s', not '%s'", h[i].fd, target, want);
	}
	if (pread(10, buf, SIZE, 0) != SIZE || memcmp(buf, pattern, SIZE)) FAIL("memfd a: content differs");
	if (lseek(10, 0, SEEK_CUR) != 12345 || lseek(11, 0, SEEK_CUR) != 12345) FAIL("memfd a: offsets %ld %ld", (long)lseek(10, 0, SEEK_CUR), (long)lseek(11, 0, SEEK_CUR));
	lseek(11, 100, SEEK_SET);
	if (lseek(10, 0, SEEK_CUR) != 100) FAIL("fds 10 and 11 no longer share an offset");
	lseek(10, 12345, SEEK_SET);
	if (lseek(12, 0, SEEK_CUR) != 7) FAIL("fd 12's offset is %ld, not 7", (long)lseek(12, 0, SEEK_CUR));
	if (pwrite(10, "Z", 1, 5) != 1) FAIL("write to memfd a: %s", strerror(errno));
	char c = 0;
	if (pread(12, &c, 1, 5) != 1 || c != 'Z') FAIL("fd 12 does not see a write through fd 10 (another file now?)");
	pwrite(10, &pattern[5], 1, 5);
	if (fcntl(10, F_GET_SEALS) != F_SEAL_SEAL) FAIL("memfd a seals %x", fcntl(10, F_GET_SEALS));

	int all = F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
	if (fcntl(13, F_GET_SEALS) != all) FAIL("memfd b seals %x", fcntl(13, F_GET_SEALS));
	if (pread(13, buf, 16, 0) != 6 || memcmp(buf, "sealed", 6)) FAIL("memfd b content differs");
	if (pwrite(13, "x", 1, 0) != -1 || errno != EPERM) FAIL("memfd b accepts a write");
	struct stat st;
	if (fstat(14, &st) || st.st_size != 0) FAIL("memfd empty has %ld bytes", (long)st.st_size);
	return 1;
}

int main(int argc, char **argv)
{
	proto_init(argc, argv);
	for (int i = 0; i < SIZE; i++) pattern[i] = (char)(i * 13 + (i >> 8));
	int a = memfd_create("ckpt-mem-a", MFD_CLOEXEC);
	if (a < 0 || write(a, pattern, SIZE) != SIZE || dup3(a, 10, O_CLOEXEC) != 10 || dup2(10, 11) != 11) return 10;
	close(a);
	lseek(10, 12345, SEEK_SET);
	int r = open("/proc/self/fd/10", O_RDONLY);
	if (r < 0 || dup2(r, 12) != 12) return 11;
	close(r);
	lseek(12, 7, SEEK_SET);
	int b = memfd_create("ckpt-mem-b", MFD_ALLOW_SEALING);
	if (b < 0 || write(b, "sealed", 6) != 6 || dup2(b, 13) != 13) return 12;
	close(b);
	if (fcntl(13, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)) return 13;
	int e = memfd_create("empty", 0);
	if (e < 0 || dup2(e, 14) != 14) return 14;
	close(e);
	fcntl(14, F_SETFL, O_APPEND);

	proto_ready("");
	proto_run(check_all);
}
