/**
 * ckpt SIGKILLed at chosen instants of a dump's remote-call window
 * (CKPT_DIE=POINT:N, src/fault.ts: ckpt kills itself with SIGKILL there). The
 * kernel then detaches the process with whatever registers and signal mask it
 * has at that instant; the return frame (src/ptrace/safe-return.ts) must bring
 * it back to exactly where it was. Checked: alive, untraced, same signal mask and
 * dispositions, counter growing, self-check PASS (memory checksum, registers
 * across a raw syscall). Its maps may have one more anonymous mapping (the
 * scratch area, leaked) and nothing else.
 * Also the snapshot child of `dump -R` (a fork of the process): a kill while it
 * exists must not leave a second copy of the program running, and the zombie it
 * leaves is reaped by the next dump.
 */
import assert from 'node:assert/strict';
import { basename, join } from 'node:path';
import { readdirSync, readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { assertPass, cleanup, killAll, makeWorkDir, procInfo, requestCheck, startProgram, SYSCALL, waitBlockedIn, waitFor, waitReady } from './lib/index.js';
import { ckptEnv, problemsOf, signalState, uniqueBinary } from './lib/safety.js';

after(cleanup);
const SLOW = { timeout: 60_000 };

/** `poke`: what makes a program that waits for a signal run its protocol (blocked.c pause and read). */
interface Program { dir: string; pid: number; comm: string; poke?: () => void }

async function startChecked(name: string, cflags: string[] = [], args: string[] = [], wakes = false): Promise<Program> {
  const binary = uniqueBinary(name, cflags);
  const dir = makeWorkDir(name);
  const { pid } = startProgram(binary, [dir, ...args]);
  const poke = wakes ? () => process.kill(pid, 'SIGUSR1') : undefined;
  await waitReady(dir, { pid });
  assertPass(await requestCheck(dir, { poke }));
  return { dir, pid, comm: basename(binary), poke };
}

const maps = (pid: number) => readFileSync(`/proc/${pid}/maps`, 'utf8').trim().split('\n');

/** Every live process (not a zombie) whose comm is `comm` (the program under its unique name). */
function copiesOf(comm: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (readFileSync(`/proc/${name}/comm`, 'utf8').trim() === comm && state !== 'Z' && state !== 'X') out.push(Number(name));
    } catch { /* gone */ }
  }
  return out;
}

async function dieAt(p: Program, point: string, flags: string[] = [], prepare?: () => Promise<void>): Promise<void> {
  await prepare?.();
  const before = maps(p.pid);
  const signals = signalState(p.pid);
  const image = join(makeWorkDir('img'), 'image');
  const r = ckptEnv(['dump', '-t', String(p.pid), '-D', image, ...flags], { CKPT_DIE: point });
  assert.equal(r.signal, 'SIGKILL', `ckpt was not killed at ${point}: status ${r.status}, ${r.stderr.trim()}`);
  const problems = await problemsOf(p.pid, p.dir, { poke: p.poke });
  assert.deepEqual(problems, [], `killed at ${point}: ${problems.join('; ')}`);
  assert.equal(signalState(p.pid), signals, `the signal state changed after a kill at ${point}`);
  const now = maps(p.pid);
  const added = now.filter((l) => !before.includes(l));
  const gone = before.filter((l) => !now.includes(l));
  assert.ok(gone.length <= 1 && added.length <= 1 && added.every((l) => /^\S+ rw-p 00000000 00:00 0\s*$/.test(l)),
    `maps changed beyond a leaked scratch area after a kill at ${point}: gone ${JSON.stringify(gone)}, added ${JSON.stringify(added)}`);
  assert.deepEqual(copiesOf(p.comm), [p.pid], `a second copy of the program runs after a kill at ${point}`);
}

describe('ckpt SIGKILLed inside the remote-call window: the process runs on as it was', () => {
  let p: Program;
  before(async () => { p = await startChecked('mem'); });
  after(() => killAll());
  const points = [
    'parked:1', 'masked:1', 'call:1', 'entry:1', 'exit:1', 'moved:1', 'call:4', 'entry:6', 'exit:9',
    'leave:1', 'unmasked:1',
  ];
  for (const point of points) {
    test(`dump, killed at ${point}`, SLOW, () => dieAt(p, point));
  }
  // A kill while the snapshot child exists leaves it a zombie of the process
  // (exit signal 0: nobody reaps it); the next dump has the process reap it.
  // The remote session of the collect goes on through the fork; the process reaps the child in a second one.
  for (const point of ['child:1', 'leave:1', 'unmasked:1', 'parked:2', 'unmasked:2']) {
    test(`dump -R (snapshot), killed at ${point}`, SLOW, () => dieAt(p, point, ['-R', '--snapshot', 'fork']));
  }
  test('a dump -R after those kills succeeds, and the process has no child left', SLOW, async () => {
    const r = ckptEnv(['dump', '-R', '--snapshot', 'fork', '-t', String(p.pid), '-D', join(makeWorkDir('img'), 'image')], {});
    assert.equal(r.status, 0, r.stderr);
    assert.equal(readFileSync(`/proc/${p.pid}/task/${p.pid}/children`, 'utf8').trim(), '');
    assert.deepEqual(await problemsOf(p.pid, p.dir), []);
  });
});

