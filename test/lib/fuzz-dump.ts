/**
 * A real seed for the image fuzzer: a small C program (a pipe with bytes in flight, a
 * signal handler, sparse anonymous pages split in two VMAs, a regular file fd) started
 * detached, dumped with the CLI (`ckpt dump -t PID -D DIR -R`), then killed by its pid.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CLI } from './paths.js';
import type { Seed } from './fuzz-synth.js';

const SOURCE = String.raw`
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void on_usr1(int sig) { (void)sig; }

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  for (int fd = 3; fd < 1024; fd++) close(fd);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sigaction(SIGUSR1, &sa, 0);
  signal(SIGUSR2, SIG_IGN);
  int p[2];
  if (pipe(p) != 0 || write(p[1], "bytes in flight", 15) != 15) return 1;
  int self = open(argv[0], O_RDONLY);
  (void)self;
  long pg = 4096;
  volatile char *m = mmap(0, 64 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return 1;
  for (long i = 0; i < 64; i += (i % 5) + 1) m[i * pg] = (char)(i + 1);
  mprotect((void *)(m + 32 * pg), pg, PROT_READ);
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", argv[1]);
  FILE *f = fopen(tmp, "w");
  if (!f) return 1;
  fprintf(f, "%d\n", getpid());
  fclose(f);
  rename(tmp, argv[1]);
  for (;;) pause();
}
`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Dump a freshly started process; throws (with the reason) if cc or ckpt dump fails. */
export async function dumpRealSeed(): Promise<Seed & { pages: Buffer }> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-fuzz-seed-'));
  let pid = 0;
  let child: ReturnType<typeof spawn> | undefined;
  try {
    const src = path.join(work, 'fuzzseed.c');
    const bin = path.join(work, 'fuzzseed');
    fs.writeFileSync(src, SOURCE);
    const cc = spawnSync('cc', ['-O1', '-o', bin, src], { encoding: 'utf8' });
    if (cc.status !== 0) throw new Error(`cc failed (${cc.status ?? cc.error}): ${cc.stderr}`);
    const ready = path.join(work, 'ready');
    child = spawn(bin, [ready], { detached: true, stdio: 'ignore' });
    pid = child.pid ?? 0;
    child.unref();
    for (let i = 0; i < 250 && !fs.existsSync(ready); i++) await sleep(20);
    if (!fs.existsSync(ready)) throw new Error(`the seed program (pid ${pid}) did not get ready`);
    const dir = path.join(work, 'image');
    const r = spawnSync(process.execPath, [CLI, 'dump', '-t', String(pid), '-D', dir, '-R'], { encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) throw new Error(`ckpt dump -t ${pid} failed (exit ${r.status}): ${r.stderr}`);
    return {
      name: 'real-dump',
      img: fs.readFileSync(path.join(dir, 'ckpt.img')),
      pages: fs.readFileSync(path.join(dir, 'pages.img')),
    };
  } finally {
    if (pid > 0) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      const exited = child?.exitCode !== null || child?.signalCode !== null;
      if (!exited && child) await Promise.race([new Promise((r) => child!.once('exit', r)), sleep(2000)]);
    }
    fs.rmSync(work, { recursive: true, force: true });
  }
}
