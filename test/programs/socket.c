/*
 * socket: a process holding a unix socketpair with a file descriptor in
 * flight (SCM_RIGHTS), which ckpt refuses for now; the test proves the
 * refusal leaves it running and intact.
 *
 *   socket WORKDIR
 *
 * Checks: the queued message arrives with its fd (then a new one is queued);
 * 1 MiB of pseudo-random memory against its checksum. Report: "PASS counter=N".
 */
#include "protocol.h"
#include "pattern.h"

#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>

#define AREA_PAGES 256
enum { SALT_AREA = 7 };

static struct pattern_area area;
static int sv[2];

/* One byte 'x' carrying an fd of /dev/null, queued on sv[1]. */
static int send_fd(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	char c = 'x';
	struct iovec iov = { &c, 1 };
	union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } ctl;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf };
	struct cmsghdr *h = CMSG_FIRSTHDR(&m);
	h->cmsg_level = SOL_SOCKET;
	h->cmsg_type = SCM_RIGHTS;
	h->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(h), &fd, sizeof fd);
	int ok = sendmsg(sv[0], &m, 0) == 1;
	close(fd);
	return ok;
}

static int check_all(char *msg, size_t size)
{
	if (!area_intact(&area, msg, size))
		return 0;
	char c = 0;
	struct iovec iov = { &c, 1 };
	union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } ctl;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf };
	struct cmsghdr *h;
	if (recvmsg(sv[1], &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) != 1 || c != 'x' || !(h = CMSG_FIRSTHDR(&m)) || h->cmsg_type != SCM_RIGHTS) {
		snprintf(msg, size, "the socketpair no longer carries its fd in flight");
		return 0;
	}
	int fd;
	memcpy(&fd, CMSG_DATA(h), sizeof fd);
	close(fd);
	if (!send_fd()) {
		snprintf(msg, size, "cannot queue a new fd");
		return 0;
	}
	return 1;
}

int main(int argc, char **argv)
{
	proto_init(argc, argv);
	if (area_init(&area, AREA_PAGES, SALT_AREA) != 0)
		return 10;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0 || !send_fd())
		return 11;
	proto_ready("");
	proto_run(check_all);
}
