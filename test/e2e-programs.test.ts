/**
 * The test programs and the harness, without ckpt: every program starts,
 * reports ready, passes its own check, keeps counting, and a corruption is
 * caught. If this file fails, the end-to-end tests of ckpt prove nothing.
 */
import assert from 'node:assert/strict';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import {
  appendingPython,
  assertCleanError,
  assertConsecutive,
  assertPass,
  cleanup,
  compile,
  isRunning,
  killAll,
  makeWorkDir,
  pidsWithArg,
  readAppendedLines,
  readCounter,
  reportedCounter,
  requestCheck,
  requestExit,
  startProgram,
  SYSCALL,
  threadCount,
  tracerPid,
  unusedPid,
  waitBlockedIn,
  waitCounterAbove,
  waitFor,
  waitGone,
  waitReady,
} from './lib/index.js';


afterEach(() => killAll());
after(cleanup);

/** Pokes one byte of another process's memory through /proc/PID/mem; returns the old byte. */
function pokeByte(pid: number, address: number, value: number): number {
  const fd = openSync(`/proc/${pid}/mem`, 'r+');
  try {
    const old = Buffer.alloc(1);
    readSync(fd, old, 0, 1, address);
    writeSync(fd, Buffer.from([value]), 0, 1, address);
    return old[0];
  } finally {
    closeSync(fd);
  }
}

describe('test programs pass their own checks when left alone', () => {
  for (const [name, flags] of [['mem', []], ['threads', ['-pthread']], ['eventfd', []]] as const) {
    test(`${name}: ready, PASS, counter keeps growing, exits on request`, async () => {
      const dir = makeWorkDir(name);
      const prog = startProgram(compile(name, [...flags]), [dir]);
      const facts = await waitReady(dir, { pid: prog.pid });
      assert.equal(Number(facts.pid), prog.pid);

      const first = await requestCheck(dir);
      assertPass(first);
      const second = await requestCheck(dir);
      assertPass(second);
      assert.ok(reportedCounter(second) > reportedCounter(first), `${first} then ${second}`);
      await waitCounterAbove(dir, readCounter(dir));
      if (name === 'threads') assert.equal(threadCount(prog.pid), 2);

      requestExit(dir, 7);
      assert.deepEqual(await prog.exited, { code: 7, signal: null });
    });
  }

  test('mem: uses the widest vector registers the CPU has', async () => {
    const dir = makeWorkDir('mem');
    const prog = startProgram(compile('mem'), [dir]);
    const facts = await waitReady(dir, { pid: prog.pid });
    const flags = readFileSync('/proc/cpuinfo', 'utf8');
    const expected = /\bavx512f\b/.test(flags) ? 'zmm32' : /\bavx\b/.test(flags) ? 'ymm16' : 'none';
    assert.equal(facts.vec, expected);
    assert.match(await requestCheck(dir), new RegExp(`vec=${expected}`));
  });

  test('mem: holds no fd but stdio, all /dev/null (the protocol opens files by path)', async () => {
    const dir = makeWorkDir('mem');
    const prog = startProgram(compile('mem'), [dir]);
    await waitReady(dir, { pid: prog.pid });
    const fds = readdirSync(`/proc/${prog.pid}/fd`).sort();
    assert.deepEqual(fds, ['0', '1', '2']);
    for (const fd of fds) assert.equal(readlinkSync(`/proc/${prog.pid}/fd/${fd}`), '/dev/null');
  });
});

describe('blocked: blocks in its syscall and answers a check when woken', () => {
  test('nanosleep mode sleeps in clock_nanosleep and counts', async () => {
    const dir = makeWorkDir('blocked');
    const prog = startProgram(compile('blocked'), [dir, 'nanosleep']);
    await waitReady(dir, { pid: prog.pid });
    await waitBlockedIn(prog.pid, SYSCALL.clock_nanosleep);
    assertPass(await requestCheck(dir));
    await waitCounterAbove(dir, readCounter(dir));
  });

  for (const mode of ['pause', 'read'] as const) {
    test(`${mode} mode wakes once per SIGUSR1, counts it, and checks itself`, async () => {
      const dir = makeWorkDir('blocked');
      const prog = startProgram(compile('blocked'), [dir, mode]);
      await waitReady(dir, { pid: prog.pid });
      const wake = () => process.kill(prog.pid, 'SIGUSR1');
      const key = mode === 'pause' ? 'wakeups' : 'bytes';
      for (const expected of [1, 2, 3]) {
        await waitBlockedIn(prog.pid, SYSCALL[mode]);
        const report = await requestCheck(dir, { poke: wake });
        assertPass(report);
        assert.equal(reportedCounter(report), expected, report);
        assert.match(report, new RegExp(`\\b${key}=${expected}\\b`));
      }
      assert.equal(readCounter(dir), 3);
    });
  }
});

