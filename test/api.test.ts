/**
 * The library API (src/index.ts) on real processes: dump() and restore() run
 * in worker threads and never block the caller's event loop; several run at
 * once; errors keep their code; readImage() is `ckpt show --json`.
 *
 * The programs are started as orphans (not children of this process): the
 * library reaps a dumped process from its worker, and a child_process handle
 * of ours on the same pid would race it (docs/api.md, "Children").
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import { CkptError, dump, readImage, restore, waitRestored, type Progress } from '../src/index.js';
import {
  assertPass,
  assertSuccess,
  ckpt,
  cleanup,
  compile,
  killAll,
  makeWorkDir,
  procInfo,
  requestCheck,
  startMemOrphan,
  startOrphan,
  track,
  tracerPid,
  unusedPid,
  waitGone,
  waitReady,
} from './lib/index.js';
import { errorFromWire } from '../src/api/engine.js';
import { toWire } from '../src/api/wire.js';
import { cpuMasks } from './lib/safety.js';

afterEach(() => killAll());
after(cleanup);

const SLOW = { timeout: 60_000 };
const AFTER_RESTORE = { timeoutMs: 30_000 };
/** The size of the big program (the issue asks for 256 MiB). */
const BIG_MIB = Number(process.env.CKPT_API_MIB ?? 256);
const MAX_STALL_MS = 50;

/** api-mem.c holding MIB MiB, as an orphan (this process dumps it through the library). */
const startMem = (mib: number) => startMemOrphan(mib);

/** The distinct CPU masks of this process's threads (workers come and go; none may keep a mask of its own). */
function threadCpus(): string[] {
  return [...new Set(cpuMasks(process.pid).split('\n').map((l) => l.replace(/^\d+: /, '')))].sort();
}

/** Time the main thread spent runnable but waiting for a CPU (ns): not the event loop's fault. */
function runQueueWaitMs(): number {
  const fields = readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ');
  return Number(fields[1]) / 1e6;
}

/**
 * Ticks every 10 ms and records the longest gap between ticks: `raw`, and
 * `stall`, the gap minus the time the main thread waited for a CPU meanwhile
 * (this machine has 2 cores, shared with the engine, the program and often
 * other test runs). A blocked event loop shows in both.
 */
function loopMeter() {
  let last = performance.now();
  let lastWait = runQueueWaitMs();
  let raw = 0;
  let stall = 0;
  let ticks = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    const wait = runQueueWaitMs();
    raw = Math.max(raw, now - last);
    stall = Math.max(stall, now - last - (wait - lastWait));
    last = now;
    lastWait = wait;
    ticks++;
  }, 10);
  return {
    stop() {
      clearInterval(timer);
      const now = performance.now();
      raw = Math.max(raw, now - last);
      stall = Math.max(stall, now - last - (runQueueWaitMs() - lastWait));
      return { raw: Math.round(raw), stall: Math.round(stall), ticks };
    },
  };
}

describe('dump() and restore() run in workers: the caller\'s event loop keeps ticking', () => {
  test(`api-mem.c with ${BIG_MIB} MiB: a 10 ms interval never stalls ${MAX_STALL_MS} ms during the dump or the restore`, SLOW, async () => {
    const { pid, dir } = await startMem(BIG_MIB);
    const image = join(makeWorkDir('api-img'), 'img');

    const phases: Progress[] = [];
    const cpus = threadCpus();
    let meter = loopMeter();
    const r = await dump({ pid, dir: image, onProgress: (p) => phases.push(p) });
    const duringDump = meter.stop();
    // The engine worker shared a CPU with the process for its remote calls (src/ptrace/cpu-pin.ts), and has its mask back.
    assert.deepEqual(threadCpus(), cpus, 'a thread of this process kept another CPU mask after the dump');
    assert.deepEqual(r.pids, [pid]);
    assert.ok(r.bytes >= BIG_MIB << 20, `only ${r.bytes} bytes dumped`);
    assert.equal(phases[0]?.phase, 'start');
    assert.equal(phases.at(-1)?.phase, 'end');
    assert.ok(phases.some((p) => p.phase === 'log' && typeof p.message === 'string'), JSON.stringify(phases));
    await waitGone(pid);

    meter = loopMeter();
    const p = await restore({ dir: image });
    const duringRestore = meter.stop();
    assert.equal(p.pid, pid);
    assert.deepEqual(p.pids, [pid]);
    assert.deepEqual(Object.keys(JSON.parse(JSON.stringify(p))).sort(), ['ms', 'pid', 'pids', 'timings']);
    const story = `dump ${Math.round(r.ms)} ms: ${JSON.stringify(duringDump)}; restore ${Math.round(p.ms)} ms: ${JSON.stringify(duringRestore)}`;
    console.log(`# loop gaps (ms): ${story}`);
    assert.ok(duringDump.stall < MAX_STALL_MS, `the event loop stalled during the dump: ${story}`);
    assert.ok(duringRestore.stall < MAX_STALL_MS, `the event loop stalled during the restore: ${story}`);

    assertPass(await requestCheck(dir, AFTER_RESTORE));
    assert.equal(procInfo(pid)?.ppid, process.pid, 'the restored process is a child of the library\'s process');
    process.kill(pid, 'SIGKILL');
    assert.deepEqual(await p.exited, { code: null, signal: 'SIGKILL', status: 137 });
    assert.equal(await waitRestored(pid), 137);
    await waitGone(pid);
  });

  test('restore without detach: exited resolves with the exit code the process chose', SLOW, async () => {
    const { pid, dir } = await startMem(1);
    const image = join(makeWorkDir('api-img'), 'img');
    await dump({ pid, dir: image });
    await waitGone(pid);
    const p = await restore({ dir: image });
    assertPass(await requestCheck(dir, AFTER_RESTORE));
    const waited = waitRestored(pid);
    spawnSync('sh', ['-c', 'echo 7 > "$0/.exit.tmp" && mv "$0/.exit.tmp" "$0/exit"', dir]);
    assert.deepEqual(await p.exited, { code: 7, signal: null, status: 7 });
    assert.equal(await waited, 7);
    await waitGone(pid);
  });
});

