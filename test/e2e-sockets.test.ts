/**
 * Sockets: unix (every type, named, abstract, queued data), UDP, TCP
 * listeners, netlink, and established TCP connections (--tcp-established);
 * then unmodified servers (node's http, redis-server) that keep answering.
 * Each C program checks itself after dump → kill → restore.
 */
import assert from 'node:assert/strict';
import { after, afterEach, describe, test } from 'node:test';
import {
  assertCleanError, assertPass, ckpt, cleanup, dumpAndRestore, killAll, reportedCounter, requestCheck, startChecked, waitCounterAbove, whileRunning,
  makeWorkDir, isRunning, tracerPid, readCounter, dumpOk, waitGone, ckptBackground, type BackgroundCkpt,
} from './lib/index.js';

afterEach(() => killAll());
after(cleanup);

const SLOW = { timeout: 180_000 };

describe('unix sockets', () => {
  test('unix.c: socketpairs of each type, a named listener with an accepted and a waiting connection, abstract names, queued data both ways', SLOW, async () => {
    const { dir, pid } = await startChecked('unix');
    const { restore, report } = await dumpAndRestore(pid, dir);
    await whileRunning(restore, waitCounterAbove(dir, reportedCounter(report)));
    assertPass(await whileRunning(restore, requestCheck(dir)));
  });
});

describe('inet and netlink sockets', () => {
  test('inet.c: UDP (IPv4 connected, IPv6 bound), TCP listeners (IPv4 with options, IPv6 only) and NETLINK_ROUTE come back on the same ports and work', SLOW, async () => {
    const { dir, pid } = await startChecked('inet');
    const before = /ports=\S+/.exec(await requestCheck(dir))![0];
    const { restore, report } = await dumpAndRestore(pid, dir);
    assert.match(report, new RegExp(before));
    assertPass(await whileRunning(restore, requestCheck(dir)));
  });
});

/** dump --tcp-established (kills), restore in the background, first check. */
async function dumpAndRestoreTcp(pid: number, dir: string, ...flags: string[]): Promise<{ restore: BackgroundCkpt; report: string; dumpMs: number; log: string }> {
  const image = makeWorkDir('img');
  const r = await dumpOk(pid, image, '--tcp-established', ...flags);
  await waitGone(pid);
  const restore = ckptBackground(['restore', '-v', '-D', image]);
  const report = await whileRunning(restore, requestCheck(dir, { timeoutMs: 60_000 }));
  assertPass(report);
  return { restore, report, dumpMs: 0, log: r.stderr };
}

describe('established TCP connections (--tcp-established)', () => {
  test('tcp.c: IPv4 and IPv6 connections with both ends in the process, data in flight both ways, go on', SLOW, async () => {
    const { dir, pid } = await startChecked('tcp');
    const before = /ports=\S+/.exec(await requestCheck(dir))![0];
    const { restore, report } = await dumpAndRestoreTcp(pid, dir);
    assert.match(report, new RegExp(before));
    assertPass(await whileRunning(restore, requestCheck(dir)));
  });

  test('without --tcp-established an established connection is refused with one line; the process runs on', SLOW, async () => {
    const { dir, pid } = await startChecked('tcp');
    const image = makeWorkDir('img');
    assertCleanError(ckpt(['dump', '-t', String(pid), '-D', image]), /established TCP connection .* --tcp-established/);
    assert.ok(isRunning(pid));
    assert.equal(tracerPid(pid), 0);
    await waitCounterAbove(dir, readCounter(dir));
    assertPass(await requestCheck(dir));
  });
});
