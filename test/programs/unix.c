/*
 * unix: unix sockets of every kind, with data queued in both directions,
 * checking after restore that each carries exactly what was queued, once
 * and in order, and then behaves as before.
 *
 *   unix WORKDIR
 *
 * Holds:
 *  - socketpairs of each type (stream, dgram, seqpacket), with messages
 *    queued both ways (the stream one also 200 KiB of pattern one way);
 *  - a stream listener bound at WORKDIR/listen.sock (mode 0640), one
 *    connection accepted (data queued both ways; the accepted socket's name
 *    is the listener's) and one still waiting in its queue;
 *  - an abstract datagram socket "@ckpt-unix-PID" with two datagrams queued
 *    from a client connected to it, and an abstract seqpacket listener;
 *  - a stream pair one end of which shut down writing after "bye", and a
 *    pair whose other end was closed after "last words": both read that,
 *    then end of file;
 *  - an unbound, unconnected datagram socket; O_NONBLOCK on one socket,
 *    SO_RCVBUF 100000 and SO_PASSCRED on another.
 * Each check reads all queued data, compares, then puts the same state back.
 * Report: "PASS counter=N".
 */
#include "protocol.h"

#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#define FAIL(...) do { snprintf(msg, size, __VA_ARGS__); return 0; } while (0)
#define BIG (200 * 1024)

static int sp[2], dp[2], qp[2];
static int lst, acc, cli, pend, adg, adgc, aseq, shut[2], gone, bare;
static char lpath[108], aname[108];
static unsigned char big[BIG];

static socklen_t abstract_addr(struct sockaddr_un *a, const char *name)
{
	memset(a, 0, sizeof *a);
	a->sun_family = AF_UNIX;
	size_t n = strlen(name);
	memcpy(a->sun_path + 1, name, n);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
}

static socklen_t path_addr(struct sockaddr_un *a, const char *path)
{
	memset(a, 0, sizeof *a);
	a->sun_family = AF_UNIX;
	strncpy(a->sun_path, path, sizeof a->sun_path - 1);
	return (socklen_t)sizeof *a;
}

static int sendstr(int fd, const char *s) { return send(fd, s, strlen(s), MSG_DONTWAIT) == (ssize_t)strlen(s) ? 0 : -1; }

/* The next message (or stream bytes) must be exactly `want`. */
static int expect(int fd, const char *want, const char *what, char *msg, size_t size)
{
	char buf[256];
	int type = 0;
	socklen_t tl = sizeof type;
	getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl);
	/* A stream has no message boundaries: read just as much as expected. */
	ssize_t n = recv(fd, buf, type == SOCK_STREAM ? strlen(want) : sizeof buf - 1, MSG_DONTWAIT);
	if (n < 0) FAIL("%s: nothing queued (%s), expected \"%s\"", what, strerror(errno), want);
	buf[n] = 0;
	if ((size_t)n != strlen(want) || memcmp(buf, want, n) != 0) FAIL("%s: got \"%s\", expected \"%s\"", what, buf, want);
	return 1;
}

static int expect_empty(int fd, const char *what, char *msg, size_t size)
{
	char c;
	ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
	if (n >= 0 || errno != EAGAIN) FAIL("%s: more queued than expected (recv %zd)", what, n);
	return 1;
}

static int expect_eof(int fd, const char *what, char *msg, size_t size)
{
	char c;
	ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
	if (n != 0) FAIL("%s: expected end of file, recv gave %zd (%s)", what, n, n < 0 ? strerror(errno) : "data");
	return 1;
}

static void queue_pairs(void)
{
	sendstr(sp[0], "s0>1 first");
	sendstr(sp[1], "s1>0 reply");
	if (send(sp[0], big, BIG, MSG_DONTWAIT) != BIG)
		proto_fail("cannot queue 200 KiB on the stream pair");
	sendstr(dp[0], "d0>1 a");
	sendstr(dp[0], "d0>1 bb");
	sendstr(dp[1], "d1>0 ccc");
	sendstr(qp[0], "q0>1 one");
	sendstr(qp[1], "q1>0 two");
	sendstr(qp[1], "q1>0 three");
	sendstr(cli, "client says");
	sendstr(acc, "server says");
	sendstr(adgc, "dgram 1");
	sendstr(adgc, "dgram 2");
}

