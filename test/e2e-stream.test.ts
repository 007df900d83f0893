/**
 * Streaming and single-file images, end to end with real processes:
 * `ckpt dump --stream | ckpt restore --stream` moves a process through a pipe,
 * `-o FILE` / `-i FILE`, `ckpt pack` / `ckpt unpack`, and bad streams.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import {
  CLI,
  assertCleanError,
  assertPass,
  assertSuccess,
  ckpt,
  ckptBackground,
  cleanup,
  dumpOk,
  isRunning,
  killAll,
  makeWorkDir,
  procInfo,
  readCounter,
  reportedCounter,
  requestCheck,
  requestExit,
  restoreDetachedOk,
  SYSCALL,
  track,
  waitBlockedIn,
  waitCounterAbove,
  waitGone,
  whileRunning,
  startChecked,
} from './lib/index.js';

afterEach(() => killAll());
after(cleanup);

const SLOW = { timeout: 180_000 };
const AFTER_RESTORE = { timeoutMs: 60_000 };

/** Where ckpt puts the temporary image of a stream (pack.ts makeStreamTempDir). */
const STREAM_BASES = ['/dev/shm', tmpdir()];

function streamTempDirs(): Set<string> {
  const out = new Set<string>();
  for (const base of STREAM_BASES) {
    try {
      for (const n of readdirSync(base)) if (n.startsWith('ckpt-stream-')) out.add(join(base, n));
    } catch {
      // no such base
    }
  }
  return out;
}

function newStreamTempDirs(before: Set<string>): string[] {
  return [...streamTempDirs()].filter((d) => !before.has(d));
}

/** blocked.c in nanosleep mode: small and quick to dump. */
async function startBlocked() {
  const p = await startChecked('blocked', ['nanosleep']);
  await waitBlockedIn(p.pid, SYSCALL.clock_nanosleep);
  return p;
}

interface ShResult { status: number | null; stdout: string; stderr: string }