describe('the checks catch what they are meant to catch', () => {
  test('mem: a byte changed in the random area, then in the heap, makes the report FAIL', async () => {
    const dir = makeWorkDir('mem');
    const prog = startProgram(compile('mem'), [dir]);
    const facts = await waitReady(dir, { pid: prog.pid });
    assertPass(await requestCheck(dir));

    const randomByte = Number(facts.random) + 5 * 4096 + 123;
    const old = pokeByte(prog.pid, randomByte, 0x5a);
    assert.match(await requestCheck(dir), /^FAIL random area checksum differs, first bad page 5$/);
    pokeByte(prog.pid, randomByte, old);
    assertPass(await requestCheck(dir));

    pokeByte(prog.pid, Number(facts.heap) + 2 * 4096, 0xff);
    assert.match(await requestCheck(dir), /^FAIL heap page 2 differs$/);
  });

  test('mem: a page changed in the mapped file shows through an untouched private page', async () => {
    const dir = makeWorkDir('mem');
    const prog = startProgram(compile('mem'), [dir]);
    await waitReady(dir, { pid: prog.pid });
    const fd = openSync(join(dir, 'mapped'), 'r+');
    writeSync(fd, Buffer.from([1, 2, 3]), 0, 3, 4 * 4096); // page 4: not written by the program
    closeSync(fd);
    assert.match(await requestCheck(dir), /^FAIL mapped page 4 \(untouched, as in the file\) differs$/);
  });
});

describe('harness', () => {
  test('killAll kills every tracked program and waits until it is reaped', async () => {
    const dir = makeWorkDir('blocked');
    const prog = startProgram(compile('blocked'), [dir, 'pause']);
    await waitReady(dir, { pid: prog.pid });
    await killAll();
    assert.ok(!existsSync(`/proc/${prog.pid}`));
    assert.equal((await prog.exited).signal, 'SIGKILL');
  });

  test('waitGone returns once a killed program is reaped', async () => {
    const dir = makeWorkDir('blocked');
    const prog = startProgram(compile('blocked'), [dir, 'nanosleep']);
    await waitReady(dir, { pid: prog.pid });
    assert.ok(isRunning(prog.pid));
    process.kill(prog.pid, 'SIGKILL');
    await waitGone(prog.pid);
  });

  test('compile caches: the second call returns the same binary without rebuilding', () => {
    const first = compile('blocked');
    const built = statSync(first).mtimeMs;
    assert.equal(compile('blocked'), first);
    assert.equal(statSync(first).mtimeMs, built);
  });

  test('pidsWithArg finds a program by its work dir; tracerPid says nobody traces it', async () => {
    const dir = makeWorkDir('blocked');
    const prog = startProgram(compile('blocked'), [dir, 'pause']);
    await waitReady(dir, { pid: prog.pid });
    assert.deepEqual(pidsWithArg(dir), [prog.pid]);
    assert.equal(tracerPid(prog.pid), 0);
    assert.ok(!existsSync(`/proc/${unusedPid()}`));
  });

  test('assertCleanError accepts one line and rejects stack traces, extra lines and success', () => {
    const result = (status: number | null, stderr: string) => ({ status, signal: null, stdout: '', stderr });
    assertCleanError(result(1, 'ckpt: pid 42 is in use\n'), 'pid 42 is in use');
    assert.throws(() => assertCleanError(result(0, 'fine\n')));
    assert.throws(() => assertCleanError(result(1, 'Error: boom\n    at main (file.js:1:1)\n')));
    assert.throws(() => assertCleanError(result(1, 'one\ntwo\n')));
    assert.throws(() => assertCleanError(result(1, '')));
    assert.throws(() => assertCleanError(result(1, 'ckpt: other\n'), 'not supported'));
  });

  test('python3 appends consecutive integers to a file', async () => {
    const dir = makeWorkDir('python');
    const prog = appendingPython(dir);
    const lines = await waitFor('10 lines', () => {
      const l = readAppendedLines(dir);
      return l.length >= 10 ? l : undefined;
    }, 10_000);
    assertConsecutive(lines);
    assert.ok(isRunning(prog.pid));
  });
});
