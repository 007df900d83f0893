/**
 * End-to-end acceptance tests of the foundation: ckpt dumps a running
 * single-threaded process (killing it), restores it under the same pid, and
 * the process proves by itself that it carries on as if nothing happened.
 *
 * The programs and their protocol: test/programs/README.md. Every restore
 * first waits until the dumped pid is gone (dumpOk does it): a pid held even
 * by an unreaped zombie cannot be restored.
 */
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import {
  appendingPython,
  ckptBackground,
  assertCleanError,
  assertConsecutive,
  assertPass,
  assertSuccess,
  ckpt,
  cleanup,
  compile,
  dumpOk,
  dumpRunningOk,
  isRunning,
  killAll,
  makeWorkDir,
  pidsWithArg,
  procInfo,
  readAppendedLines,
  readCounter,
  reportedCounter,
  requestCheck,
  requestExit,
  restoreDetachedOk,
  restoreInBackground,
  startProgram,
  SYSCALL,
  tracerPid,
  unusedPid,
  waitBlockedIn,
  waitCounterAbove,
  waitFor,
  waitGone,
  waitReady,
  whileRunning,
  startChecked,
  track,
} from './lib/index.js';
import { cpuMasks } from './lib/safety.js';

afterEach(() => killAll());
after(cleanup);

const SLOW = { timeout: 180_000 };
/** A restored program has to be rebuilt before it can answer: be patient. */
const AFTER_RESTORE = { timeoutMs: 60_000 };

/** Starts test/programs/NAME.c and waits until it has PASSed a first check. */
/** An image of blocked.c (nanosleep mode): small and quick to make. Its process is dumped, so gone. */
async function makeSmallImage() {
  const { dir, pid } = await startChecked('blocked', ['nanosleep']);
  await waitBlockedIn(pid, SYSCALL.clock_nanosleep);
  const image = makeWorkDir('img');
  await dumpOk(pid, image);
  return { dir, pid, image };
}

function assertCkptExitedNonZero(exit: { status: number | null; signal: string | null }, why: string): void {
  assert.ok(exit.status !== 0, `${why}: ckpt restore exited with status 0`);
}

describe('dump kills the process; restore brings it back under its pid', () => {
  test('mem.c: 64 MiB of memory, a private file mapping, the brk heap and ymm/zmm registers across a sleep all survive; the counter carries on', SLOW, async () => {
    const { dir, pid } = await startChecked('mem');
    const image = makeWorkDir('img');
    const cpus = cpuMasks(pid);
    await dumpOk(pid, image);
    const saved = readCounter(dir);

    const restore = restoreInBackground(image);
    const report = await whileRunning(restore, requestCheck(dir, AFTER_RESTORE));
    assertPass(report);
    // The dump ran its remote calls with the process on ckpt's CPU (src/ptrace/cpu-pin.ts); the image keeps its own mask.
    assert.equal(cpuMasks(pid), cpus, 'the restored process has another CPU mask');
    assert.ok(reportedCounter(report) >= saved, `counter went back: ${saved} at dump, then ${report}`);
    await whileRunning(restore, waitCounterAbove(dir, reportedCounter(report)));
    assert.equal(procInfo(pid)?.ppid, restore.pid, 'without -d, ckpt restore is the parent of the restored process');

    process.kill(pid, 'SIGKILL');
    assertCkptExitedNonZero(await restore.exited, 'the restored process was killed');
    await waitGone(pid);
  });

  test('ckpt restore (without -d) exits with the exit status of the restored process', SLOW, async () => {
    const { dir, pid, image } = await makeSmallImage();
    const restore = restoreInBackground(image);
    assertPass(await whileRunning(restore, requestCheck(dir, AFTER_RESTORE)));
    requestExit(dir, 7);
    const exit = await restore.exited;
    assert.equal(exit.status, 7, `ckpt restore: ${JSON.stringify(exit)}`);
    await waitGone(pid);
  });

  test('unmodified python3 appending to a file continues with the next integer: no gap, no repeat', SLOW, async () => {
    const dir = makeWorkDir('python');
    const { pid } = appendingPython(dir);
    await waitFor('python3 to write 10 lines', () => (readAppendedLines(dir).length >= 10 ? true : undefined), 10_000);
    const image = makeWorkDir('img');
    await dumpOk(pid, image);
    const atDump = readAppendedLines(dir);
    assertConsecutive(atDump);

    const restore = restoreInBackground(image);
    const grown = await whileRunning(
      restore,
      waitFor(
        `python3 to append 20 more lines after ${atDump.length}`,
        () => {
          const lines = readAppendedLines(dir);
          return lines.length >= atDump.length + 20 ? lines : undefined;
        },
        60_000,
      ),
    );
    assertConsecutive(grown);
    assert.equal(procInfo(pid)?.comm, 'python3');
  });
});