// dump -R copies a large process's memory while it runs, its writes noted by a
// userfaultfd the process makes in a short freeze (src/dump/precopy.ts). Killed
// in that freeze's remote session, with the write-protection armed, or in the
// collect's session after it, ckpt's death drops every registration: the
// process runs on writing, as it was. (Killed between the process's
// userfaultfd() and ckpt taking it, the process would keep that fd: not tested.)
describe('dump -R copying ahead, in a process writing as it is dumped (dirty.c)', () => {
  let p: Program;
  before(async () => { p = await startChecked('dirty', [], ['64', '2']); });
  after(() => killAll());
  for (const point of ['parked:1', 'unmasked:1', 'ahead:1', 'parked:2', 'unmasked:2']) {
    test(`dump -R, killed at ${point}: no VMA is left watched`, SLOW, async () => {
      await dieAt(p, point, ['-R']);
      const smaps = readFileSync(`/proc/${p.pid}/smaps`, 'utf8');
      assert.ok(!/^VmFlags:.* (um|uw|ui)\b/m.test(smaps), `a VMA is still registered with a userfaultfd after a kill at ${point}`);
    });
  }
});

describe('the same in a process with two threads', () => {
  let p: Program;
  before(async () => { p = await startChecked('threads', ['-pthread']); });
  after(() => killAll());
  for (const point of ['parked:2', 'masked:2', 'exit:12', 'unmasked:2', 'unmasked:1']) {
    test(`dump, killed at ${point}`, SLOW, () => dieAt(p, point));
  }
});

// Blocked in read(2) when frozen (a restart that needs no restart block), its
// questions go in a chain of calls (src/ptrace/chain.ts): killed with the chain
// written but not run, and stopped at its marker signal, it must run on as it
// was, its read restarted, the marker dropped (not pending), its handler there.
describe('the same in a process blocked in read, asked in a chain', () => {
  let p: Program;
  before(async () => {
    p = await startChecked('blocked', [], ['read'], true);
    await waitBlockedIn(p.pid, SYSCALL.read, 5_000);
  });
  after(() => killAll());
  for (const point of ['chain:1', 'chained:1', 'exit:4', 'unmasked:1']) {
    test(`dump, killed at ${point}`, SLOW, () => dieAt(p, point, [], () => waitBlockedIn(p.pid, SYSCALL.read, 5_000)));
  }
});

// Blocked in nanosleep when frozen: abandoned on the frame, the sleep must be
// restarted (the frame does it), never return EINTR (blocked.c FAILs on that).
describe('the same in a process blocked in nanosleep', () => {
  let p: Program;
  before(async () => { p = await startChecked('blocked', [], ['nanosleep']); });
  after(() => killAll());
  for (const point of ['masked:1', 'exit:4', 'unmasked:1']) {
    test(`dump, killed at ${point}`, SLOW, () => dieAt(p, point));
  }
});

// Inside restart_syscall when frozen (a stop interrupted its sleep): abandoned
// on the frame, the thread must restart the call restart_syscall carried on
// (ptrace/restart-call.ts); a bare restart_syscall would return EINTR, which
// restart.c FAILs on.
describe('the same in a process whose sleep goes on in restart_syscall', () => {
  let p: Program;
  before(async () => { p = await startChecked('restart', [], ['nanosleep']); });
  after(() => killAll());
  /** Stop and continue the process just after a 1 s sleep began: the rest of it runs in restart_syscall. */
  const intoRestart = async () => {
    const counter = () => readFileSync(join(p.dir, 'counter'), 'utf8');
    const was = counter();
    await waitFor('a new sleep', () => (counter() !== was ? true : undefined), 5_000);
    // The counter moves before the protocol's file work: stopped then, the process would
    // start a fresh sleep after SIGCONT and never be in restart_syscall.
    await waitBlockedIn(p.pid, SYSCALL.clock_nanosleep, 5_000);
    process.kill(p.pid, 'SIGSTOP');
    await waitFor('the stop', () => (procInfo(p.pid)?.state === 'T' ? true : undefined), 5_000);
    process.kill(p.pid, 'SIGCONT');
    await waitBlockedIn(p.pid, SYSCALL.restart_syscall, 5_000);
  };
  for (const point of ['masked:1', 'exit:4', 'unmasked:1']) {
    test(`dump, killed at ${point}`, SLOW, () => dieAt(p, point, [], intoRestart));
  }
});
