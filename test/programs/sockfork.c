/*
 * sockfork: sockets shared by a parent and its child, with data queued in
 * both directions: a stream socketpair and a datagram socketpair split
 * across the fork, and a TCP connection from the child to the parent's
 * listener. With PORT, the parent also holds a TCP connection to an echo
 * server on 127.0.0.1:PORT, outside the tree.
 *
 *   sockfork WORKDIR [PORT]
 *
 * The child reads nothing until asked: on each parent check, the parent
 * reads and compares what the child queued for it, then creates
 * WORKDIR/childcheck; the child reads and compares what the parent queued,
 * answers "OK\n" or "FAIL ...\n" on the stream pair, and queues its data
 * again; the parent queues its own again. Report: "PASS counter=N child=PID".
 */
#include "protocol.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>

#define FAIL(...) do { snprintf(msg, size, __VA_ARGS__); return 0; } while (0)
#define TCPLEN (64 * 1024)
#define ECHOLEN (10 * 1024)

static int sp[2], dp[2], lst, pa = -1, cc = -1, ext = -1;
static pid_t child;
static unsigned char bufp[TCPLEN], bufc[TCPLEN];

static unsigned char pat(long i, int salt) { return (unsigned char)(i * 13 + (i >> 8) + salt); }
static void fill(unsigned char *b, long n, int salt) { for (long i = 0; i < n; i++) b[i] = pat(i, salt); }

static void msleep(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Receive exactly n bytes within 5 s. */
static int recv_all(int fd, unsigned char *b, long n)
{
	long got = 0;
	for (int tries = 0; got < n && tries < 250;) {
		ssize_t r = recv(fd, b + got, n - got, MSG_DONTWAIT);
		if (r > 0) { got += r; continue; }
		if (r == 0 || errno != EAGAIN) return 0;
		struct pollfd p = { fd, POLLIN, 0 };
		poll(&p, 1, 20);
		tries++;
	}
	return got == n;
}

static int send_all(int fd, const unsigned char *b, long n)
{
	long done = 0;
	while (done < n) {
		ssize_t w = send(fd, b + done, n - done, MSG_NOSIGNAL);
		if (w <= 0) return 0;
		done += w;
	}
	return 1;
}

static int same(const unsigned char *b, long n, int salt)
{
	for (long i = 0; i < n; i++)
		if (b[i] != pat(i, salt)) return 0;
	return 1;
}

/* The child's own data, queued for the parent. */
static void child_queue(void)
{
	send(sp[1], "C2P stream", 10, 0);
	send(dp[1], "C2P dgram 1", 11, 0);
	send(dp[1], "C2P dgram 2", 11, 0);
	fill(bufc, TCPLEN, 2);
	send_all(cc, bufc, TCPLEN);
}

static void parent_queue(void)
{
	send(sp[0], "P2C stream", 10, 0);
	send(dp[0], "P2C dgram", 9, 0);
	fill(bufp, TCPLEN, 1);
	send_all(pa, bufp, TCPLEN);
}

static void child_answer(void)
{
	char m[64] = { 0 }, out[128];
	const char *bad = NULL;
	if (!recv_all(sp[1], (unsigned char *)m, 10) || memcmp(m, "P2C stream", 10)) bad = "stream pair: P2C stream not there";
	else if (recv(dp[1], m, sizeof m, MSG_DONTWAIT) != 9 || memcmp(m, "P2C dgram", 9)) bad = "dgram pair: P2C dgram not there";
	else if (recv(dp[1], m, sizeof m, MSG_DONTWAIT) != -1) bad = "dgram pair: more than one datagram";
	else if (!recv_all(cc, bufc, TCPLEN) || !same(bufc, TCPLEN, 1)) bad = "tcp: the parent's 64 KiB did not arrive intact";
	snprintf(out, sizeof out, bad ? "FAIL %s\n" : "OK\n", bad);
	send(sp[1], out, strlen(out), 0);
	child_queue();
}

static void child_main(void)
{
	close(sp[0]);
	close(dp[0]);
	close(lst);
	if (pa >= 0) close(pa);
	if (ext >= 0) close(ext);
	child_queue();
	for (;;) {
		msleep(20);
		if (proto_take("childcheck"))
			child_answer();
		if (getppid() == 1)
			_exit(0);
	}
}

static int check_all(char *msg, size_t size)
{
	char m[64] = { 0 };
	if (!recv_all(sp[0], (unsigned char *)m, 10) || memcmp(m, "C2P stream", 10)) FAIL("stream pair: \"C2P stream\" not queued (got \"%s\")", m);
	if (recv(dp[0], m, sizeof m, MSG_DONTWAIT) != 11 || memcmp(m, "C2P dgram 1", 11)) FAIL("dgram pair: first datagram lost");
	if (recv(dp[0], m, sizeof m, MSG_DONTWAIT) != 11 || memcmp(m, "C2P dgram 2", 11)) FAIL("dgram pair: second datagram lost");
	if (!recv_all(pa, bufp, TCPLEN) || !same(bufp, TCPLEN, 2)) FAIL("tcp: the child's 64 KiB did not arrive intact");
	proto_write("childcheck", "");
	char answer[128] = { 0 };
	for (int i = 0; i < (int)sizeof answer - 1; i++) {
		if (!recv_all(sp[0], (unsigned char *)answer + i, 1)) FAIL("the child does not answer (%s)", answer);
		if (answer[i] == '\n') break;
	}
	if (strncmp(answer, "OK\n", 3) != 0) FAIL("child: %s", answer);
	if (ext >= 0) {
		static unsigned char e[ECHOLEN];
		fill(e, ECHOLEN, 3);
		if (!send_all(ext, e, ECHOLEN)) FAIL("echo: send: %s", strerror(errno));
		memset(e, 0, ECHOLEN);
		if (!recv_all(ext, e, ECHOLEN) || !same(e, ECHOLEN, 3)) FAIL("echo: 10 KiB did not come back intact");
	}
	parent_queue();
	snprintf(msg, size, "child=%d", (int)child);
	return 1;
}

int main(int argc, char **argv)
{
	proto_init(argc, argv);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) || socketpair(AF_UNIX, SOCK_DGRAM, 0, dp))
		return 11;
	struct sockaddr_in a = { .sin_family = AF_INET };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t al = sizeof a;
	lst = socket(AF_INET, SOCK_STREAM, 0);
	if (bind(lst, (struct sockaddr *)&a, sizeof a) || listen(lst, 4) || getsockname(lst, (struct sockaddr *)&a, &al))
		return 12;
	if (argc > 2) {
		struct sockaddr_in e = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[2])) };
		e.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		ext = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(ext, (struct sockaddr *)&e, sizeof e))
			return 13;
	}
	child = fork();
	if (child < 0)
		return 14;
	if (child == 0) {
		cc = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(cc, (struct sockaddr *)&a, sizeof a))
			_exit(15);
		child_main();
	}
	close(sp[1]);
	close(dp[1]);
	pa = accept(lst, NULL, NULL);
	if (pa < 0)
		return 16;
	parent_queue();
	msleep(50);
	char facts[32];
	snprintf(facts, sizeof facts, "child=%d", (int)child);
	proto_ready(facts);
	for (long counter = 1;; counter++) {
		msleep(20);
		proto_tick(counter, check_all);
	}
}
