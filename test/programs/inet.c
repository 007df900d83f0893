/*
 * inet: UDP sockets, TCP listeners and a netlink socket, IPv4 and IPv6,
 * checking after restore that each is bound where it was, with its options,
 * and works.
 *
 *   inet WORKDIR
 *
 * Holds:
 *  - UDP on 127.0.0.1 (port chosen by the kernel), connected to a second UDP
 *    socket; UDP on [::1], unconnected, SO_RCVBUF 65536, O_NONBLOCK;
 *  - a TCP listener on 127.0.0.1 with SO_REUSEADDR, SO_REUSEPORT,
 *    TCP_NODELAY, SO_KEEPALIVE, TCP_KEEPIDLE 77, SO_SNDBUF 50000, O_NONBLOCK,
 *    backlog 7; a TCP listener on [::] with IPV6_V6ONLY;
 *  - a NETLINK_ROUTE socket bound to groups RTMGRP_LINK.
 * Checks: ports and options as before; each listener accepts a connection
 * made to it; datagrams go both ways on the connected UDP pair and to the
 * IPv6 one; the netlink socket answers an RTM_GETLINK dump.
 * Report: "PASS counter=N ports=A,B,C,D".
 */
#include "protocol.h"

#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>

#define FAIL(...) do { snprintf(msg, size, __VA_ARGS__); return 0; } while (0)

static int u4, u4peer, u6, t4, t6, nl;
static int port_u4, port_u6, port_t4, port_t6, port_u4peer;

static int port_of(int fd)
{
	struct sockaddr_storage ss;
	socklen_t l = sizeof ss;
	if (getsockname(fd, (struct sockaddr *)&ss, &l) != 0)
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static int opt(int fd, int level, int name)
{
	int v = -1;
	socklen_t l = sizeof v;
	getsockopt(fd, level, name, &v, &l);
	return v;
}

static struct sockaddr_in v4(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

static struct sockaddr_in6 v6(int port)
{
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
	a.sin6_addr = in6addr_loopback;
	return a;
}

static int wait_readable(int fd)
{
	for (int i = 0; i < 200; i++) {
		char c;
		if (recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) >= 0)
			return 1;
		struct timespec ts = { 0, 5 * 1000000L };
		nanosleep(&ts, NULL);
	}
	return 0;
}

static int accept_one(int lst, struct sockaddr *to, socklen_t tl, const char *what, char *msg, size_t size)
{
	int c = socket(to->sa_family, SOCK_STREAM, 0);
	if (connect(c, to, tl) != 0) FAIL("%s: connect: %s", what, strerror(errno));
	int a = -1;
	for (int i = 0; i < 200 && a < 0; i++) {
		a = accept(lst, NULL, NULL);
		if (a < 0) {
			struct timespec ts = { 0, 5 * 1000000L };
			nanosleep(&ts, NULL);
		}
	}
	if (a < 0) FAIL("%s: accept: %s", what, strerror(errno));
	send(c, "hi", 2, 0);
	char buf[4] = { 0 };
	if (!wait_readable(a) || recv(a, buf, 2, 0) != 2 || memcmp(buf, "hi", 2) != 0) FAIL("%s: no data through the accepted connection", what);
	/* The client closes first: its side, not the listener's port, waits in TIME_WAIT. */
	close(c);
	close(a);
	return 1;
}

static int check_all(char *msg, size_t size)
{
	if (port_of(u4) != port_u4 || port_of(u6) != port_u6 || port_of(t4) != port_t4 || port_of(t6) != port_t6)
		FAIL("ports moved: udp4 %d/%d udp6 %d/%d tcp4 %d/%d tcp6 %d/%d", port_of(u4), port_u4, port_of(u6), port_u6, port_of(t4), port_t4, port_of(t6), port_t6);
	if (opt(t4, SOL_SOCKET, SO_REUSEADDR) != 1 || opt(t4, SOL_SOCKET, SO_REUSEPORT) != 1) FAIL("tcp4: SO_REUSEADDR/SO_REUSEPORT lost");
	if (opt(t4, IPPROTO_TCP, TCP_NODELAY) != 1 || opt(t4, SOL_SOCKET, SO_KEEPALIVE) != 1 || opt(t4, IPPROTO_TCP, TCP_KEEPIDLE) != 77) FAIL("tcp4: TCP_NODELAY/SO_KEEPALIVE/TCP_KEEPIDLE lost");
	if (opt(t4, SOL_SOCKET, SO_SNDBUF) != 100000) FAIL("tcp4: SO_SNDBUF %d, not 100000", opt(t4, SOL_SOCKET, SO_SNDBUF));
	if (opt(t4, SOL_SOCKET, SO_ACCEPTCONN) != 1 || opt(t6, SOL_SOCKET, SO_ACCEPTCONN) != 1) FAIL("a listener no longer listens");
	if (!(fcntl(t4, F_GETFL) & O_NONBLOCK) || !(fcntl(u6, F_GETFL) & O_NONBLOCK)) FAIL("O_NONBLOCK lost");
	if (fcntl(t6, F_GETFL) & O_NONBLOCK) FAIL("O_NONBLOCK appeared on tcp6");
	if (opt(t6, IPPROTO_IPV6, IPV6_V6ONLY) != 1) FAIL("tcp6: IPV6_V6ONLY lost");
	if (opt(u6, SOL_SOCKET, SO_RCVBUF) != 131072) FAIL("udp6: SO_RCVBUF %d", opt(u6, SOL_SOCKET, SO_RCVBUF));
	if (opt(nl, SOL_SOCKET, SO_PROTOCOL) != NETLINK_ROUTE) FAIL("netlink: protocol %d", opt(nl, SOL_SOCKET, SO_PROTOCOL));

	struct sockaddr_in a4 = v4(port_t4);
	if (!accept_one(t4, (struct sockaddr *)&a4, sizeof a4, "tcp4 listener", msg, size)) return 0;
	struct sockaddr_in6 a6 = v6(port_t6);
	if (!accept_one(t6, (struct sockaddr *)&a6, sizeof a6, "tcp6 listener", msg, size)) return 0;

	struct sockaddr_in p;
	socklen_t pl = sizeof p;
	if (getpeername(u4, (struct sockaddr *)&p, &pl) != 0 || ntohs(p.sin_port) != port_u4peer) FAIL("udp4: no longer connected to its peer");
	char buf[16] = { 0 };
	if (send(u4, "ping", 4, 0) != 4 || !wait_readable(u4peer) || recv(u4peer, buf, sizeof buf, 0) != 4 || memcmp(buf, "ping", 4)) FAIL("udp4 -> peer: datagram lost");
	if (send(u4peer, "pong", 4, 0) != 4 || !wait_readable(u4) || recv(u4, buf, sizeof buf, 0) != 4 || memcmp(buf, "pong", 4)) FAIL("peer -> udp4: datagram lost");
	int s6 = socket(AF_INET6, SOCK_DGRAM, 0);
	a6 = v6(port_u6);
	sendto(s6, "six", 3, 0, (struct sockaddr *)&a6, sizeof a6);
	close(s6);
	if (!wait_readable(u6) || recv(u6, buf, sizeof buf, 0) != 3 || memcmp(buf, "six", 3)) FAIL("udp6: datagram lost");

	struct { struct nlmsghdr h; struct ifinfomsg i; } req = { { sizeof req, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1, 0 }, { .ifi_family = AF_UNSPEC } };
	if (send(nl, &req, sizeof req, 0) != sizeof req) FAIL("netlink: send: %s", strerror(errno));
	static char nbuf[65536];
	int links = 0, done = 0;
	for (int i = 0; i < 50 && !done; i++) {
		ssize_t n = recv(nl, nbuf, sizeof nbuf, MSG_DONTWAIT);
		if (n < 0) {
			struct timespec ts = { 0, 5 * 1000000L };
			nanosleep(&ts, NULL);
			continue;
		}
		for (struct nlmsghdr *h = (struct nlmsghdr *)nbuf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_DONE) done = 1;
			else if (h->nlmsg_type == RTM_NEWLINK) links++;
		}
	}
	if (!done || links < 1) FAIL("netlink: RTM_GETLINK gave %d links, done %d", links, done);
	snprintf(msg, size, "ports=%d,%d,%d,%d", port_u4, port_u6, port_t4, port_t6);
	return 1;
}

