/**
 * File descriptors of the kinds ckpt makes anew: eventfd, signalfd, timerfd,
 * epoll (nested), memfd, a deleted file, and fds sharing one open file
 * description, file locks, and pipes with one end closed. The programs check
 * each after restore.
 */
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import {
  assertCleanError, assertPass, ckpt, cleanup, dumpAndRestore, dumpOk, makeWorkDir, restoreInBackground, waitGone, killAll, reportedCounter, requestCheck, startChecked,
  track, waitCounterAbove, waitReady, whileRunning,
} from './lib/index.js';

afterEach(() => killAll());
after(cleanup);

const SLOW = { timeout: 180_000 };

/** Start program NAME, dump and restore it: it carries on and passes its own check. */
async function passesAfterRestore(name: string): Promise<void> {
  const { dir, pid } = await startChecked(name);
  const { restore, report } = await dumpAndRestore(pid, dir);
  await whileRunning(restore, waitCounterAbove(dir, reportedCounter(report)));
  assertPass(await whileRunning(restore, requestCheck(dir)));
}

describe('open files of every kind ckpt makes anew', () => {
  test('fdkinds.c: eventfd, signalfd, timerfds, nested epoll, memfd, a deleted file and dup-shared offsets all behave as before', SLOW, async () => {
    await passesAfterRestore('fdkinds');
  });

  test('locks.c: its flock, POSIX and OFD locks are held again: another process is still refused each', SLOW, async () => {
    await passesAfterRestore('locks');
  });

  test('a file that changed size since the dump stops the restore before anything is created, naming it', SLOW, async () => {
    const { dir, pid } = await startChecked('fdkinds');
    const image = makeWorkDir('img');
    await dumpOk(pid, image);
    await waitGone(pid);
    const shared = join(dir, 'shared');
    appendFileSync(shared, 'x');
    const r = ckpt(['restore', '-D', image]);
    assertCleanError(r, new RegExp(`${shared} changed since the dump \\(10 → 11 bytes\\)`));
    assert.equal(r.status, 7);
    assert.ok(!existsSync(`/proc/${pid}`), 'a refused restore created the process');
    truncateSync(shared, 10);
    const restore = restoreInBackground(image);
    assertPass(await whileRunning(restore, requestCheck(dir, { timeoutMs: 60_000 })));
  });

  test('halfpipe.c: pipes whose other end is closed (read end with bytes in it; write end) come back as they were', SLOW, async () => {
    await passesAfterRestore('halfpipe');
  });

  test('halfpipe.c: a pipe whose other end a process outside the tree holds is refused, naming the fd; the process runs on', SLOW, async () => {
    const { dir, pid } = await startChecked('halfpipe', ['outside']);
    const writer = Number((await waitReady(dir)).writer);
    track(writer, 'halfpipe');
    const r = ckpt(['dump', '-t', String(pid), '-D', makeWorkDir('img')]);
    assertCleanError(r, new RegExp(`^ckpt: not supported yet: fd \\d+ of pid ${pid} is a pipe whose other end is outside the dumped tree$`));
    assertPass(await requestCheck(dir));
  });

  test('fdkinds.c passes its own checks twice without a dump', SLOW, async () => {
    const { dir } = await startChecked('fdkinds');
    assertPass(await requestCheck(dir));
  });
});
