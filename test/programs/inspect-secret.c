/*
 * inspect-secret: state for the inspection commands (ckpt show --tree/--files/
 * --maps/--cmdline/--env, ckpt mem, ckpt diff).
 *
 *   inspect-secret WORKDIR [ARGS...]
 *
 * Sets up:
 *  - a secret string in the heap: malloc'd, "ckpt-secret-<pid>" (ready: secret=ADDR);
 *  - a counter in a page-aligned static (.bss) page, incremented every loop
 *    (~10 ms), the only thing the loop writes besides the protocol's stack use
 *    (ready: counter=ADDR);
 *  - two anonymous pages filled with a pattern, then made read-only with
 *    mprotect(PROT_READ) (ready: ro=ADDR);
 *  - W/data ("0123456789") open O_RDWR|O_APPEND at offset 4 (ready: datafd=N),
 *    and a pipe holding the 5 bytes "hello" (ready: piper=N pipew=N; the write
 *    end is O_CLOEXEC).
 * The extra ARGS and the environment are only there to be read back from an image.
 *
 * Checks: the secret and the read-only pages are intact; getpid() (protocol.h).
 * Report: "PASS counter=N".
 */
#include "protocol.h"
#include "pattern.h"

#include <sys/mman.h>

enum { SALT_RO = 11 };
#define RO_PAGES 2

static volatile long counter_page[PAGE / sizeof(long)] __attribute__((aligned(4096)));
static char *secret;
static char expected[64];
static unsigned char *ro;

static int check(char *msg, size_t size)
{
	if (strcmp(secret, expected) != 0) {
		snprintf(msg, size, "secret is '%.40s', want '%s'", secret, expected);
		return 0;
	}
	for (size_t i = 0; i < RO_PAGES; i++)
		if (!page_matches(ro + i * PAGE, SALT_RO, i)) {
			snprintf(msg, size, "read-only page %zu differs", i);
			return 0;
		}
	return 1;
}

int main(int argc, char **argv)
{
	proto_init(argc, argv);

	snprintf(expected, sizeof expected, "ckpt-secret-%d", (int)getpid());
	secret = malloc(64);
	if (!secret)
		return 10;
	strcpy(secret, expected);

	ro = mmap(NULL, RO_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ro == MAP_FAILED)
		return 11;
	for (size_t i = 0; i < RO_PAGES; i++)
		fill_page(ro + i * PAGE, SALT_RO, i);
	if (mprotect(ro, RO_PAGES * PAGE, PROT_READ) != 0)
		return 12;

	char path[PATH_MAX];
	proto_path(path, "data");
	int data = open(path, O_RDWR | O_CREAT | O_APPEND, 0644);
	if (data < 0 || write(data, "0123456789", 10) != 10 || lseek(data, 4, SEEK_SET) != 4)
		return 13;
	int p[2];
	if (pipe(p) != 0 || write(p[1], "hello", 5) != 5 || fcntl(p[1], F_SETFD, FD_CLOEXEC) != 0)
		return 14;

	char facts[256];
	snprintf(facts, sizeof facts, "secret=%p counter=%p ro=%p datafd=%d piper=%d pipew=%d",
		 (void *)secret, (void *)counter_page, (void *)ro, data, p[0], p[1]);
	proto_ready(facts);

	for (;;) {
		counter_page[0]++;
		proto_tick(counter_page[0], check);
		usleep(10000);
	}
}
