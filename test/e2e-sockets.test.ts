/**
 * Sockets: unix (every type, named, abstract, queued data), UDP, TCP
 * listeners, netlink, and established TCP connections (--tcp-established);
 * then unmodified servers (node's http, redis-server) that keep answering.
 * Each C program checks itself after dump → kill → restore.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import {
  assertCleanError, assertPass, ckpt, cleanup, dumpAndRestore, killAll, reportedCounter, requestCheck, startChecked, waitCounterAbove, whileRunning,
  makeWorkDir, isRunning, tracerPid, readCounter, dumpOk, waitGone, ckptBackground, type BackgroundCkpt, startProgram, PYTHON, waitFor, sleep, trackExact, track, CLI,
} from './lib/index.js';

afterEach(() => killAll());
after(cleanup);

const SLOW = { timeout: 180_000 };
const REDIS = '/usr/bin/redis-server';

/** A TCP port nobody listens on now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => { const { port } = srv.address() as net.AddressInfo; srv.close(() => resolve(port)); });
  });
}

/** A TCP echo server on 127.0.0.1 (kernel-chosen port, written to argv[1]); argv[1].conns counts accepted connections. */
const ECHO_SERVER = `
import socket, sys, threading
s = socket.socket()
s.bind(('127.0.0.1', 0))
s.listen(8)
conns = 0
open(sys.argv[1] + '.tmp', 'w').write(str(s.getsockname()[1]))
import os; os.rename(sys.argv[1] + '.tmp', sys.argv[1])
def echo(c):
    while True:
        b = c.recv(65536)
        if not b:
            return
        c.sendall(b)
while True:
    c, _ = s.accept()
    conns += 1
    open(sys.argv[1] + '.conns', 'w').write(str(conns))
    threading.Thread(target=echo, args=(c,), daemon=True).start()
`;

describe('unix sockets', () => {
  test('unix.c: socketpairs of each type, a named listener with an accepted and a waiting connection, abstract names, queued data both ways', SLOW, async () => {
    const { dir, pid } = await startChecked('unix');
    const { restore, report } = await dumpAndRestore(pid, dir);
    await whileRunning(restore, waitCounterAbove(dir, reportedCounter(report)));
    assertPass(await whileRunning(restore, requestCheck(dir)));
  });
});

/** Unix servers outside the dump: a stream echo server at argv[1], a datagram sink at argv[2]; argv[1].conns counts stream connections. */
const UNIX_SERVERS = `
import os, socket, sys, threading
st = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); st.bind(sys.argv[1]); st.listen(8)
dg = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); dg.bind(sys.argv[2])
threading.Thread(target=lambda: [dg.recv(4096) for _ in iter(int, 1)], daemon=True).start()
conns = 0
def echo(c):
    while True:
        b = c.recv(4096)
        if not b:
            return
        c.sendall(b)
open(sys.argv[1] + '.ready', 'w').close()
while True:
    c, _ = st.accept()
    conns += 1
    open(sys.argv[1] + '.conns', 'w').write(str(conns))
    threading.Thread(target=echo, args=(c,), daemon=True).start()
`;

