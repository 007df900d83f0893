/*
 * SysV IPC in an ipc namespace of its own (run it with ckpt run).
 *
 *   sysvipc make W   sets hostname "ckpt-box" and domainname "ckpt-dom", then
 *                    creates and attaches shm A (key 0x0c4b7001, 3 pages + 100
 *                    bytes, mode 0640, a pattern), shm B (IPC_PRIVATE, 2 pages,
 *                    "private-B"), a semaphore set (key 0x0c4b7002, values 5 0
 *                    42, mode 0600) and a queue (key 0x0c4b7003, mode 0620)
 *                    holding (1 "one") (7 "seven") (2 1000 × 'x'). It writes
 *                    W/ready "pid=N shmA=ID shmB=ID sem=ID msg=ID addrA=HEX addrB=HEX",
 *                    then pauses for ever.
 *   sysvipc check SHMB_ID   in the namespace to check (nsenter -i): finds the
 *                    objects by key (shm B by id), checks contents, values and
 *                    messages (taking the messages, type 7 first), prints PASS
 *                    or FAIL <what> on stdout.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>

#define KEY_A 0x0c4b7001
#define KEY_SEM 0x0c4b7002
#define KEY_MSG 0x0c4b7003
#define SIZE_A (3 * 4096 + 100)
#define SIZE_B (2 * 4096)

struct msg { long mtype; char text[2048]; };

static void die(const char *what) { perror(what); exit(1); }

static void send(int q, long type, const char *text, size_t len) {
  struct msg m = { .mtype = type };
  memcpy(m.text, text, len);
  if (msgsnd(q, &m, len, 0) < 0) die("msgsnd");
}

static int make(const char *dir) {
  if (sethostname("ckpt-box", 8) < 0 || setdomainname("ckpt-dom", 8) < 0) die("sethostname");
  /* Objects made and removed first, so that the ids kept are not simply 0 (the sequence part moves on). */
  for (int i = 0; i < 2; i++) {
    shmctl(shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600), IPC_RMID, NULL);
    semctl(semget(IPC_PRIVATE, 1, IPC_CREAT | 0600), 0, IPC_RMID);
    msgctl(msgget(IPC_PRIVATE, IPC_CREAT | 0600), IPC_RMID, NULL);
  }
  int a = shmget(KEY_A, SIZE_A, IPC_CREAT | IPC_EXCL | 0640);
  int b = shmget(IPC_PRIVATE, SIZE_B, IPC_CREAT | 0600);
  if (a < 0 || b < 0) die("shmget");
  unsigned char *pa = shmat(a, NULL, 0);
  char *pb = shmat(b, NULL, 0);
  if (pa == (void *)-1 || pb == (void *)-1) die("shmat");
  for (int i = 0; i < SIZE_A; i++) pa[i] = (unsigned char)(i * 7 + 3);
  strcpy(pb, "private-B");
  int s = semget(KEY_SEM, 3, IPC_CREAT | IPC_EXCL | 0600);
  if (s < 0) die("semget");
  unsigned short vals[3] = { 5, 0, 42 };
  if (semctl(s, 0, SETALL, vals) < 0) die("semctl");
  int q = msgget(KEY_MSG, IPC_CREAT | IPC_EXCL | 0620);
  if (q < 0) die("msgget");
  char xs[1000];
  memset(xs, 'x', sizeof xs);
  send(q, 1, "one", 3);
  send(q, 7, "seven", 5);
  send(q, 2, xs, sizeof xs);
  char path[4096], tmp[4096];
  snprintf(path, sizeof path, "%s/ready", dir);
  snprintf(tmp, sizeof tmp, "%s/.ready.tmp", dir);
  FILE *f = fopen(tmp, "w");
  if (!f) die("fopen");
  fprintf(f, "pid=%d shmA=%d shmB=%d sem=%d msg=%d addrA=%lx addrB=%lx\n", getpid(), a, b, s, q, (unsigned long)pa, (unsigned long)pb);
  fclose(f);
  if (rename(tmp, path) < 0) die("rename");
  for (;;) pause();
  return 0;
}

#define FAIL(...) do { printf("FAIL "); printf(__VA_ARGS__); printf("\n"); return 1; } while (0)

static int check(int idB) {
  int a = shmget(KEY_A, 0, 0);
  if (a < 0) FAIL("shm A (key %x) not found", KEY_A);
  struct shmid_ds ds;
  if (shmctl(a, IPC_STAT, &ds) < 0) FAIL("shmctl A");
  if (ds.shm_segsz != SIZE_A || (ds.shm_perm.mode & 0777) != 0640) FAIL("shm A size %zu mode %o", ds.shm_segsz, ds.shm_perm.mode & 0777);
  unsigned char *pa = shmat(a, NULL, SHM_RDONLY);
  if (pa == (void *)-1) FAIL("shmat A");
  for (int i = 0; i < SIZE_A; i++) if (pa[i] != (unsigned char)(i * 7 + 3)) FAIL("shm A byte %d", i);
  char *pb = shmat(idB, NULL, SHM_RDONLY);
  if (pb == (void *)-1) FAIL("shmat B id %d", idB);
  if (strcmp(pb, "private-B")) FAIL("shm B holds '%.16s'", pb);
  int s = semget(KEY_SEM, 0, 0);
  if (s < 0) FAIL("sem set not found");
  unsigned short vals[3];
  if (semctl(s, 0, GETALL, vals) < 0) FAIL("GETALL");
  if (vals[0] != 5 || vals[1] != 0 || vals[2] != 42) FAIL("sem values %d %d %d", vals[0], vals[1], vals[2]);
  int q = msgget(KEY_MSG, 0);
  if (q < 0) FAIL("queue not found");
  struct msg m;
  ssize_t n = msgrcv(q, &m, sizeof m.text, 7, IPC_NOWAIT);
  if (n != 5 || memcmp(m.text, "seven", 5)) FAIL("type 7 message (%zd bytes)", n);
  n = msgrcv(q, &m, sizeof m.text, 0, IPC_NOWAIT);
  if (n != 3 || m.mtype != 1 || memcmp(m.text, "one", 3)) FAIL("first message (%zd bytes, type %ld)", n, m.mtype);
  n = msgrcv(q, &m, sizeof m.text, 0, IPC_NOWAIT);
  if (n != 1000 || m.mtype != 2 || m.text[0] != 'x' || m.text[999] != 'x') FAIL("third message (%zd bytes, type %ld)", n, m.mtype);
  if (msgrcv(q, &m, sizeof m.text, 0, IPC_NOWAIT) >= 0) FAIL("a fourth message");
  printf("PASS a=%d s=%d q=%d\n", a, s, q);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && !strcmp(argv[1], "make")) return make(argv[2]);
  if (argc == 3 && !strcmp(argv[1], "check")) return check(atoi(argv[2]));
  fprintf(stderr, "usage: sysvipc make W | sysvipc check SHMB_ID\n");
  return 2;
}
