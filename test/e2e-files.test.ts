/**
 * File descriptors of the kinds ckpt makes anew: eventfd, signalfd, timerfd,
 * epoll (nested), memfd, a deleted file, and fds sharing one open file
 * description. The program checks each after restore.
 */
import { after, afterEach, describe, test } from 'node:test';
import {
  assertPass, cleanup, compile, dumpOk, killAll, makeWorkDir, reportedCounter, requestCheck,
  restoreInBackground, startProgram, waitCounterAbove, waitGone, waitReady, whileRunning,
} from './lib/index.js';

afterEach(() => killAll());
after(cleanup);

const SLOW = { timeout: 180_000 };

describe('open files of every kind ckpt makes anew', () => {
  test('fdkinds.c: eventfd, signalfd, timerfds, nested epoll, memfd, a deleted file and dup-shared offsets all behave as before', SLOW, async () => {
    const dir = makeWorkDir('fdkinds');
    const { pid } = startProgram(compile('fdkinds'), [dir]);
    await waitReady(dir, { pid });
    assertPass(await requestCheck(dir));
    const image = makeWorkDir('img');
    await dumpOk(pid, image);
    await waitGone(pid);

    const restore = restoreInBackground(image);
    const report = await whileRunning(restore, requestCheck(dir, { timeoutMs: 60_000 }));
    assertPass(report);
    await whileRunning(restore, waitCounterAbove(dir, reportedCounter(report)));
    assertPass(await whileRunning(restore, requestCheck(dir)));
  });

  test('fdkinds.c passes its own checks twice without a dump', SLOW, async () => {
    const dir = makeWorkDir('fdkinds-alone');
    const { pid } = startProgram(compile('fdkinds'), [dir]);
    await waitReady(dir, { pid });
    assertPass(await requestCheck(dir));
    assertPass(await requestCheck(dir));
  });
});
