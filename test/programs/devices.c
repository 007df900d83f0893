/*
 * devices: directories, O_PATH descriptors and character devices, each at a
 * fixed fd number with its flags and close-on-exec bit, checked after restore.
 *
 *   devices WORKDIR
 *
 * Checks (every fd: same number, same F_GETFL bits of interest, same FD_CLOEXEC):
 *  - a directory (O_RDONLY|O_DIRECTORY): same inode as WORKDIR/dir; openat
 *    through it reads WORKDIR/dir/inside;
 *  - O_PATH on WORKDIR/file: read gives EBADF; same inode;
 *  - O_PATH|O_DIRECTORY on WORKDIR/dir: openat through it works;
 *  - O_PATH|O_NOFOLLOW on the symlink WORKDIR/link: a symlink, readlinkat gives "file";
 *  - O_PATH on the FIFO WORKDIR/fifo (held without opening it);
 *  - a regular file O_WRONLY|O_APPEND|O_NOATIME at offset 0: a write lands at the end;
 *  - a regular file O_RDWR|O_DIRECT|O_NONBLOCK (close-on-exec), at offset 4096
 *    (without O_DIRECT where the filesystem refuses it: W/ready says direct=0);
 *  - /dev/null (O_WRONLY|O_APPEND), /dev/zero (reads zeros, close-on-exec),
 *    /dev/full (write fails ENOSPC), /dev/random and /dev/urandom
 *    (O_NONBLOCK, give bytes): same major:minor.
 * Report: "PASS counter=N".
 */
#define _GNU_SOURCE
#include "protocol.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>

#define FAIL(...) do { snprintf(msg, size, __VA_ARGS__); return 0; } while (0)

struct held {
	const char *what;
	int fd, flags, cloexec;
	unsigned maj, min; /* char devices */
	ino_t ino;         /* files by path */
};

/* The F_GETFL bits compared: access mode and the status and open flags that stay. */
#define FLAG_BITS (O_ACCMODE | O_APPEND | O_NONBLOCK | O_PATH | O_NOFOLLOW | O_DIRECTORY | O_NOATIME | O_DIRECT)

static struct held h[] = {
	{ "dir", 20, O_RDONLY | O_DIRECTORY, 0 },
	{ "path file", 21, O_PATH, 1 },
	{ "path dir", 22, O_PATH | O_DIRECTORY, 0 },
	{ "path symlink", 23, O_PATH | O_NOFOLLOW, 0 },
	{ "path fifo", 24, O_PATH, 1 },
	{ "appended", 25, O_WRONLY | O_APPEND | O_NOATIME, 0 },
	{ "direct", 26, O_RDWR | O_DIRECT | O_NONBLOCK, 1 },
	{ "/dev/null", 30, O_WRONLY | O_APPEND, 0, 1, 3 },
	{ "/dev/zero", 31, O_RDONLY, 1, 1, 5 },
	{ "/dev/full", 32, O_WRONLY, 0, 1, 7 },
	{ "/dev/random", 33, O_RDONLY | O_NONBLOCK, 0, 1, 8 },
	{ "/dev/urandom", 34, O_RDONLY | O_NONBLOCK, 1, 1, 9 },
};
#define N (sizeof h / sizeof h[0])
static off_t appended_size;

static const char *path_of(const char *what, char *buf)
{
	if (what[0] == '/')
		return what;
	const char *name = !strcmp(what, "dir") || !strcmp(what, "path dir") ? "dir"
		: !strcmp(what, "path symlink") ? "link" : !strcmp(what, "path fifo") ? "fifo"
		: !strcmp(what, "appended") ? "appended" : !strcmp(what, "direct") ? "direct" : "file";
	proto_path(buf, name);
	return buf;
}

