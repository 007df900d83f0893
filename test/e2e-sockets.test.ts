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
  makeWorkDir, isRunning, tracerPid, readCounter,
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
