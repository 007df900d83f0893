/* state-root: chroot(W), then the usual protocol inside the new root
 * (W/check is /check, W/report is /report). Checks that "/" is still W (same
 * device and inode), that the cwd is still /sub, and that ".." of "/" is "/". */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

static void put(const char *path, const char *text) {
	char tmp[64];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) return;
	write(fd, text, strlen(text));
	close(fd);
	rename(tmp, path);
}

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	struct stat w;
	if (stat(argv[1], &w) || chdir(argv[1]) || mkdir("sub", 0755) || chroot(argv[1]) || chdir("/sub")) return 3;
	put("/ready", "ok\n");
	for (unsigned long counter = 1;; counter++) {
		char num[32];
		snprintf(num, sizeof num, "%lu\n", counter);
		put("/counter", num);
		if (access("/check", F_OK) == 0) {
			unlink("/check");
			struct stat root, up, cwd, sub;
			char line[128];
			if (stat("/", &root) || stat("/..", &up) || stat(".", &cwd) || stat("/sub", &sub))
				snprintf(line, sizeof line, "FAIL stat\n");
			else if (root.st_ino != w.st_ino || root.st_dev != w.st_dev)
				snprintf(line, sizeof line, "FAIL / is no longer the chroot\n");
			else if (up.st_ino != root.st_ino)
				snprintf(line, sizeof line, "FAIL /.. escapes the chroot\n");
			else if (cwd.st_ino != sub.st_ino)
				snprintf(line, sizeof line, "FAIL cwd is not /sub\n");
			else
				snprintf(line, sizeof line, "PASS counter=%lu\n", counter);
			put("/report", line);
		}
		struct timespec ts = { 0, 20 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}