static int check_all(char *msg, size_t size)
{
	char buf[64];
	for (size_t i = 0; i < N; i++) {
		int fl = fcntl(h[i].fd, F_GETFL), fdfl = fcntl(h[i].fd, F_GETFD);
		if (fl < 0) FAIL("%s: fd %d is not open", h[i].what, h[i].fd);
		if ((fl & FLAG_BITS) != h[i].flags) FAIL("%s: fd %d flags 0%o, not 0%o", h[i].what, h[i].fd, fl & FLAG_BITS, h[i].flags);
		if (!!(fdfl & FD_CLOEXEC) != h[i].cloexec) FAIL("%s: fd %d close-on-exec is %d", h[i].what, h[i].fd, !!(fdfl & FD_CLOEXEC));
		struct stat st;
		if (fstatat(h[i].fd, "", &st, AT_EMPTY_PATH) != 0) FAIL("%s: fstat: %s", h[i].what, strerror(errno));
		if (h[i].maj && (!S_ISCHR(st.st_mode) || major(st.st_rdev) != h[i].maj || minor(st.st_rdev) != h[i].min))
			FAIL("%s: device %u:%u", h[i].what, major(st.st_rdev), minor(st.st_rdev));
		if (!h[i].maj && st.st_ino != h[i].ino) FAIL("%s: inode %lu, not %lu", h[i].what, (unsigned long)st.st_ino, (unsigned long)h[i].ino);
	}
	int in = openat(20, "inside", O_RDONLY);
	if (in < 0 || read(in, buf, 6) != 6 || memcmp(buf, "inside", 6)) FAIL("openat through the dir fd");
	close(in);
	if (read(21, buf, 1) != -1 || errno != EBADF) FAIL("read of an O_PATH fd did not fail with EBADF");
	in = openat(22, "inside", O_RDONLY);
	if (in < 0) FAIL("openat through the O_PATH dir fd: %s", strerror(errno));
	close(in);
	struct stat st;
	fstatat(23, "", &st, AT_EMPTY_PATH);
	if (!S_ISLNK(st.st_mode)) FAIL("the O_PATH|O_NOFOLLOW fd is not a symlink");
	ssize_t k = readlinkat(23, "", buf, sizeof buf);
	if (k != 4 || memcmp(buf, "file", 4)) FAIL("readlinkat through the symlink fd gave %zd", k);
	fstatat(24, "", &st, AT_EMPTY_PATH);
	if (!S_ISFIFO(st.st_mode)) FAIL("the O_PATH fd of the FIFO is not a FIFO");

	if (lseek(26, 0, SEEK_CUR) != 4096) FAIL("the O_DIRECT file's offset is %ld", (long)lseek(26, 0, SEEK_CUR));
	if (lseek(25, 0, SEEK_CUR) != 0) FAIL("the O_APPEND file's offset moved before a write");
	if (write(25, "a", 1) != 1) FAIL("write to the O_APPEND file: %s", strerror(errno));
	appended_size++;
	fstat(25, &st);
	if (st.st_size != appended_size || lseek(25, 0, SEEK_CUR) != appended_size) FAIL("O_APPEND write landed at %ld (size %ld)", (long)lseek(25, 0, SEEK_CUR), (long)st.st_size);
	lseek(25, 0, SEEK_SET);

	if (write(30, "x", 1) != 1) FAIL("write to /dev/null");
	memset(buf, 1, 16);
	if (read(31, buf, 16) != 16 || buf[0] || buf[15]) FAIL("read of /dev/zero");
	if (write(32, "x", 1) != -1 || errno != ENOSPC) FAIL("write to /dev/full did not fail with ENOSPC");
	if (read(33, buf, 8) != 8 || read(34, buf, 8) != 8) FAIL("read of /dev/random or /dev/urandom");
	return 1;
}

int main(int argc, char **argv)
{
	proto_init(argc, argv);
	char p[PATH_MAX];
	proto_path(p, "dir");
	mkdir(p, 0700);
	proto_path(p, "dir/inside");
	int t = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (write(t, "inside", 6) != 6) return 10;
	close(t);
	proto_path(p, "file");
	close(open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600));
	proto_path(p, "link");
	if (symlink("file", p) != 0) return 11;
	proto_path(p, "fifo");
	if (mkfifo(p, 0600) != 0) return 12;
	proto_path(p, "direct");
	t = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (ftruncate(t, 8192)) return 14;
	close(t);
	proto_path(p, "appended");
	t = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (write(t, "12345", 5) != 5) return 13;
	appended_size = 5;
	close(t);

	int direct = 1;
	for (size_t i = 0; i < N; i++) {
		int fd = open(path_of(h[i].what, p), h[i].flags | (h[i].cloexec ? O_CLOEXEC : 0));
		if (fd < 0 && errno == EINVAL && (h[i].flags & O_DIRECT)) {
			h[i].flags &= ~O_DIRECT;
			direct = 0;
			fd = open(path_of(h[i].what, p), h[i].flags | (h[i].cloexec ? O_CLOEXEC : 0));
		}
		if (fd < 0 || dup2(fd, h[i].fd) != h[i].fd) return 20 + (int)i;
		if (h[i].cloexec) fcntl(h[i].fd, F_SETFD, FD_CLOEXEC);
		close(fd);
		struct stat st;
		fstatat(h[i].fd, "", &st, AT_EMPTY_PATH);
		h[i].ino = st.st_ino;
	}
	lseek(26, 4096, SEEK_SET);
	proto_ready(direct ? "direct=1" : "direct=0");
	proto_run(check_all);
}