static void make_pending(void)
{
	struct sockaddr_un a;
	pend = socket(AF_UNIX, SOCK_STREAM, 0);
	if (connect(pend, (struct sockaddr *)&a, path_addr(&a, lpath)) != 0)
		proto_fail("connect pending: %s", strerror(errno));
}

static void make_ended(void)
{
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, shut) != 0)
		proto_fail("socketpair shut");
	sendstr(shut[0], "bye");
	shutdown(shut[0], SHUT_WR);
	int g[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, g) != 0)
		proto_fail("socketpair gone");
	sendstr(g[1], "last words");
	close(g[1]);
	gone = g[0];
}

static int check_all(char *msg, size_t size)
{
	static unsigned char got[BIG];
	if (!expect(sp[1], "s0>1 first", "stream pair 0>1", msg, size)) return 0;
	size_t have = 0;
	while (have < BIG) {
		ssize_t n = recv(sp[1], got + have, BIG - have, MSG_DONTWAIT);
		if (n <= 0) FAIL("stream pair: 200 KiB cut at %zu bytes", have);
		have += (size_t)n;
	}
	if (memcmp(got, big, BIG) != 0) FAIL("stream pair: the 200 KiB differ");
	if (!expect_empty(sp[1], "stream pair 0>1", msg, size)) return 0;
	if (!expect(sp[0], "s1>0 reply", "stream pair 1>0", msg, size)) return 0;
	if (!expect_empty(sp[0], "stream pair 1>0", msg, size)) return 0;

	if (!expect(dp[1], "d0>1 a", "dgram pair 0>1 #1", msg, size)) return 0;
	if (!expect(dp[1], "d0>1 bb", "dgram pair 0>1 #2", msg, size)) return 0;
	if (!expect_empty(dp[1], "dgram pair 0>1", msg, size)) return 0;
	if (!expect(dp[0], "d1>0 ccc", "dgram pair 1>0", msg, size)) return 0;
	if (!expect_empty(dp[0], "dgram pair 1>0", msg, size)) return 0;

	if (!expect(qp[1], "q0>1 one", "seqpacket pair 0>1", msg, size)) return 0;
	if (!expect_empty(qp[1], "seqpacket pair 0>1", msg, size)) return 0;
	if (!expect(qp[0], "q1>0 two", "seqpacket pair 1>0 #1", msg, size)) return 0;
	if (!expect(qp[0], "q1>0 three", "seqpacket pair 1>0 #2", msg, size)) return 0;
	if (!expect_empty(qp[0], "seqpacket pair 1>0", msg, size)) return 0;

	if (!expect(acc, "client says", "accepted connection", msg, size)) return 0;
	if (!expect(cli, "server says", "client connection", msg, size)) return 0;
	if (!expect_empty(acc, "accepted connection", msg, size) || !expect_empty(cli, "client connection", msg, size)) return 0;

	struct sockaddr_un a;
	socklen_t al = sizeof a;
	if (getsockname(acc, (struct sockaddr *)&a, &al) != 0 || strcmp(a.sun_path, lpath) != 0) FAIL("accepted socket's name is \"%s\", not %s", a.sun_path, lpath);
	al = sizeof a;
	if (getpeername(cli, (struct sockaddr *)&a, &al) != 0 || strcmp(a.sun_path, lpath) != 0) FAIL("client's peer name is \"%s\"", a.sun_path);
	al = sizeof a;
	if (getsockname(lst, (struct sockaddr *)&a, &al) != 0 || strcmp(a.sun_path, lpath) != 0) FAIL("listener's name is \"%s\"", a.sun_path);
	struct stat st;
	if (stat(lpath, &st) != 0 || !S_ISSOCK(st.st_mode) || (st.st_mode & 0777) != 0640) FAIL("%s: not a socket file of mode 0640", lpath);

	int c = accept4(lst, NULL, NULL, SOCK_NONBLOCK);
	if (c < 0) FAIL("the pending connection is not in the listener's queue: %s", strerror(errno));
	if (sendstr(pend, "late") != 0 || !expect(c, "late", "pending connection", msg, size)) return 0;
	close(c);
	close(pend);
	make_pending();

	if (!expect(adg, "dgram 1", "abstract dgram #1", msg, size)) return 0;
	if (!expect(adg, "dgram 2", "abstract dgram #2", msg, size)) return 0;
	if (!expect_empty(adg, "abstract dgram", msg, size)) return 0;
	al = sizeof a;
	memset(&a, 0, sizeof a);
	if (getsockname(adg, (struct sockaddr *)&a, &al) != 0 || a.sun_path[0] != 0 || strcmp(a.sun_path + 1, aname) != 0) FAIL("abstract name lost");
	int sq = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	struct sockaddr_un sa;
	socklen_t sl = abstract_addr(&sa, "ckpt-unix-seq");
	char seqname[64];
	snprintf(seqname, sizeof seqname, "ckpt-unix-seq-%d", (int)proto_pid);
	sl = abstract_addr(&sa, seqname);
	if (connect(sq, (struct sockaddr *)&sa, sl) != 0) FAIL("abstract seqpacket listener: connect: %s", strerror(errno));
	c = accept(aseq, NULL, NULL);
	if (c < 0) FAIL("abstract seqpacket accept: %s", strerror(errno));
	sendstr(sq, "rec");
	if (!expect(c, "rec", "abstract seqpacket", msg, size)) return 0;
	close(c);
	close(sq);

	if (!expect(shut[1], "bye", "shut down pair", msg, size) || !expect_eof(shut[1], "shut down pair", msg, size)) return 0;
	if (send(shut[0], "x", 1, MSG_NOSIGNAL) != -1 || errno != EPIPE) FAIL("a socket shut down for writing can write");
	if (!expect(gone, "last words", "pair with a closed end", msg, size) || !expect_eof(gone, "pair with a closed end", msg, size)) return 0;
	close(shut[0]);
	close(shut[1]);
	close(gone);
	make_ended();

	int type = 0;
	socklen_t tl = sizeof type;
	if (getsockopt(bare, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || type != SOCK_DGRAM) FAIL("bare socket: type %d", type);
	if (!(fcntl(dp[0], F_GETFL) & O_NONBLOCK)) FAIL("O_NONBLOCK lost");
	int v = 0;
	socklen_t vl = sizeof v;
	getsockopt(sp[0], SOL_SOCKET, SO_RCVBUF, &v, &vl);
	if (v != 200000) FAIL("SO_RCVBUF is %d, not 200000", v);
	getsockopt(sp[0], SOL_SOCKET, SO_PASSCRED, &v, &vl);
	if (v != 1) FAIL("SO_PASSCRED lost");

	queue_pairs();
	return 1;
}

int main(int argc, char **argv)
{
	proto_init(argc, argv);
	for (size_t i = 0; i < BIG; i++)
		big[i] = (unsigned char)(i * 131 + (i >> 9));
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) || socketpair(AF_UNIX, SOCK_DGRAM, 0, dp) || socketpair(AF_UNIX, SOCK_SEQPACKET, 0, qp))
		return 11;
	int rcv = 100000, one = 1;
	setsockopt(sp[0], SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
	setsockopt(sp[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
	fcntl(dp[0], F_SETFL, O_NONBLOCK);

	struct sockaddr_un a;
	snprintf(lpath, sizeof lpath, "%s/listen.sock", proto_dir);
	lst = socket(AF_UNIX, SOCK_STREAM, 0);
	if (bind(lst, (struct sockaddr *)&a, path_addr(&a, lpath)) != 0 || listen(lst, 8) != 0)
		return 12;
	chmod(lpath, 0640);
	cli = socket(AF_UNIX, SOCK_STREAM, 0);
	if (connect(cli, (struct sockaddr *)&a, path_addr(&a, lpath)) != 0)
		return 13;
	acc = accept(lst, NULL, NULL);
	make_pending();

	snprintf(aname, sizeof aname, "ckpt-unix-%d", (int)proto_pid);
	adg = socket(AF_UNIX, SOCK_DGRAM, 0);
	socklen_t al = abstract_addr(&a, aname);
	if (bind(adg, (struct sockaddr *)&a, al) != 0)
		return 14;
	adgc = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (connect(adgc, (struct sockaddr *)&a, al) != 0)
		return 15;
	char seqname[64];
	snprintf(seqname, sizeof seqname, "ckpt-unix-seq-%d", (int)proto_pid);
	aseq = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	al = abstract_addr(&a, seqname);
	if (bind(aseq, (struct sockaddr *)&a, al) != 0 || listen(aseq, 4) != 0)
		return 16;
	make_ended();
	bare = socket(AF_UNIX, SOCK_DGRAM, 0);
	queue_pairs();
	proto_ready("");
	proto_run(check_all);
}