describe('several operations at once', () => {
  test('two dumps of two processes at once both succeed, and both images restore at once', SLOW, async () => {
    const a = await startMem(32);
    const b = await startMem(48);
    const images = [join(makeWorkDir('api-img-a'), 'img'), join(makeWorkDir('api-img-b'), 'img')];
    const dumped = await Promise.all([dump({ pid: a.pid, dir: images[0] }), dump({ pid: b.pid, dir: images[1] })]);
    assert.deepEqual(dumped.map((r) => r.pids), [[a.pid], [b.pid]]);
    assert.ok(dumped[0].bytes >= 32 << 20 && dumped[1].bytes >= 48 << 20, JSON.stringify(dumped));
    await Promise.all([waitGone(a.pid), waitGone(b.pid)]);

    const restored = await Promise.all(images.map((dir) => restore({ dir, detach: true })));
    assert.deepEqual(restored.map((r) => r.pid), [a.pid, b.pid]);
    const reports = await Promise.all([requestCheck(a.dir, AFTER_RESTORE), requestCheck(b.dir, AFTER_RESTORE)]);
    assert.match(reports[0], /^PASS .*mib=32/);
    assert.match(reports[1], /^PASS .*mib=48/);

    // Detached or not, the library reaps what it restored: both pids are freed.
    process.kill(a.pid, 'SIGKILL');
    process.kill(b.pid, 'SIGKILL');
    const exits = await Promise.all(restored.map((r) => r.exited));
    assert.deepEqual(exits.map((e) => e.signal), ['SIGKILL', 'SIGKILL']);
    await Promise.all([waitGone(a.pid), waitGone(b.pid)]);
  });
});

describe('the library writes nothing on the caller\'s stderr', () => {
  test('a dump and a restore of a process with a pipe (blocked.c read), from another node process: its stderr stays empty', SLOW, async () => {
    // A worker that tracked its fds warned, on the caller's stderr, at each fd ckpt made with a
    // syscall and closed with fs ("File descriptor N closed but not opened in unmanaged mode":
    // the restore's pipe ends). Such warnings go to stderr from the worker, not to this process's
    // 'warning' event: a caller of its own shows them.
    const dir = makeWorkDir('api-pipe');
    const { pid } = startOrphan(compile('blocked'), [dir, 'read']);
    await waitReady(dir, { pid });
    const image = join(makeWorkDir('api-img'), 'img');
    const script = [
      `const api = await import(${JSON.stringify(new URL('../src/index.js', import.meta.url).href)});`,
      `await api.dump({ pid: ${pid}, dir: ${JSON.stringify(image)} });`,
      `while (await import('node:fs').then((fs) => fs.existsSync('/proc/${pid}'))) await new Promise((r) => setTimeout(r, 10));`,
      `const r = await api.restore({ dir: ${JSON.stringify(image)}, detach: true });`,
      'console.log(r.pid);',
      // What a worker writes on stderr reaches this process's on a later turn.
      'await new Promise((r) => setTimeout(r, 200));',
      'process.exit(0);',
    ].join('\n');
    // A file, not -e: the workers would inherit --input-type.
    const file = join(makeWorkDir('api-caller'), 'caller.mjs');
    writeFileSync(file, script);
    const r = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, `the caller failed: ${r.stderr}`);
    assert.equal(Number(r.stdout.trim()), pid);
    track(pid);
    assertPass(await requestCheck(dir, { ...AFTER_RESTORE, poke: () => process.kill(pid, 'SIGUSR1') }));
    assert.equal(r.stderr, '', 'the library wrote on its caller\'s stderr');
  });
});