int main(int argc, char **argv)
{
	proto_init(argc, argv);
	int one = 1;
	struct sockaddr_in a4 = v4(0);
	u4 = socket(AF_INET, SOCK_DGRAM, 0);
	u4peer = socket(AF_INET, SOCK_DGRAM, 0);
	if (bind(u4, (struct sockaddr *)&a4, sizeof a4) || bind(u4peer, (struct sockaddr *)&a4, sizeof a4))
		return 11;
	port_u4 = port_of(u4);
	port_u4peer = port_of(u4peer);
	struct sockaddr_in pa = v4(port_u4peer), ua = v4(port_u4);
	if (connect(u4, (struct sockaddr *)&pa, sizeof pa) || connect(u4peer, (struct sockaddr *)&ua, sizeof ua))
		return 12;
	struct sockaddr_in6 a6 = v6(0);
	u6 = socket(AF_INET6, SOCK_DGRAM, 0);
	int rcv = 65536;
	setsockopt(u6, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
	if (bind(u6, (struct sockaddr *)&a6, sizeof a6))
		return 13;
	fcntl(u6, F_SETFL, O_NONBLOCK);
	port_u6 = port_of(u6);

	t4 = socket(AF_INET, SOCK_STREAM, 0);
	int idle = 77, snd = 50000;
	setsockopt(t4, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	setsockopt(t4, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
	setsockopt(t4, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(t4, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
	setsockopt(t4, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
	setsockopt(t4, SOL_SOCKET, SO_SNDBUF, &snd, sizeof snd);
	if (bind(t4, (struct sockaddr *)&a4, sizeof a4) || listen(t4, 7))
		return 14;
	fcntl(t4, F_SETFL, O_NONBLOCK);
	port_t4 = port_of(t4);
	t6 = socket(AF_INET6, SOCK_STREAM, 0);
	setsockopt(t6, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	struct sockaddr_in6 any6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT };
	if (bind(t6, (struct sockaddr *)&any6, sizeof any6) || listen(t6, 5))
		return 15;
	port_t6 = port_of(t6);

	nl = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
	struct sockaddr_nl na = { .nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK };
	if (bind(nl, (struct sockaddr *)&na, sizeof na))
		return 16;

	char facts[128];
	snprintf(facts, sizeof facts, "udp4=%d udp6=%d tcp4=%d tcp6=%d", port_u4, port_u6, port_t4, port_t6);
	proto_ready(facts);
	proto_run(check_all);
}
