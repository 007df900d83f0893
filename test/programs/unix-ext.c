/*
 * unix-ext: unix sockets connected to servers outside the process (for
 * --ext-unix-sk), checking after restore that both are connected to the same
 * names again and carry data.
 *
 *   unix-ext WORKDIR STREAM_PATH DGRAM_PATH
 *
 * Holds a stream socket connected to STREAM_PATH (an echo server) and a
 * datagram socket connected to DGRAM_PATH. Checks: the stream peer's name is
 * STREAM_PATH and "ping N" comes back; the datagram socket's peer is
 * DGRAM_PATH and a datagram to it is accepted.
 * Report: "PASS counter=N".
 */
#include "protocol.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#define FAIL(...) do { snprintf(msg, size, __VA_ARGS__); return 0; } while (0)

static int st, dg;
static const char *spath, *dpath;
static int pings;

static int connect_to(int type, const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	strncpy(a.sun_path, path, sizeof a.sun_path - 1);
	int fd = socket(AF_UNIX, type, 0);
	return connect(fd, (struct sockaddr *)&a, sizeof a) == 0 ? fd : -1;
}

static int peer_is(int fd, const char *path)
{
	struct sockaddr_un a;
	memset(&a, 0, sizeof a);
	socklen_t l = sizeof a;
	return getpeername(fd, (struct sockaddr *)&a, &l) == 0 && strcmp(a.sun_path, path) == 0;
}

static int check_all(char *msg, size_t size)
{
	if (!peer_is(st, spath)) FAIL("the stream socket is not connected to %s", spath);
	if (!peer_is(dg, dpath)) FAIL("the datagram socket is not connected to %s", dpath);
	char out[32], in[32] = { 0 };
	int n = snprintf(out, sizeof out, "ping %d", ++pings);
	if (send(st, out, n, MSG_NOSIGNAL) != n) FAIL("stream send: %s", strerror(errno));
	struct pollfd p = { st, POLLIN, 0 };
	if (poll(&p, 1, 5000) != 1 || recv(st, in, sizeof in - 1, 0) != n || strcmp(in, out) != 0) FAIL("the echo server did not echo \"%s\" (got \"%s\")", out, in);
	if (send(dg, "dgram", 5, MSG_NOSIGNAL) != 5) FAIL("datagram send: %s", strerror(errno));
	return 1;
}

int main(int argc, char **argv)
{
	proto_init(argc, argv);
	if (argc < 4)
		return 2;
	spath = argv[2];
	dpath = argv[3];
	if ((st = connect_to(SOCK_STREAM, spath)) < 0 || (dg = connect_to(SOCK_DGRAM, dpath)) < 0)
		return 11;
	proto_ready("");
	proto_run(check_all);
}