describe('engine workers are reused', () => {
  test('restored processes that live on hold no worker: later calls reuse one, and every exit is still reported', SLOW, async () => {
    // Each restore leaves its worker owing the process a reap. Were a worker kept for each live
    // restored process, three of them plus the next dump would need four workers, more than the
    // library keeps idle (two): at least two would be started here.
    const programs = [await startMem(1), await startMem(1), await startMem(1)];
    let started = 0;
    const count = () => { started++; };
    process.on('worker', count);
    const restored = [];
    try {
      for (const { pid, dir } of programs) {
        const image = join(makeWorkDir('api-img'), 'img');
        await dump({ pid, dir: image });
        await waitGone(pid);
        restored.push(await restore({ dir: image, detach: true }));
        assertPass(await requestCheck(dir, AFTER_RESTORE));
      }
      assert.ok(started <= 1, `${started} engine workers were started for three sequential dump/restore pairs`);
    } finally {
      process.off('worker', count);
    }
    assert.deepEqual(restored.map((r) => r.pid), programs.map((p) => p.pid));
    for (const { pid } of programs) process.kill(pid, 'SIGKILL');
    const exits = await Promise.all(restored.map((r) => r.exited));
    assert.deepEqual(exits.map((e) => e.signal), ['SIGKILL', 'SIGKILL', 'SIGKILL']);
    await Promise.all(programs.map(({ pid }) => waitGone(pid)));
  });
});

describe('errors are CkptError with the engine\'s code and the caller\'s stack', () => {
  async function rejection(work: Promise<unknown>): Promise<CkptError> {
    const e = await work.then(
      () => assert.fail('expected a rejection'),
      (e: unknown) => e,
    );
    assert.ok(e instanceof CkptError, `not a CkptError: ${String(e)}`);
    assert.match(e.stack ?? '', /api\.test\.js/, `the stack does not name the caller:\n${e.stack}`);
    return e;
  }

  test('dump of a pid that does not exist: ESRCH_PID, with the pid in data', async () => {
    const pid = unusedPid();
    const e = await rejection(dump({ pid, dir: join(makeWorkDir('api-img'), 'img') }));
    assert.equal(e.code, 'ESRCH_PID', e.message);
    assert.equal(e.data.pid, pid);
    assert.match(e.message, new RegExp(String(pid)));
  });

  test('dump of a child this process spawned: BAD_PID, before it is touched (libuv would take its ptrace stops)', async () => {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      await assert.rejects(dump({ pid: child.pid!, dir: join(makeWorkDir('api-child'), 'img') }), (e: unknown) => {
        assert.ok(e instanceof CkptError);
        assert.equal(e.code, 'BAD_PID');
        assert.match(e.message, /is a child of this process/);
        return true;
      });
      assert.equal(tracerPid(child.pid!), 0);
    } finally {
      child.kill('SIGKILL');
    }
  });

  test('restore of a missing directory: NO_IMAGE', async () => {
    const dir = join(makeWorkDir('api-missing'), 'nothing-here');
    const e = await rejection(restore({ dir, detach: true }));
    assert.equal(e.code, 'NO_IMAGE', e.message);
    assert.equal(e.data.path, dir);
  });

  test('readImage of a missing directory: NO_IMAGE; waitRestored of a pid never restored: ESRCH_PID', async () => {
    assert.equal((await rejection(readImage(join(makeWorkDir('api-missing'), 'x')))).code, 'NO_IMAGE');
    assert.equal((await rejection(waitRestored(unusedPid()))).code, 'ESRCH_PID');
  });

  test('options that cannot reach the worker: USAGE', async () => {
    const e = await rejection(dump({ pid: (() => 1) as unknown as number, dir: makeWorkDir('api-img') }));
    assert.equal(e.code, 'USAGE', e.message);
  });

  test('anything else the engine throws crosses as INTERNAL; a CkptError keeps code, message and data', () => {
    const internal = errorFromWire(toWire(new TypeError('x is not a function\nsecond line')), 'at caller');
    assert.ok(internal instanceof CkptError);
    assert.equal(internal.code, 'INTERNAL');
    assert.equal(internal.message, 'internal error: x is not a function');
    assert.match(String((internal as Error & { cause?: Error }).cause?.stack), /TypeError/);
    const original = new CkptError('PID_IN_USE', 'pid 9 is in use', { pid: 9 });
    const back = errorFromWire(toWire(original), 'at caller');
    assert.deepEqual([back.code, back.message, back.data], ['PID_IN_USE', 'pid 9 is in use', { pid: 9 }]);
    assert.equal(back.stack, 'CkptError: pid 9 is in use\nat caller');
  });
});

describe('readImage', () => {
  test('returns exactly what ckpt show --json prints (dump with leaveRunning)', SLOW, async () => {
    const { pid, dir } = await startMem(2);
    const image = join(makeWorkDir('api-img'), 'img');
    const r = await dump({ pid, dir: image, leaveRunning: true });
    assert.deepEqual(r.pids, [pid]);
    assertPass(await requestCheck(dir));
    const shown = ckpt(['show', '-D', image, '--json']);
    assertSuccess(shown, 'ckpt show --json');
    assert.deepEqual(await readImage(image), JSON.parse(shown.stdout));
  });
});
