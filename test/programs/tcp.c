/*
 * tcp: established TCP connections with data in flight both ways, over
 * IPv4 and IPv6, both ends in this process (and optionally one to a peer
 * outside it), checking after restore that every byte arrives once, in
 * order, and the connections go on.
 *
 *   tcp WORKDIR [PORT]
 *
 * Holds, per family: a listener, a client connected to it and the accepted
 * end. The accepted end receives with SO_RCVBUF 64 KiB and the client sends
 * a pattern until its send buffer is full, so bytes wait in the accepted
 * end's receive queue and in the client's send queue (some sent and not yet
 * acknowledged, some not yet sent); the accepted end sends 100 KiB the other
 * way, waiting in the client's receive queue. With PORT, a third connection
 * to 127.0.0.1:PORT (an echo server outside the process) carries 10 KiB out
 * and expects it back.
 * Each check reads all of it, compares with the pattern at each offset, and
 * fills the queues again. Report: "PASS counter=N ports=...".
 */
#include "protocol.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#define FAIL(...) do { snprintf(msg, size, __VA_ARGS__); return 0; } while (0)
#define FILL_MAX (1024 * 1024)
#define BACK (100 * 1024)
#define ECHO (10 * 1024)

struct flow { int from, to; long long sent, got; const char *name; };
static struct flow flows[5];
static int nflows;
static int lst4, lst6, ext = -1;
static char ports[128];

static unsigned char pat(long long i, int salt) { return (unsigned char)(i * 7 + (i >> 11) + salt * 31); }

/* Send the pattern until `max` more bytes went or the socket is full. */
static void fill(struct flow *f, long long max, int salt)
{
	static unsigned char buf[65536];
	long long goal = f->sent + max;
	while (f->sent < goal) {
		size_t n = (size_t)(goal - f->sent < (long long)sizeof buf ? goal - f->sent : (long long)sizeof buf);
		for (size_t i = 0; i < n; i++)
			buf[i] = pat(f->sent + (long long)i, salt);
		ssize_t w = send(f->from, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w <= 0)
			break;
		f->sent += w;
	}
}

/* Read until everything sent has come, checking each byte. */
static int drain(struct flow *f, int salt, char *msg, size_t size)
{
	static unsigned char buf[65536];
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (f->got < f->sent) {
		ssize_t n = recv(f->to, buf, sizeof buf, MSG_DONTWAIT);
		if (n == 0) FAIL("%s: end of file after %lld of %lld bytes", f->name, f->got, f->sent);
		if (n < 0) {
			if (errno != EAGAIN) FAIL("%s: recv: %s after %lld of %lld bytes", f->name, strerror(errno), f->got, f->sent);
			clock_gettime(CLOCK_MONOTONIC, &now);
			if (now.tv_sec - start.tv_sec > 10) FAIL("%s: %lld of %lld bytes came in 10 s", f->name, f->got, f->sent);
			struct pollfd p = { f->to, POLLIN, 0 };
			poll(&p, 1, 50);
			continue;
		}
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] != pat(f->got + i, salt)) FAIL("%s: byte %lld differs", f->name, f->got + i);
		f->got += n;
	}
	return 1;
}

static long long fill_size(int i) { return i == 4 ? ECHO : (i % 2 == 0 ? FILL_MAX : BACK); }

static void refill(void)
{
	for (int i = 0; i < nflows; i++)
		fill(&flows[i], fill_size(i), i);
}

static int connect_pair(int family, int *lst, struct flow *up, struct flow *down, const char *tag)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t sl;
	if (family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sl = sizeof *a;
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
		sl = sizeof *a;
	}
	*lst = socket(family, SOCK_STREAM, 0);
	int rcv = 65536, one = 1;
	setsockopt(*lst, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
	if (bind(*lst, (struct sockaddr *)&ss, sl) || listen(*lst, 4))
		return -1;
	socklen_t l = sizeof ss;
	getsockname(*lst, (struct sockaddr *)&ss, &l);
	int c = socket(family, SOCK_STREAM, 0);
	setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(c, (struct sockaddr *)&ss, sl))
		return -1;
	int s = accept(*lst, NULL, NULL);
	if (s < 0)
		return -1;
	fcntl(c, F_SETFL, O_NONBLOCK);
	fcntl(s, F_SETFL, O_NONBLOCK);
	static char names[4][32];
	static int nn;
	snprintf(names[nn], 32, "client>server %s", tag);
	*up = (struct flow){ c, s, 0, 0, names[nn++] };
	snprintf(names[nn], 32, "server>client %s", tag);
	*down = (struct flow){ s, c, 0, 0, names[nn++] };
	return 0;
}

static int port_of(int fd, int peer)
{
	struct sockaddr_storage ss;
	socklen_t l = sizeof ss;
	if ((peer ? getpeername : getsockname)(fd, (struct sockaddr *)&ss, &l) != 0)
		return -1;
	return ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port : ((struct sockaddr_in6 *)&ss)->sin6_port);
}

static int check_all(char *msg, size_t size)
{
	for (int i = 0; i < nflows; i++)
		if (!drain(&flows[i], i, msg, size))
			return 0;
	int one = 0;
	socklen_t ol = sizeof one;
	getsockopt(flows[0].from, IPPROTO_TCP, TCP_NODELAY, &one, &ol);
	if (one != 1) FAIL("TCP_NODELAY lost");
	char now[128];
	snprintf(now, sizeof now, "%d>%d,%d>%d", port_of(flows[0].from, 0), port_of(flows[0].from, 1), port_of(flows[2].from, 0), port_of(flows[2].from, 1));
	if (strcmp(now, ports) != 0) FAIL("ports moved: %s, were %s", now, ports);
	refill();
	snprintf(msg, size, "ports=%s", ports);
	return 1;
}

int main(int argc, char **argv)
{
	proto_init(argc, argv);
	if (connect_pair(AF_INET, &lst4, &flows[0], &flows[1], "v4") || connect_pair(AF_INET6, &lst6, &flows[2], &flows[3], "v6"))
		return 11;
	nflows = 4;
	if (argc > 2) {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[2])) };
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		ext = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(ext, (struct sockaddr *)&a, sizeof a))
			return 12;
		fcntl(ext, F_SETFL, O_NONBLOCK);
		flows[4] = (struct flow){ ext, ext, 0, 0, "to the echo server and back" };
		nflows = 5;
	}
	snprintf(ports, sizeof ports, "%d>%d,%d>%d", port_of(flows[0].from, 0), port_of(flows[0].from, 1), port_of(flows[2].from, 0), port_of(flows[2].from, 1));
	refill();
	struct timespec settle = { 0, 50 * 1000000L };
	nanosleep(&settle, NULL);
	proto_ready(ports);
	proto_run(check_all);
}
