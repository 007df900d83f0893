/**
 * Open files by group, one self-checking program each (dump → kill → restore →
 * the program checks every fd): directories, devices and O_PATH; pipes and
 * FIFOs; ptys with their controlling terminal and /dev/tty; an event loop on
 * epoll + eventfd + timerfd + signalfd; and the fd kinds ckpt refuses.
 */
import assert from 'node:assert/strict';
import { after, afterEach, describe, test } from 'node:test';
import { closeSync, constants, existsSync, openSync, readFileSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import {
  assertCleanError, assertPass, ckpt, cleanup, dumpOk, isRunning, makeWorkDir, restoreInBackground, tracerPid, waitGone, dumpAndRestore, killAll, readCounter, reportedCounter, requestCheck, sleep, startChecked, startProgram, waitCounterAbove, waitFor, whileRunning,
} from './lib/index.js';

afterEach(() => killAll());
after(cleanup);

const SLOW = { timeout: 180_000 };

async function roundTrip(name: string): Promise<void> {
  const { dir, pid } = await startChecked(name);
  const { restore, report } = await dumpAndRestore(pid, dir);
  await whileRunning(restore, waitCounterAbove(dir, reportedCounter(report)));
  assertPass(await whileRunning(restore, requestCheck(dir)));
}

describe('open files by group', () => {
  test('devices.c: a directory, O_PATH fds (file, directory, symlink, FIFO), an O_APPEND|O_NOATIME file, an O_DIRECT file and /dev/null, zero, full, random, urandom keep their numbers, flags and close-on-exec', SLOW, async () => {
    await roundTrip('devices');
  });
});

describe('pipes and FIFOs', () => {
  test('fifos.c: two pipes and four FIFOs (both ends, O_RDWR, a lone reader, a lone writer) keep their bytes in flight, capacity, flags and close-on-exec', SLOW, async () => {
    await roundTrip('fifos');
  });
});

describe('pseudo-terminals', () => {
  test('pty.c: three ptys the process opened come back at their indexes, connected, with termios, window size, lock, packet mode, and one as its controlling terminal with /dev/tty', SLOW, async () => {
    await roundTrip('pty');
  });
});

/** A key=value number of a report. */
function fact(report: string, key: string): number {
  const m = new RegExp(`\\b${key}=(\\d+)`).exec(report);
  if (!m) throw new Error(`no ${key} in report: ${report}`);
  return Number(m[1]);
}

/** Ticks per second of an event loop, over `ms` of wall time. */
async function tickRate(dir: string, ms: number): Promise<number> {
  const t0 = performance.now();
  const c0 = readCounter(dir);
  await sleep(ms);
  return (readCounter(dir) - c0) / ((performance.now() - t0) / 1000);
}

describe('an event loop on epoll, eventfd, timerfd and signalfd', () => {
  test('evloop.c ticks at the same rate after restore and reacts to a signal sent after restore', SLOW, async () => {
    const { dir, pid } = await startChecked('evloop');
    const before = await tickRate(dir, 1500);
    assert.ok(before > 80 && before < 120, `a 10 ms timerfd ticks ${before.toFixed(1)} times a second before the dump`);
    const { restore, report } = await dumpAndRestore(pid, dir);
    assert.equal(fact(report, 'sigs'), 0);
    const afterRate = await whileRunning(restore, tickRate(dir, 1500));
    assert.ok(Math.abs(afterRate - before) / before < 0.2, `ticks ${afterRate.toFixed(1)}/s after restore, ${before.toFixed(1)}/s before`);
    process.kill(pid, 'SIGUSR1');
    // The check can be answered in the loop turn that began just before the signal: ask again a few times.
    let again = await whileRunning(restore, requestCheck(dir));
    for (let i = 0; i < 20 && /\bsigs=0\b/.test(again); i++) {
      await sleep(50);
      again = await whileRunning(restore, requestCheck(dir));
    }
    assertPass(again);
    assert.equal(fact(again, 'sigs'), 1, `the signal sent after restore did not come through the signalfd: ${again}`);
    assert.ok(fact(again, 'events') >= fact(report, 'events') + 5, `the eventfd stopped delivering: ${report} → ${again}`);
  });
});

describe('fd kinds ckpt does not handle yet are refused before anything changes', () => {
  for (const kind of ['pidfd', 'userfaultfd', 'io_uring', 'perf_event', 'bpf-map', 'fanotify']) {
    test(`a ${kind}: one "not supported yet" line naming fd, pid and kind; no image; the process runs on untraced`, SLOW, async (t) => {
      const { dir, pid } = await startChecked('unsupported-fd', [kind]);
      if (!readFileSync(join(dir, 'ready'), 'utf8').includes('made=1')) {
        t.skip(`this kernel would not make a ${kind} here`);
        return;
      }
      const image = makeWorkDir('img');
      const r = ckpt(['dump', '-t', String(pid), '-D', image]);
      assertCleanError(r, `not supported yet: fd 10 of pid ${pid} is ${kind}`);
      assert.equal(r.status, 5);
      assert.ok(!existsSync(join(image, 'ckpt.img')), 'a refused dump left an image');
      assert.ok(isRunning(pid), 'the refused process is gone');
      assert.equal(tracerPid(pid), 0, 'the refused process is still traced');
      const counter = readCounter(dir);
      await waitCounterAbove(dir, counter);
      assertPass(await requestCheck(dir));
    });
  }
});

describe('an fd refused while the snapshot of dump -R is forked', () => {
  test('a pidfd in a 32 MiB process: the same one line, and the snapshot child is gone, zombie and all', SLOW, async (t) => {
    const { dir, pid } = await startChecked('unsupported-fd', ['pidfd', '32']);
    if (!readFileSync(join(dir, 'ready'), 'utf8').includes('made=1')) {
      t.skip('this kernel would not make a pidfd here');
      return;
    }
    const image = makeWorkDir('img');
    // -vv prints each step as it ends: the fds are read while the fork runs, after the frozen copy.
    const r = ckpt(['dump', '-R', '--snapshot', 'fork', '-vv', '-t', String(pid), '-D', image]);
    const steps = r.stderr.split('\n').filter((l) => /^ckpt: dump: \S+ [\d.]+ ms$/.test(l)).map((l) => l.split(' ')[2]);
    assert.deepEqual(steps.slice(-2), ['collect', 'frozen-copy'], `not refused during the fork: ${r.stderr}`);
    assertCleanError({ ...r, stderr: r.stderr.split('\n').filter((l) => !/^ckpt: dump: \S+ [\d.]+ ms$/.test(l)).join('\n') }, `not supported yet: fd 10 of pid ${pid} is pidfd`);
    assert.ok(!existsSync(join(image, 'ckpt.img')), 'a refused dump left an image');
    assert.equal(tracerPid(pid), 0, 'the refused process is still traced');
    assert.equal(readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim(), '', 'the snapshot child is left');
    const counter = readCounter(dir);
    await waitCounterAbove(dir, counter);
    assertPass(await requestCheck(dir));
  });
});

describe('eventfd, timerfd, signalfd, epoll and inotify', () => {
  test('evfds.c: eventfds (counter, semaphore, zero), timerfds (realtime absolute, boottime periodic, disarmed, expired periodic) and signalfds (mask, queued signals) behave as before', SLOW, async () => {
    await roundTrip('evfds');
  });

  test('epollino.c: epoll targets with their events and data (edge-triggered, one-shot fired, EPOLLOUT), nested and empty epolls, and inotify watches behave as before', SLOW, async () => {
    await roundTrip('epollino');
  });
});

describe('inotify events pending at dump time', () => {
  test('are dropped with a warning naming how many bytes of them, even without -v', SLOW, async () => {
    const dir = makeWorkDir('inotify-pending');
    const watched = join(dir, 'watched');
    execFileSync('mkdir', [watched]);
    const script = [
      'import ctypes, os, sys, time',
      'libc = ctypes.CDLL(None, use_errno=True)',
      'fd = libc.inotify_init1(0)',
      `libc.inotify_add_watch(fd, ${JSON.stringify(watched)}.encode(), 0x100)`,
      `open(os.path.join(${JSON.stringify(watched)}, "new"), "w").close()`,
      `open(${JSON.stringify(join(dir, 'ready'))}, "w").close()`,
      'while True: time.sleep(1)',
    ].join('\n');
    const { pid } = startProgram('/usr/bin/python3', ['-c', script]);
    await waitFor('python3 to set up its watch', () => (existsSync(join(dir, 'ready')) ? true : undefined), 30_000);
    const r = ckpt(['dump', '-t', String(pid), '-D', join(dir, 'img')]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /^ckpt: warning: fd \d+ of pid \d+: \d+ bytes of inotify events pending \(at least one event\) are dropped$/m);
    await waitGone(pid);
  });
});

describe('memfd', () => {
  test('memfd.c: memfds with names, contents, seals, offsets and flags, one open twice (one content, two offsets), behave as before', SLOW, async () => {
    await roundTrip('memfd');
  });
});

describe('a FIFO or pty that cannot come back stops the restore before anything is created', () => {
  test('a FIFO gone since the dump is named; once it is back, the restore goes through', SLOW, async () => {
    const { dir, pid } = await startChecked('fifos');
    const image = makeWorkDir('img');
    await dumpOk(pid, image);
    await waitGone(pid);
    const fifo = join(dir, 'f1');
    rmSync(fifo);
    const r = ckpt(['restore', '-D', image]);
    assertCleanError(r, `the FIFO ${fifo} is gone since the dump`);
    assert.equal(r.status, 7);
    assert.ok(!existsSync(`/proc/${pid}`), 'a refused restore created the process');
    execFileSync('mkfifo', [fifo]);
    const restore = restoreInBackground(image);
    assertPass(await whileRunning(restore, requestCheck(dir, { timeoutMs: 60_000 })));
  });

  test('a pty index taken since the dump is named; once it is free, the restore goes through', SLOW, async () => {
    const { dir, pid } = await startChecked('pty');
    const ready = readFileSync(join(dir, 'ready'), 'utf8');
    const index = Number(/ptys=(\d+)/.exec(ready)![1]);
    const image = makeWorkDir('img');
    await dumpOk(pid, image);
    await waitGone(pid);
    // Take ptys until the index comes up (the kernel gives the lowest free one).
    const held: number[] = [];
    try {
      while (!existsSync(`/dev/pts/${index}`) && held.length <= index) held.push(openSync('/dev/ptmx', constants.O_RDWR | constants.O_NOCTTY));
      assert.ok(existsSync(`/dev/pts/${index}`), `could not take /dev/pts/${index}`);
      const r = ckpt(['restore', '-D', image]);
      assertCleanError(r, `pty ${index} (/dev/pts/${index}) of fd 10 is taken by another terminal since the dump`);
      assert.equal(r.status, 7);
      assert.ok(!existsSync(`/proc/${pid}`), 'a refused restore created the process');
    } finally {
      for (const fd of held) closeSync(fd);
    }
    const restore = restoreInBackground(image);
    assertPass(await whileRunning(restore, requestCheck(dir, { timeoutMs: 60_000 })));
  });
});