/** `sh -c SCRIPT sh ARGS...`, without blocking the event loop (it reaps our dumped children). */
function sh(script: string, args: string[]): Promise<ShResult> {
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', script, 'sh', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

function sameFiles(a: string, b: string): void {
  const names = readdirSync(a).sort();
  assert.deepEqual(readdirSync(b).sort(), names);
  for (const n of names) {
    assert.ok(readFileSync(join(a, n)).equals(readFileSync(join(b, n))), `${n} differs between ${a} and ${b}`);
    assert.equal(statSync(join(b, n)).mode & 0o777, 0o600, `${b}/${n} mode`);
  }
  assert.equal(statSync(b).mode & 0o777, 0o700, `${b} mode`);
}

describe('dump --stream | restore --stream', () => {
  test('mem.c (64 MiB) moves through a pipe: restored under its pid, PASSes, counts on; no temporary image is left', SLOW, async () => {
    const { dir, pid } = await startChecked('mem');
    const before = streamTempDirs();
    const work = makeWorkDir('pipe');
    const pidfile = join(work, 'pid');
    const dumpStatus = join(work, 'dump-status');
    const r = await sh(
      '{ "$1" "$2" dump -t "$3" --stream; echo $? > "$5"; } | "$1" "$2" restore --stream -d --pidfile "$4"',
      [process.execPath, CLI, String(pid), pidfile, dumpStatus],
    );
    assert.equal(readFileSync(dumpStatus, 'utf8').trim(), '0', `dump --stream failed: ${r.stderr}`);
    assert.equal(r.status, 0, `restore --stream failed: ${r.stderr}`);
    assert.equal(r.stderr, '');
    assert.equal(Number(readFileSync(pidfile, 'utf8')), pid);
    track(pid);
    const saved = readCounter(dir);
    const report = await requestCheck(dir, AFTER_RESTORE);
    assertPass(report);
    assert.ok(reportedCounter(report) >= saved, `counter went back: ${saved}, then ${report}`);
    await waitCounterAbove(dir, reportedCounter(report));
    assert.deepEqual(newStreamTempDirs(before), [], 'a temporary image was left behind');
  });
});

describe('dump -o FILE, restore -i FILE', () => {
  test('blocked.c through a file; restore without -d removes its temporary image once the process runs, then exits with its status', SLOW, async () => {
    const { dir, pid } = await startBlocked();
    const work = makeWorkDir('file');
    const file = join(work, 'img.ckpt');

    // An existing FILE is refused before the process is touched.
    writeFileSync(file, 'not mine');
    assertCleanError(ckpt(['dump', '-t', String(pid), '-o', file]), `${file} already exists`);
    assert.ok(isRunning(pid), 'the process was dumped despite the refusal');
    assertCleanError(ckpt(['dump', '-t', String(pid), '-D', join(work, 'd'), '--stream']), 'not both');

    const before = streamTempDirs();
    assertSuccess(ckpt(['dump', '-t', String(pid), '-o', file, '--force']), 'ckpt dump -o FILE');
    await waitGone(pid);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(existsSync(`${file}.partial`), false);
    assert.equal(readFileSync(file).toString('latin1', 0, 8), 'CKPTSTRM');
    assert.deepEqual(newStreamTempDirs(before), []);

    const restore = ckptBackground(['restore', '-i', file]);
    await whileRunning(restore, waitBlockedIn(pid, SYSCALL.clock_nanosleep, 60_000));
    assertPass(await whileRunning(restore, requestCheck(dir, AFTER_RESTORE)));
    assert.equal(procInfo(pid)?.ppid, restore.pid, 'without -d, ckpt restore is the parent');
    assert.deepEqual(newStreamTempDirs(before), [], 'the temporary image outlived the restore');
    requestExit(dir, 7);
    const exit = await restore.exited;
    assert.equal(exit.status, 7, `ckpt restore -i: ${JSON.stringify(exit)}`);
    await waitGone(pid);
  });
});

describe('pack and unpack', () => {
  test('a real image: pack → unpack is byte-identical (file and pipe forms), restores and PASSes; an existing image needs --force', SLOW, async () => {
    const { dir, pid } = await startBlocked();
    const work = makeWorkDir('pack');
    const img = join(work, 'img');
    await dumpOk(pid, img, '-R');
    const file = join(work, 'img.ckpt');
    assertSuccess(ckpt(['pack', '-D', img, '-o', file]), 'ckpt pack');
    const img2 = join(work, 'img2');
    assertSuccess(ckpt(['unpack', '-i', file, '-D', img2]), 'ckpt unpack');
    sameFiles(img, img2);

    // Through stdout and stdin: the same bytes.
    const viaPipe = await sh('"$1" "$2" pack -D "$3" | "$1" "$2" unpack -D "$4" && "$1" "$2" pack -D "$4" > "$5"', [
      process.execPath, CLI, img, join(work, 'img3'), join(work, 'again.ckpt'),
    ]);
    assert.equal(viaPipe.status, 0, viaPipe.stderr);
    sameFiles(img, join(work, 'img3'));
    assert.ok(readFileSync(join(work, 'again.ckpt')).equals(readFileSync(file)));

    const exists = ckpt(['unpack', '-i', file, '-D', img2]);
    assertCleanError(exists, 'already holds an image');
    assert.equal(exists.status, 6);
    assertCleanError(ckpt(['pack', '-D', img, '-o', file]), 'already exists');
    assertSuccess(ckpt(['unpack', '-i', file, '-D', img2, '--force']), 'ckpt unpack --force');
    sameFiles(img, img2);

    process.kill(pid, 'SIGKILL');
    await waitGone(pid);
    assert.equal(restoreDetachedOk(img2, join(work, 'pid')), pid);
    assertPass(await requestCheck(dir, AFTER_RESTORE));
  });
});

describe('bad streams', () => {
  test('truncated or corrupted: one clear line, exit 6, no image, no process, no temporary image', SLOW, async () => {
    const { pid } = await startBlocked();
    const work = makeWorkDir('bad');
    const file = join(work, 'img.ckpt');
    assertSuccess(ckpt(['dump', '-t', String(pid), '-o', file]), 'ckpt dump -o');
    await waitGone(pid);
    const data = readFileSync(file);
    const before = streamTempDirs();

    const half = join(work, 'half.ckpt');
    writeFileSync(half, data.subarray(0, Math.floor(data.length / 2)));
    const corrupt = join(work, 'corrupt.ckpt');
    const c = Buffer.from(data);
    c[Math.floor(c.length / 3)] ^= 0x40;
    writeFileSync(corrupt, c);

    const truncated = /bad image stream at offset \d+: truncated: the stream ends inside /;
    for (const [bad, why] of [[half, truncated], [corrupt, /bad image stream at offset \d+: CRC mismatch/]] as const) {
      const r = ckpt(['restore', '-d', '-i', bad]);
      assertCleanError(r, why);
      assert.equal(r.status, 6);
      assert.equal(isRunning(pid), false, 'a bad stream created a process');
      const out = join(work, 'out');
      const u = ckpt(['unpack', '-i', bad, '-D', out]);
      assertCleanError(u, why);
      assert.equal(u.status, 6);
      assert.equal(existsSync(out) || existsSync(`${out}.partial`), false, 'unpack of a bad stream left something');
    }

    // Cut short in a pipe.
    const piped = await sh('head -c "$4" "$3" | "$1" "$2" restore --stream -d', [process.execPath, CLI, file, String(data.length - 5)]);
    assert.equal(piped.status, 6, piped.stderr);
    assert.match(piped.stderr, /^ckpt: stdin: bad image stream at offset \d+: truncated: the stream ends inside the end entry\n$/);
    const empty = await sh('"$1" "$2" restore --stream < /dev/null', [process.execPath, CLI]);
    assert.equal(empty.status, 6);
    assert.equal(empty.stderr, 'ckpt: stdin: bad image stream at offset 0: the stream is empty\n');
    assert.equal(isRunning(pid), false);
    assert.deepEqual(newStreamTempDirs(before), [], 'a temporary image was left behind');
  });

  test('binary is never written to (or read from) a terminal; the process is not dumped', SLOW, async (t) => {
    if (spawnSync('script', ['--version']).status !== 0) {
      t.skip('no script(1) to give ckpt a terminal');
      return;
    }
    const { dir, pid } = await startBlocked();
    const work = makeWorkDir('tty');
    const img = join(work, 'img');
    await dumpOk(pid, img, '-R');
    const inTty = (cmd: string) =>
      spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', timeout: 60_000, stdio: ['pipe', 'pipe', 'pipe'] });
    const node = `'${process.execPath}' '${CLI}'`;
    const d = inTty(`${node} dump -t ${pid} --stream`);
    assert.notEqual(d.status, 0);
    assert.match(d.stdout, /ckpt: dump: refusing to write an image to a terminal/);
    assert.ok(isRunning(pid), 'the process was dumped to a terminal');
    const p = inTty(`${node} pack -D '${img}'`);
    assert.notEqual(p.status, 0);
    assert.match(p.stdout, /ckpt: pack: refusing to write an image to a terminal/);
    const u = inTty(`${node} unpack -D '${join(work, 'x')}'`);
    assert.notEqual(u.status, 0);
    assert.match(u.stdout, /ckpt: unpack: refusing to read an image from a terminal/);
    assertPass(await requestCheck(dir));
  });
});