describe('a process blocked in a syscall is restored into the same wait and wakes as before', () => {
  const modes = [
    { mode: 'nanosleep', syscall: SYSCALL.clock_nanosleep, wakes: false, proves: 'sleeps on and keeps counting' },
    { mode: 'pause', syscall: SYSCALL.pause, wakes: true, proves: 'one SIGUSR1 wakes it exactly once (its handler is back)' },
    { mode: 'read', syscall: SYSCALL.read, wakes: true, proves: 'one SIGUSR1 makes its handler write a byte into its pipe, and read() gets it' },
  ] as const;

  for (const { mode, syscall, wakes, proves } of modes) {
    test(`blocked.c ${mode}: ${proves}`, SLOW, async () => {
      const dir = makeWorkDir(`blocked-${mode}`);
      const { pid } = startProgram(compile('blocked'), [dir, mode]);
      await waitReady(dir, { pid });
      const check = (timeoutMs?: number) =>
        requestCheck(dir, { timeoutMs, poke: wakes ? () => process.kill(pid, 'SIGUSR1') : undefined });

      await waitBlockedIn(pid, syscall);
      const beforeDump = await check();
      assertPass(beforeDump);
      await waitBlockedIn(pid, syscall);
      const image = makeWorkDir('img');
      await dumpOk(pid, image);

      const restore = restoreInBackground(image);
      await whileRunning(restore, waitBlockedIn(pid, syscall, 60_000));
      const afterRestore = await whileRunning(restore, check(60_000));
      assertPass(afterRestore);
      const story = `before the dump: ${beforeDump}; after the restore: ${afterRestore}`;
      if (wakes) {
        assert.equal(reportedCounter(afterRestore), reportedCounter(beforeDump) + 1, story);
      } else {
        assert.ok(reportedCounter(afterRestore) >= reportedCounter(beforeDump), story);
        await whileRunning(restore, waitCounterAbove(dir, reportedCounter(afterRestore)));
      }

      process.kill(pid, 'SIGKILL');
      assertCkptExitedNonZero(await restore.exited, 'the restored process was killed');
    });
  }
});

