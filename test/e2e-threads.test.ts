/**
 * Multi-threaded processes: every thread comes back with its tid, registers,
 * xsave state, TLS, signal mask, rseq area, clear_child_tid and robust list;
 * threads blocked on a futex, in a syscall or spinning all resume.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import {
  assertCleanError, assertPass, CLI, cleanup, dumpAndRestore, startChecked, dumpOk, killAll, makeWorkDir, reportedCounter, requestCheck,
  restoreInBackground, startProgram, waitCounterAbove, waitGone, whileRunning, waitFor,
} from './lib/index.js';

afterEach(() => killAll());
after(cleanup);

const SLOW = { timeout: 180_000 };
const tids = (pid: number) => readdirSync(`/proc/${pid}/task`).map(Number).sort((a, b) => a - b);

describe('multi-threaded processes', () => {
  test('threads.c: both threads come back under their tids; the worker keeps ticking; memory intact', SLOW, async () => {
    const { dir, pid } = await startChecked('threads', [], ['-pthread']);
    const before = tids(pid);
    assert.equal(before.length, 2);
    const { restore, report } = await dumpAndRestore(pid, dir);
    assert.deepEqual(tids(pid), before);
    await whileRunning(restore, waitCounterAbove(dir, reportedCounter(report)));
    assertPass(await whileRunning(restore, requestCheck(dir)));
  });

  test('thread-signal.c: a signal pending for one thread alone is pending for that thread again', SLOW, async () => {
    const { dir, pid } = await startChecked('thread-signal', [], ['-pthread']);
    await dumpAndRestore(pid, dir);
  });

  test('a restore of a multi-threaded process that fails after its threads exist kills them all and returns', SLOW, async () => {
    const { pid } = await startChecked('threads', [], ['-pthread']);
    const image = makeWorkDir('img');
    await dumpOk(pid, image);
    await waitGone(pid);

    const r = spawnSync(process.execPath, [CLI, 'restore', '-D', image], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, CKPT_FAULT: 'restore:signals' } });
    assertCleanError({ status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr }, /injected fault at restore:signals/);
    await waitGone(pid);
  });

  test('churn.c: dumped while it creates and joins threads in a tight loop, it restores and PASSes', SLOW, async () => {
    const { dir, pid } = await startChecked('churn', [], ['-pthread']);
    const { restore, report } = await dumpAndRestore(pid, dir);
    await whileRunning(restore, waitCounterAbove(dir, reportedCounter(report)));
  });

  test('unmodified python3 with 8 threading.Thread workers, dumped mid-way, finishes with the right result', SLOW, async () => {
    const dir = makeWorkDir('pythreads');
    const script = join(dir, 'work.py');
    const out = join(dir, 'result');
    writeFileSync(script, [
      'import threading, time, sys',
      'results = [0] * 8',
      'def work(i):',
      '    s = 0',
      '    for k in range(1, 200001):',
      '        s += (k * (i + 1)) % 7',
      '        if k % 10000 == 0:',
      '            time.sleep(0.1)',
      '    results[i] = s',
      'open(sys.argv[2], "w").write("started\\n")',
      'ts = [threading.Thread(target=work, args=(i,)) for i in range(8)]',
      'for t in ts: t.start()',
      'for t in ts: t.join()',
      'open(sys.argv[1], "w").write(str(sum(results)) + "\\n")',
      '',
    ].join('\n'));
    let want = 0;
    for (let i = 0; i < 8; i++) for (let k = 1; k <= 200000; k++) want += (k * (i + 1)) % 7;

    const { pid } = startProgram('/usr/bin/python3', [script, out, join(dir, 'started')]);
    await waitFor('python3 to start its threads', () => (tids(pid).length >= 9 ? true : undefined), 10_000);
    const image = makeWorkDir('img');
    await dumpOk(pid, image);
    await waitGone(pid);
    assert.throws(() => readFileSync(out), 'python3 finished before it was dumped');

    const restore = restoreInBackground(image);
    const status = await restore.exited;
    assert.equal(status.status, 0, `the restored python3 did not exit with 0: ${status.stderr}`);
    assert.equal(readFileSync(out, 'utf8').trim(), String(want));
  });
});
