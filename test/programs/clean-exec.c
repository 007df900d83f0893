/*
 * clean-exec: run a test program with nothing but stdio open.
 *
 *   clean-exec PROGRAM [ARGS...]
 *
 * The test runner may inherit stray fds from whatever started it (a pipe of a
 * terminal tool, say); a program holding such an fd would be refused by ckpt
 * ("a pipe whose other end is outside the process"). Closing every fd above 2
 * before exec makes each test program's fd table its own.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	syscall(SYS_close_range, 3U, ~0U, 0U);
	execv(argv[1], argv + 1);
	perror("clean-exec: execv");
	return 127;
}