describe('a wait that a stop interrupted goes on in restart_syscall: restored, it is the same call again, never EINTR', () => {
  const calls = [
    { mode: 'nanosleep', nr: SYSCALL.clock_nanosleep, witness: 'the code and the arguments' },
    { mode: 'raw-clock', nr: SYSCALL.clock_nanosleep, witness: 'the arguments' },
    { mode: 'raw-nanosleep', nr: SYSCALL.nanosleep, witness: 'the arguments' },
    { mode: 'futex', nr: SYSCALL.futex, witness: 'the arguments' },
    { mode: 'poll', nr: SYSCALL.poll, witness: 'the code and the arguments' },
  ] as const;

  for (const { mode, nr, witness } of calls) {
    test(`restart.c ${mode}: the image names syscall ${nr} (from ${witness}); restored, it times out as usual`, SLOW, async () => {
      const { dir, pid } = await startChecked('restart', [mode]);
      await waitBlockedIn(pid, nr);
      // A stop in the middle of the wait: the kernel carries it on through restart_syscall.
      process.kill(pid, 'SIGSTOP');
      await waitFor(() => `pid ${pid} to stop`, () => (procInfo(pid)?.state === 'T' ? true : undefined), 5_000);
      process.kill(pid, 'SIGCONT');
      await waitBlockedIn(pid, SYSCALL.restart_syscall);
      const image = makeWorkDir('img');
      await dumpOk(pid, image);

      const shown = ckpt(['show', '-D', image, '--json']);
      assertSuccess(shown, 'show --json');
      const regs = (JSON.parse(shown.stdout) as { processes: { threads: { regs: { orig_rax: string; rax: string } }[] }[] }).processes[0].threads[0].regs;
      assert.equal(regs.orig_rax, `0x${nr.toString(16)}`, 'the image names the call restart_syscall carried on');
      assert.equal(regs.rax, '0xfffffffffffffdfc', 'still -ERESTART_RESTARTBLOCK');

      const restore = restoreInBackground(image);
      const report = await whileRunning(restore, requestCheck(dir, AFTER_RESTORE));
      assertPass(report);
      await whileRunning(restore, waitCounterAbove(dir, reportedCounter(report)));
      process.kill(pid, 'SIGKILL');
      assertCkptExitedNonZero(await restore.exited, 'the restored process was killed');
    });
  }
});

/** `dump` of program NAME: its image restores under its pid and PASSes. */
async function dumpedThenRestores(name: string): Promise<void> {
  const { dir, pid } = await startChecked(name);
  const image = makeWorkDir('img');
  await dumpOk(pid, image);
  assert.equal(restoreDetachedOk(image, join(makeWorkDir('pidfile'), 'pid')), pid);
  assertPass(await requestCheck(dir, AFTER_RESTORE));
}

/** `dump -R` of program NAME: it runs on and PASSes; killed, its image restores under its pid and PASSes. */
async function runsOnThenRestores(name: string): Promise<void> {
  const { dir, pid } = await startChecked(name);
  const image = makeWorkDir('img');
  await dumpOk(pid, image, '-R');
  assertPass(await requestCheck(dir));
  await killedThenRestores(pid, dir, image);
}

/** Kill process `pid` (of program dir `dir`), restore `image` under its pid, and have it PASS. */
async function killedThenRestores(pid: number, dir: string, image: string): Promise<void> {
  process.kill(pid, 'SIGKILL');
  await waitGone(pid);
  assert.equal(restoreDetachedOk(image, join(makeWorkDir('pidfile'), 'pid')), pid);
  assertPass(await requestCheck(dir, AFTER_RESTORE));
}

describe('dump, then at once restore', () => {
  // ckpt dump -D returns once SIGKILL is sent: the killed process may still be freeing its
  // memory (~90 ms a GiB here) when the restore looks at its pid, which must wait for it.
  // (The restore runs in the background: this test process is the parent that reaps it.)
  test('dirty.c with 2 GiB: ckpt dump, then ckpt restore with no wait between: the restore waits for the pid, and the process PASSes', SLOW, async () => {
    const { dir, pid } = await startChecked('dirty', ['2048', '0']);
    const image = makeWorkDir('img');
    assertSuccess(ckpt(['dump', '-t', String(pid), '-D', image]), 'ckpt dump');
    const r = await ckptBackground(['restore', '-d', '-D', image]).exited;
    assert.equal(r.status, 0, `ckpt restore: ${r.stderr}`);
    track(pid);
    assertPass(await requestCheck(dir, AFTER_RESTORE));
  });
});

describe('dump --leave-running', () => {
  test('mem.c runs on intact; restoring its image meanwhile fails with "pid N is in use" and creates no process', SLOW, async () => {
    const { dir, pid } = await startChecked('mem');
    const image = makeWorkDir('img');
    await dumpOk(pid, image, '--leave-running');
    assert.ok(isRunning(pid), 'the process was killed despite --leave-running');
    assert.equal(tracerPid(pid), 0, 'the process is still traced');
    await waitCounterAbove(dir, readCounter(dir));
    assertPass(await requestCheck(dir));

    assert.deepEqual(pidsWithArg(dir), [pid]);
    assertCleanError(ckpt(['restore', '-d', '-D', image]), `pid ${pid} is in use`);
    assert.deepEqual(pidsWithArg(dir), [pid], 'a failed restore left a process behind');
    assertPass(await requestCheck(dir));
  });

  test('-R: the image is complete: once the original is killed, it restores and PASSes', SLOW, () => runsOnThenRestores('mem'));

});

