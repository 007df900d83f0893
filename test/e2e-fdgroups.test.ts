/**
 * Open files by group, one self-checking program each (dump → kill → restore →
 * the program checks every fd): directories, devices and O_PATH; pipes and
 * FIFOs; ptys with their controlling terminal and /dev/tty; an event loop on
 * epoll + eventfd + timerfd + signalfd; and the fd kinds ckpt refuses.
 */
import assert from 'node:assert/strict';
import { after, afterEach, describe, test } from 'node:test';
import {
  assertPass, cleanup, dumpAndRestore, killAll, reportedCounter, requestCheck, startChecked, waitCounterAbove, whileRunning,
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
  test('devices.c: a directory, O_PATH fds (file, directory, symlink, FIFO), an O_APPEND|O_NOATIME file and /dev/null, zero, full, random, urandom keep their numbers, flags and close-on-exec', SLOW, async () => {
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