describe('unix sockets connected outside the dump', () => {
  test('refused with one line naming --ext-unix-sk; with it, unix-ext.c is reconnected to the same names and works', SLOW, async () => {
    const work = makeWorkDir('unixext');
    const [stream, dgram] = [join(work, 'echo.sock'), join(work, 'sink.sock')];
    startProgram(PYTHON, ['-c', UNIX_SERVERS, stream, dgram]);
    await waitFor('the unix servers', () => (existsSync(stream + '.ready') ? true : undefined), 10_000);
    const { dir, pid } = await startChecked('unix-ext', [stream, dgram]);
    assertCleanError(ckpt(['dump', '-t', String(pid), '-D', makeWorkDir('img')]), /connected to a peer outside the dumped processes \(.*echo\.sock\); dump with --ext-unix-sk/);
    assert.ok(isRunning(pid));
    assertPass(await requestCheck(dir));
    const image = makeWorkDir('img');
    await dumpOk(pid, image, '--ext-unix-sk');
    const restore = ckptBackground(['restore', '-D', image]);
    assertPass(await whileRunning(restore, requestCheck(dir, { timeoutMs: 60_000 })));
    // A new connection for the server: the documented behaviour.
    assert.equal(readFileSync(stream + '.conns', 'utf8'), '2');
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

  test('tcp.c with a connection to an echo server outside the dump (python3): it goes on too, the server never notices', SLOW, async () => {
    const work = makeWorkDir('echo');
    const portFile = join(work, 'port');
    startProgram(PYTHON, ['-c', ECHO_SERVER, portFile]);
    const port = await waitFor('the echo server', () => (existsSync(portFile) ? readFileSync(portFile, 'utf8').trim() || undefined : undefined), 10_000);
    const { dir, pid } = await startChecked('tcp', [port]);
    const { restore } = await dumpAndRestoreTcp(pid, dir);
    assertPass(await whileRunning(restore, requestCheck(dir)));
    // One connection, never reset: the server counts the connections it accepted.
    assert.equal(readFileSync(join(work, 'port.conns'), 'utf8').trim(), '1');
  });

  test('-R --tcp-established: the connections leave repair mode and their packets flow again; the process runs on and PASSes', SLOW, async () => {
    const { dir, pid } = await startChecked('tcp');
    await dumpOk(pid, makeWorkDir('img'), '-R', '--tcp-established');
    assert.ok(isRunning(pid));
    await waitCounterAbove(dir, readCounter(dir));
    assertPass(await requestCheck(dir));
    const ports = /ports=(\d+)>(\d+)/.exec(await requestCheck(dir))!;
    const held = spawnSync('nft', ['list', 'set', 'inet', 'ckpt', 'conn4'], { encoding: 'utf8' }).stdout;
    assert.doesNotMatch(held, new RegExp(`\\b(${ports[1]}|${ports[2]})\\b`), `packets still held: ${held}`);
  });

  test('a restore that fails after the connections were made keeps their packets held; the next restore carries them on', SLOW, async () => {
    const { dir, pid } = await startChecked('tcp');
    const image = makeWorkDir('img');
    await dumpOk(pid, image, '--tcp-established');
    const failed = spawnSync(process.execPath, [CLI, 'restore', '-D', image], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, CKPT_FAULT: 'restore:signals' } });
    assertCleanError({ status: failed.status, signal: failed.signal, stdout: failed.stdout, stderr: failed.stderr }, /injected fault at restore:signals/);
    await waitGone(pid);
    const restore = ckptBackground(['restore', '-D', image]);
    assertPass(await whileRunning(restore, requestCheck(dir, { timeoutMs: 60_000 })));
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

/** An unmodified node HTTP server: counter in memory, a timer ticking, a signal handler; port written to argv[1]. */
const HTTP_SERVER = `
const http = require('http'), fs = require('fs');
let count = 0, ticks = 0, usr2 = 0;
setInterval(() => { ticks++; }, 10);
process.on('SIGUSR2', () => { usr2++; });
const server = http.createServer((req, res) => {
  count++;
  res.setHeader('Connection', 'close');
  res.end(JSON.stringify({ count, ticks, usr2, pid: process.pid }));
});
server.listen(0, '127.0.0.1', () => {
  fs.writeFileSync(process.argv[1] + '.tmp', String(server.address().port));
  fs.renameSync(process.argv[1] + '.tmp', process.argv[1]);
});
`;

/** waitFor for an async probe. */
async function poll<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

interface HttpState { count: number; ticks: number; usr2: number; pid: number }
function httpGet(port: number): Promise<HttpState> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => resolve(JSON.parse(body) as HttpState));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}

/** The process holds no TCP socket but its listener (the server closes each connection after its answer). */
async function onlyListening(pid: number): Promise<void> {
  await waitFor(`pid ${pid} to close its connections`, () => {
    const socks = readdirSync(`/proc/${pid}/fd`).filter((fd) => { try { return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:'); } catch { return false; } });
    return socks.length === 1 ? true : undefined;
  }, 10_000);
}

describe('sockets across a process tree', () => {
  test('sockfork.c: stream and datagram socketpairs split across a fork, a TCP connection between parent and child, and one to an echo server outside the tree, all with data queued, go on', SLOW, async () => {
    const work = makeWorkDir('echo');
    const portFile = join(work, 'port');
    startProgram(PYTHON, ['-c', ECHO_SERVER, portFile]);
    const port = await waitFor('the echo server', () => (existsSync(portFile) ? readFileSync(portFile, 'utf8').trim() || undefined : undefined), 10_000);
    const { dir, pid } = await startChecked('sockfork', [port]);
    const child = Number(/child=(\d+)/.exec(readFileSync(join(dir, 'ready'), 'utf8'))![1]);
    track(child, 'sockfork');
    const { restore, report } = await dumpAndRestoreTcp(pid, dir);
    assert.match(report, new RegExp(`child=${child}`));
    assert.ok(isRunning(child), 'the child was not restored');
    assertPass(await whileRunning(restore, requestCheck(dir)));
    assert.equal(readFileSync(join(work, 'port.conns'), 'utf8').trim(), '1');
  });
});

describe('unmodified servers', () => {
  test('node http server (threads, epoll, eventfd, timers, a signal handler): same port after restore, the counter goes on', SLOW, async () => {
    const work = makeWorkDir('nodehttp');
    const portFile = join(work, 'port');
    const { pid } = startProgram(process.execPath, ['-e', HTTP_SERVER, portFile]);
    const port = Number(await waitFor('the http server', () => (existsSync(portFile) ? readFileSync(portFile, 'utf8').trim() || undefined : undefined), 20_000));
    for (let i = 1; i <= 3; i++) assert.equal((await httpGet(port)).count, i);
    process.kill(pid, 'SIGUSR2');
    await poll('SIGUSR2 handled', async () => ((await httpGet(port)).usr2 === 1 ? true : undefined), 5_000);
    const before = await httpGet(port);
    await onlyListening(pid);
    const image = makeWorkDir('img');
    await dumpOk(pid, image);
    const restore = ckptBackground(['restore', '-D', image]);
    const after = await whileRunning(restore, poll('the restored server', async () => { try { return await httpGet(port); } catch { return undefined; } }, 30_000));
    assert.equal(after.pid, pid);
    assert.equal(after.count, before.count + 1, 'the counter did not go on');
    assert.equal(after.usr2, 1);
    const later = await whileRunning(restore, (async () => { await sleep(100); return httpGet(port); })());
    assert.ok(later.ticks > after.ticks, 'its timer stopped');
    process.kill(pid, 'SIGUSR2');
    await whileRunning(restore, poll('SIGUSR2 handled after restore', async () => ((await httpGet(port)).usr2 === 2 ? true : undefined), 5_000));
  });

  test('redis-server (Debian package): keys survive, and a redis-cli connection kept open across dump and restore goes on without reconnecting', SLOW, async (t) => {
    if (!existsSync(REDIS)) { t.skip('no redis-server (.ci/run installs it)'); return; }
    const work = makeWorkDir('redis');
    const port = await freePort();
    const { pid } = startProgram(REDIS, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', work, '--daemonize', 'no']);
    const cli = (...args: string[]) => spawnSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8', timeout: 10_000 }).stdout.trim();
    await waitFor('redis to answer', () => (cli('PING') === 'PONG' ? true : undefined), 10_000);
    for (let i = 0; i < 100; i++) assert.equal(cli('SET', `key${i}`, `value${i}`), 'OK');

    // One redis-cli kept open: it reads commands from its stdin as they come.
    const kept = spawn('redis-cli', ['-p', String(port)], { stdio: ['pipe', 'pipe', 'pipe'] });
    trackExact(kept.pid!);
    const lines: string[] = [];
    let partial = '';
    kept.stdout!.setEncoding('utf8').on('data', (d: string) => { partial += d; const parts = partial.split('\n'); partial = parts.pop()!; lines.push(...parts); });
    const ask = async (cmd: string): Promise<string> => {
      const n = lines.length;
      kept.stdin!.write(cmd + '\n');
      return waitFor(`redis-cli's answer to ${cmd}`, () => (lines.length > n ? lines[n] : undefined), 20_000);
    };
    const id = await ask('CLIENT ID');
    assert.equal(await ask('SET live before'), 'OK');
    const conns = /total_connections_received:(\d+)/.exec(cli('INFO', 'stats'))![1];

    const image = makeWorkDir('img');
    const t0 = Date.now();
    await dumpOk(pid, image, '--tcp-established');
    const restore = ckptBackground(['restore', '-v', '-D', image]);
    let log = '';
    restore.child.stderr!.on('data', (d: string) => (log += d));
    // The kept connection is asked first, while the restore may still be under way.
    assert.equal(await whileRunning(restore, ask('GET live')), 'before');
    const wall = Date.now() - t0;
    assert.equal(await ask('CLIENT ID'), id, 'redis-cli reconnected');
    assert.equal(await ask('GET key42'), 'value42');
    assert.equal(await ask('SET live after'), 'OK');
    for (let i = 0; i < 100; i += 11) assert.equal(cli('GET', `key${i}`), `value${i}`);
    assert.equal(cli('GET', 'live'), 'after');
    // This cli is the one new connection since the dump.
    assert.equal(Number(/total_connections_received:(\d+)/.exec(cli('INFO', 'stats'))![1]), Number(conns) + 12);
    kept.stdin!.end();
    const frozen = await waitFor('the frozen time in the restore log', () => /frozen (\d+) ms/.exec(log)?.[1], 10_000);
    t.diagnostic(`redis client connection frozen ${frozen} ms (dump start to restored; restore log), answered ${wall} ms after the dump began`);
  });
});
