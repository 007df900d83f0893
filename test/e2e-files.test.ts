/**
 * File descriptors of the kinds ckpt makes anew: eventfd, signalfd, timerfd,
 * epoll (nested), memfd, a deleted file, and fds sharing one open file
 * description, and file locks. The programs check each after restore.
 */
import { after, afterEach, describe, test } from 'node:test';
import {
  assertPass, cleanup, dumpAndRestore, killAll, reportedCounter, requestCheck, startChecked,
  waitCounterAbove, whileRunning,
} from './lib/index.js';

afterEach(() => killAll());
after(cleanup);

const SLOW = { timeout: 180_000 };

describe('open files of every kind ckpt makes anew', () => {
  test('fdkinds.c: eventfd, signalfd, timerfds, nested epoll, memfd, a deleted file and dup-shared offsets all behave as before', SLOW, async () => {
    const { dir, pid } = await startChecked('fdkinds');
    const { restore, report } = await dumpAndRestore(pid, dir);
    await whileRunning(restore, waitCounterAbove(dir, reportedCounter(report)));
    assertPass(await whileRunning(restore, requestCheck(dir)));
  });

  test('locks.c: its flock, POSIX and OFD locks are held again: another process is still refused each', SLOW, async () => {
    const { dir, pid } = await startChecked('locks');
    const { restore, report } = await dumpAndRestore(pid, dir);
    await whileRunning(restore, waitCounterAbove(dir, reportedCounter(report)));
    assertPass(await whileRunning(restore, requestCheck(dir)));
  });

  test('fdkinds.c passes its own checks twice without a dump', SLOW, async () => {
    const { dir } = await startChecked('fdkinds');
    assertPass(await requestCheck(dir));
  });
});