describe('a process whose seccomp filter kills at pipe2 and vmsplice', () => {
  test('dump -R: it runs on and PASSes; killed, its image restores and PASSes', SLOW, () => runsOnThenRestores('seccomp-pages'));

  test('dump: its image restores and PASSes', SLOW, () => dumpedThenRestores('seccomp-pages'));
});

/** How many pages a dump's -v line says it saved. */
function pagesOf(stderr: string): number {
  const m = /, (\d+) pages[ ,]/.exec(stderr);
  assert.ok(m, `no page count in ckpt -v's output: ${stderr}`);
  return Number(m[1]);
}

/** The fds of process `pid` that are userfaultfds. */
function userfaultfds(pid: number): string[] {
  return readdirSync(`/proc/${pid}/fd`).filter((fd) => {
    try { return readlinkSync(`/proc/${pid}/fd/${fd}`) === 'anon_inode:[userfaultfd]'; } catch { return false; }
  });
}

describe('dump -R of a process writing 2 pages a millisecond as it is dumped (dirty.c)', () => {
  for (const way of ['copy', 'fork']) {
    test(`--snapshot ${way}: it runs on and PASSes, nothing of ckpt left in it; killed, its image restores and PASSes`, SLOW, async () => {
      const { dir, pid } = await startChecked('dirty', ['64', '2']);
      const image = makeWorkDir('img');
      const r = dumpRunningOk(['dump', '-R', '-v', '--snapshot', way, '-t', String(pid), '-D', image], image);
      const ahead = /, (\d+) copied while it ran \((\d+) of them again/.exec(r.stderr);
      if (way === 'copy') {
        assert.ok(ahead && Number(ahead[1]) >= 64 * 256, `the 64 MiB were not copied while it ran: ${r.stderr}`);
        assert.ok(Number(ahead[2]) > 0, `no page written during the copy was copied again: ${r.stderr}`);
      } else {
        assert.equal(ahead, null, `--snapshot fork copied ahead: ${r.stderr}`);
      }
      assert.ok(!/^VmFlags:.* (um|uw|ui)\b/m.test(readFileSync(`/proc/${pid}/smaps`, 'utf8')), 'a VMA is still registered with a userfaultfd');
      assert.deepEqual(userfaultfds(pid), [], 'the process holds a userfaultfd');
      assertPass(await requestCheck(dir));
      await killedThenRestores(pid, dir, image);
    });
  }

  // process_vm_readv pins each page it reads, and pinning a page shared copy-on-write
  // makes the kernel copy it: copying ahead reads through /proc/PID/mem instead.
  test('--snapshot copy of a process sharing its 64 MiB copy-on-write with a child: the sharing holds; the tree restores and PASSes', SLOW, async () => {
    const { dir, pid } = await startChecked('dirty', ['64', '2', 'fork']);
    const child = Number(readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim());
    assert.ok(child > 0, 'dirty.c made no child');
    track(child);
    const pss = () => [pid, child].reduce((n, p) => n + Number(/^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${p}/smaps_rollup`, 'utf8'))![1]), 0);
    const before = pss();
    const image = makeWorkDir('img');
    const r = dumpRunningOk(['dump', '-R', '-v', '-t', String(pid), '-D', image], image);
    assert.match(r.stderr, / copied while it ran /, 'not copied ahead');
    // The parent's own writes (2 pages a millisecond) unshare a few MiB meanwhile; a pinned read, all 64.
    assert.ok(pss() - before < 32 * 1024, `the tree's Pss grew from ${before} to ${pss()} kB`);
    assertPass(await requestCheck(dir));
    for (const p of [pid, child]) process.kill(p, 'SIGKILL');
    for (const p of [pid, child]) await waitGone(p);
    assert.equal(restoreDetachedOk(image, join(makeWorkDir('pidfile'), 'pid')), pid);
    assertPass(await requestCheck(dir, AFTER_RESTORE));
  });

  // A process stopped by a signal is not forked: its pages are read from it, frozen. What it
  // shares with its child goes through /proc/PID/mem; a pinned read would copy all 64 MiB.
  test('dump -R of a stopped process sharing its 64 MiB copy-on-write with a child: the sharing holds; it stays stopped, runs on after SIGCONT and PASSes; the tree restores', SLOW, async () => {
    const { dir, pid } = await startChecked('dirty', ['64', '2', 'fork']);
    const child = Number(readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim());
    assert.ok(child > 0, 'dirty.c made no child');
    track(child);
    process.kill(pid, 'SIGSTOP');
    await waitFor(`pid ${pid} to stop`, () => (procInfo(pid)?.state === 'T' ? true : undefined), 5_000);
    const pss = () => [pid, child].reduce((n, p) => n + Number(/^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${p}/smaps_rollup`, 'utf8'))![1]), 0);
    const before = pss();
    const image = makeWorkDir('img');
    dumpRunningOk(['dump', '-R', '-t', String(pid), '-D', image], image);
    assert.ok(pss() - before < 8 * 1024, `the tree's Pss grew from ${before} to ${pss()} kB`);
    assert.equal(procInfo(pid)?.state, 'T', 'the dump let the stopped process run');
    process.kill(pid, 'SIGCONT');
    assertPass(await requestCheck(dir));
    for (const p of [pid, child]) process.kill(p, 'SIGKILL');
    for (const p of [pid, child]) await waitGone(p);
    assert.equal(restoreDetachedOk(image, join(makeWorkDir('pidfile'), 'pid')), pid);
    process.kill(pid, 'SIGCONT');
    assertPass(await requestCheck(dir, AFTER_RESTORE));
  });

  // Write-protecting an empty page table entry in async mode fills in page tables for the
  // whole range and marks the entry; copying ahead protects only the pages that are there.
  test('--snapshot copy of a process with 256 MiB mapped and 16 pages of it touched: its page tables do not grow, the dump saves what fork saves; it restores and PASSes', SLOW, async () => {
    const { dir, pid } = await startChecked('dirty', ['64', '2', 'sparse']);
    const vmPte = () => Number(/^VmPTE:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
    const pte = vmPte();
    const image = makeWorkDir('img');
    const pages = ['fork', 'copy'].map((way) => {
      const r = dumpRunningOk(['dump', '-R', '-v', '--force', '--snapshot', way, '-t', String(pid), '-D', image], image);
      assert.equal(/ copied while it ran /.test(r.stderr), way === 'copy', `--snapshot ${way}: ${r.stderr}`);
      return pagesOf(r.stderr);
    });
    // 256 MiB of page tables filled in would be 512 KiB more.
    assert.ok(vmPte() - pte < 128, `VmPTE went from ${pte} to ${vmPte()} kB`);
    assert.ok(Math.abs(pages[1] - pages[0]) < 64, `--snapshot fork saved ${pages[0]} pages, copy ${pages[1]}`);
    assertPass(await requestCheck(dir));
    await killedThenRestores(pid, dir, image);
  });

  test('--snapshot without -R, or of another kind: one clear line and a non-zero exit', () => {
    assertCleanError(ckpt(['dump', '--snapshot', 'fork', '-t', String(process.pid), '-D', makeWorkDir('img')]), '--snapshot is for a dump that leaves the process running (-R)');
    assertCleanError(ckpt(['dump', '-R', '--snapshot', 'cow', '-t', String(process.pid), '-D', makeWorkDir('img')]), '--snapshot cow: expected copy or fork');
  });
});

describe('a process with 3000 VMAs (vmas.c)', () => {
  test('dump and restore: each comes back with its page and protection (the restore\'s batches of calls share one 64 KiB scratch area)', SLOW, () => dumpedThenRestores('vmas'));
});

describe('what ckpt cannot dump yet is refused, and the process runs on untouched', () => {
  const refused = [
    { name: 'socket', cflags: [], what: 'a process with a file descriptor in flight on a unix socket (SCM_RIGHTS)' },
  ];

  for (const { name, cflags, what } of refused) {
    test(`${what} (${name}.c): one "not supported" line, non-zero exit, no image; it keeps running and PASSes`, SLOW, async () => {
      const { dir, pid } = await startChecked(name, [], cflags);
      const image = makeWorkDir('img');
      const counter = readCounter(dir);

      assertCleanError(ckpt(['dump', '-t', String(pid), '-D', image]), 'not supported');
      assert.ok(!existsSync(join(image, 'ckpt.img')), 'a refused dump left an image');
      assert.ok(isRunning(pid), 'the refused process is gone');
      assert.equal(tracerPid(pid), 0, 'the refused process is still traced');
      await waitCounterAbove(dir, counter);
      assertPass(await requestCheck(dir));
    });
  }
});

describe('bad input: non-zero exit, exactly one line on stderr, no stack trace', () => {
  let imagePid = 0;
  const dirs = { image: '', truncated: '', flipped: '', flippedPages: '', empty: '', junk: '' };

  before(async () => {
    const small = await makeSmallImage();
    imagePid = small.pid;
    dirs.image = small.image;
    const imgFile = (dir: string) => join(dir, 'ckpt.img');

    dirs.truncated = makeWorkDir('truncated');
    cpSync(dirs.image, dirs.truncated, { recursive: true });
    truncateSync(imgFile(dirs.truncated), Math.floor(statSync(imgFile(dirs.image)).size / 2));

    dirs.flipped = makeWorkDir('flipped');
    cpSync(dirs.image, dirs.flipped, { recursive: true });
    const bytes = readFileSync(imgFile(dirs.flipped));
    bytes[bytes.length >> 1] ^= 0xff;
    writeFileSync(imgFile(dirs.flipped), bytes);

    dirs.flippedPages = makeWorkDir('flipped-pages');
    cpSync(dirs.image, dirs.flippedPages, { recursive: true });
    const pages = readFileSync(join(dirs.flippedPages, 'pages.img'));
    pages[pages.length - 100] ^= 0xff;
    writeFileSync(join(dirs.flippedPages, 'pages.img'), pages);

    dirs.empty = makeWorkDir('empty');
    dirs.junk = makeWorkDir('junk');
    writeFileSync(join(dirs.junk, 'ckpt.img'), 'this is not an image\n'.repeat(100));
    mkdirSync(join(dirs.junk, 'sub'));
  });

  const missing = () => join(makeWorkDir('missing'), 'nothing-here');
  const cases: { what: string; args: () => string[]; restores?: boolean }[] = [
    { what: 'dump of a pid that does not exist', args: () => ['dump', '-t', String(unusedPid()), '-D', makeWorkDir('img')] },
    { what: 'dump of a pid that is not a number', args: () => ['dump', '-t', 'abc', '-D', makeWorkDir('img')] },
    { what: 'restore of a missing directory', args: () => ['restore', '-d', '-D', missing()] },
    { what: 'show of a missing directory', args: () => ['show', '-D', missing()] },
    { what: 'restore of an image truncated to half', args: () => ['restore', '-d', '-D', dirs.truncated], restores: true },
    { what: 'show of an image truncated to half', args: () => ['show', '-D', dirs.truncated] },
    { what: 'restore of an image with one byte flipped in the middle', args: () => ['restore', '-d', '-D', dirs.flipped], restores: true },
    { what: 'restore of an empty directory', args: () => ['restore', '-d', '-D', dirs.empty] },
    { what: 'show of an empty directory', args: () => ['show', '-D', dirs.empty] },
    { what: 'restore of a directory whose ckpt.img is text', args: () => ['restore', '-d', '-D', dirs.junk], restores: true },
    { what: 'show of a directory whose ckpt.img is text', args: () => ['show', '-D', dirs.junk] },
    // The flags around the unknown one are harmless if it were ignored: a free pid, a detached restore.
    { what: 'an unknown flag to dump', args: () => ['dump', '--frobnicate', '-t', String(unusedPid()), '-D', makeWorkDir('img')] },
    { what: 'an unknown flag to restore', args: () => ['restore', '--frobnicate', '-d', '-D', dirs.empty] },
    { what: 'an unknown command', args: () => ['frobnicate'] },
  ];

  for (const { what, args, restores } of cases) {
    test(what, SLOW, async () => {
      assertCleanError(ckpt(args()));
      // A failed restore kills whatever it created (reaping may take PID 1 a moment).
      if (restores) await waitGone(imagePid);
    });
  }

  test('restore of an image whose page data fails its CRC: one line, and what it made is killed', SLOW, async () => {
    // A small image's pages are checked while the first process reads them in: after it exists.
    assertCleanError(ckpt(['restore', '-d', '-D', dirs.flippedPages]), 'fails its CRC');
    await waitGone(imagePid);
  });

  test('the untouched image still restores (the failures above were the input\'s fault)', SLOW, async () => {
    const pid = restoreDetachedOk(dirs.image, join(makeWorkDir('pidfile'), 'pid'));
    assert.equal(pid, imagePid);
  });
});

describe('three dump/restore cycles in a row', () => {
  test('mem.c: dump → restore -d --pidfile, three times; PASS and a growing counter after each', SLOW, async () => {
    const { dir, pid } = await startChecked('mem');
    let last = readCounter(dir);
    for (let cycle = 1; cycle <= 3; cycle++) {
      const image = makeWorkDir(`img-${cycle}`);
      await dumpOk(pid, image);
      const restored = restoreDetachedOk(image, join(makeWorkDir('pidfile'), 'pid'));
      assert.equal(restored, pid, `cycle ${cycle}: restored under another pid`);
      const report = await requestCheck(dir, AFTER_RESTORE);
      assert.match(report, /^PASS /, `cycle ${cycle}: ${report}`);
      assert.ok(reportedCounter(report) >= last, `cycle ${cycle}: counter went back from ${last}: ${report}`);
      last = await waitCounterAbove(dir, reportedCounter(report));
    }
  });
});

describe('show', () => {
  let image = '';
  let pid = 0;
  before(async () => {
    ({ image, pid } = await makeSmallImage());
  });

  test('show -D DIR prints the task: its pid and comm', () => {
    const r = ckpt(['show', '-D', image]);
    assertSuccess(r, 'ckpt show');
    assert.match(r.stdout, new RegExp(`\\b${pid}\\b`), r.stdout);
    assert.match(r.stdout, /\bblocked\b/, r.stdout);
  });

  test('show --json prints JSON holding the pid, and fields named pid, tgid, comm, uid', () => {
    const r = ckpt(['show', '-D', image, '--json']);
    assertSuccess(r, 'ckpt show --json');
    const json: unknown = JSON.parse(r.stdout);
    const found = collectKeys(json);
    for (const key of ['pid', 'tgid', 'comm', 'uid']) assert.ok(found.has(key), `no field '${key}' in: ${r.stdout.slice(0, 2000)}`);
    assert.ok([...(found.get('pid') ?? [])].some((v) => Number(v) === pid), `pid ${pid} is not the value of any 'pid' field`);
    assert.ok([...(found.get('comm') ?? [])].includes('blocked'), `comm 'blocked' is not the value of any 'comm' field`);
  });
});

/** Every key anywhere in a JSON value, with the scalar values it holds. */
function collectKeys(value: unknown, into = new Map<string, Set<unknown>>()): Map<string, Set<unknown>> {
  if (Array.isArray(value)) for (const item of value) collectKeys(item, into);
  else if (value !== null && typeof value === 'object') {
    for (const [key, inner] of Object.entries(value)) {
      if (!into.has(key)) into.set(key, new Set());
      if (inner === null || typeof inner !== 'object') into.get(key)!.add(inner);
      collectKeys(inner, into);
    }
  }
  return into;
}
