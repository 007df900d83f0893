/**
 * Safety: whatever goes wrong, ckpt leaves the process it dumps as it was, never
 * leaves something that looks like an image, never leaves a process behind after
 * a failed restore, and never changes an image it reads.
 *
 *  - every dump step made to fail (CKPT_FAULT=dump:STEP, src/fault.ts), with and
 *    without -R: one clear line, the process runs on untraced and intact (same
 *    maps, fds and signal state), no DIR and no DIR.partial;
 *  - every restore step made to fail (CKPT_FAULT=restore:STEP): one clear line, no
 *    process with the saved pid, no leftover process, the image byte for byte the
 *    same, and it still restores;
 *  - pids and arguments ckpt must refuse: a kernel thread, a zombie, a thread that
 *    is not a process, pids that are not numbers, missing -t or -D, a DIR that
 *    holds an image (and --force);
 *  - two dumps of one process at once;
 *  - image file modes, and symlinks planted where the image goes.
 *
 * Pid 1 is never dumped: here it may be the init that runs this machine.
 * Programs run under names of their own (uniqueBinary), so that the scans for
 * leftover processes cannot see a concurrent test run's programs.
 */
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
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
  restoreDetachedOk,
  startProgram,
  threadCount,
  tracerPid,
  waitGone,
  waitReady,
} from './lib/index.js';
import {
  addressSpaceAndFds,
  ckptEnv,
  cpuMasks,
  diffDigests,
  leftovers,
  makeZombie,
  problemsOf,
  signalState,
  treeDigest,
  uniqueBinary,
} from './lib/safety.js';
import { FAULT_STEPS } from '../src/fault.js';

after(cleanup);

const SLOW = { timeout: 120_000 };
const AFTER_RESTORE = { timeoutMs: 60_000 };

interface Program {
  dir: string;
  pid: number;
  comm: string;
}

/** Starts test/programs/NAME.c under a unique name and waits for a first PASS. */
async function startChecked(name: string, args: string[] = [], cflags: string[] = []): Promise<Program> {
  const binary = uniqueBinary(name, cflags);
  const dir = makeWorkDir(name);
  const { pid } = startProgram(binary, [dir, ...args]);
  await waitReady(dir, { pid });
  assertPass(await requestCheck(dir));
  return { dir, pid, comm: basename(binary) };
}

/** A path for an image that does not exist yet, in a fresh work dir. */
function newImageDir(label = 'img'): string {
  return join(makeWorkDir(label), 'image');
}

async function assertFine(p: Program, what: string): Promise<void> {
  const problems = await problemsOf(p.pid, p.dir);
  assert.deepEqual(problems, [], `${what}: ${problems.join('; ')}`);
}

function assertNoImage(dir: string, what: string): void {
  assert.ok(!existsSync(dir), `${what}: ${dir} exists`);
  assert.ok(!existsSync(`${dir}.partial`), `${what}: ${dir}.partial exists`);
}

describe('a dump that fails at any step leaves the process as it was and no image', () => {
  let p: Program;
  let layout = '';
  let signals = '';
  let cpus = '';
  before(async () => {
    p = await startChecked('mem');
    layout = addressSpaceAndFds(p.pid);
    signals = signalState(p.pid);
    cpus = cpuMasks(p.pid);
  });
  after(() => killAll());

  for (const leaveRunning of [false, true]) {
    for (const step of FAULT_STEPS.dump) {
      const flags = leaveRunning ? ['-R'] : [];
      test(`CKPT_FAULT=dump:${step} ckpt dump ${flags.join(' ')}`.trimEnd(), SLOW, async () => {
        const image = newImageDir();
        const r = ckptEnv(['dump', '-t', String(p.pid), '-D', image, ...flags], { CKPT_FAULT: `dump:${step}` });
        assertCleanError(r, `dump:${step}`);
        assert.ok(isRunning(p.pid), `the process is gone after a dump that failed at ${step}`);
        assert.equal(tracerPid(p.pid), 0, `still traced after a dump that failed at ${step}`);
        assertNoImage(image, `a dump that failed at ${step}`);
        assert.equal(signalState(p.pid), signals, `the signal state changed after a dump that failed at ${step}`);
        assert.equal(addressSpaceAndFds(p.pid), layout, `the maps or fds changed after a dump that failed at ${step}`);
        assert.equal(cpuMasks(p.pid), cpus, `the CPU masks changed after a dump that failed at ${step}`);
        await assertFine(p, `after a dump that failed at ${step}`);
      });
    }
  }

  test('after all those failures, a real dump succeeds and its image restores and PASSes', SLOW, async () => {
    const image = newImageDir();
    await dumpOk(p.pid, image);
    const saved = readCounter(p.dir);
    const pid = restoreDetachedOk(image, join(makeWorkDir('pidfile'), 'pid'));
    assert.equal(pid, p.pid);
    const report = await requestCheck(p.dir, AFTER_RESTORE);
    assertPass(report);
    assert.ok(reportedCounter(report) >= saved, `counter went back: ${saved} at dump, then ${report}`);
  });
});

describe('a restore that fails at any step leaves no process behind and the image unchanged', () => {
  let p: Program;
  let image = '';
  let digest = new Map<string, string>();
  before(async () => {
    p = await startChecked('mem');
    image = newImageDir();
    await dumpOk(p.pid, image);
    digest = treeDigest(image);
    assert.ok(digest.has('ckpt.img'), `no ckpt.img in ${[...digest.keys()].join(', ')}`);
  });
  after(() => killAll());

  for (const step of FAULT_STEPS.restore) {
    test(`CKPT_FAULT=restore:${step} ckpt restore`, SLOW, async () => {
      const r = ckptEnv(['restore', '-D', image], { CKPT_FAULT: `restore:${step}` }, 30_000);
      assertCleanError(r, `restore:${step}`);
      await waitGone(p.pid);
      assert.deepEqual(await leftovers({ args: [p.dir, image], comms: [p.comm] }), [], `leftovers after a restore that failed at ${step}`);
      assert.deepEqual(diffDigests(digest, treeDigest(image)), [], `the image changed in a restore that failed at ${step}`);
    });
  }

  test('the image restores and PASSes afterwards', SLOW, async () => {
    const pid = restoreDetachedOk(image, join(makeWorkDir('pidfile'), 'pid'));
    assert.equal(pid, p.pid);
    assertPass(await requestCheck(p.dir, AFTER_RESTORE));
    assert.deepEqual(diffDigests(digest, treeDigest(image)), [], 'the image changed in a successful restore');
  });
});

describe('pids ckpt must not dump, and bad arguments: one line, a non-zero exit, nothing touched', () => {
  after(() => killAll());

  test('a kernel thread (pid 2, kthreadd)', (t) => {
    const name = /^Name:\s*(\S+)/m.exec(readFileSync('/proc/2/status', 'utf8'))?.[1];
    if (name !== 'kthreadd') {
      t.skip(`pid 2 is ${name}, not kthreadd`);
      return;
    }
    const r = ckpt(['dump', '-t', '2', '-D', newImageDir(), '-R']);
    assertCleanError(r, 'kernel thread');
    assert.equal(r.status, 3);
    assert.equal(tracerPid(2), 0);
  });

  test('a zombie', SLOW, async () => {
    const { parent, zombie } = await makeZombie();
    const image = newImageDir();
    const r = ckpt(['dump', '-t', String(zombie), '-D', image]);
    assertCleanError(r, 'zombie');
    assert.equal(r.status, 3);
    assertNoImage(image, 'the refused dump of a zombie');
    assert.equal(procInfo(zombie)?.state, 'Z', 'the zombie is no longer a zombie');
    assert.equal(procInfo(zombie)?.ppid, parent);
    assert.ok(isRunning(parent));
  });

  test('a thread that is not the leader of its process (threads.c)', SLOW, async () => {
    const p = await startChecked('threads', [], ['-pthread']);
    const tids = readdirSync(`/proc/${p.pid}/task`).map(Number).filter((tid) => tid !== p.pid);
    assert.equal(tids.length, 1, `threads.c has ${tids.length + 1} threads`);
    const image = newImageDir();
    for (const flags of [[], ['-R']]) {
      const r = ckpt(['dump', '-t', String(tids[0]), '-D', image, ...flags]);
      assertCleanError(r, `thread of process ${p.pid}`);
      assert.equal(r.status, 3);
      assertNoImage(image, 'the refused dump of a thread');
    }
    assert.equal(tracerPid(tids[0]), 0);
    assert.equal(threadCount(p.pid), 2);
    await assertFine(p, 'after the refused dumps of its thread');
  });

  for (const bad of ['abc', '12x', '0', '-5', '1.5', '0x10', '', '99999999999999999999']) {
    test(`-t ${JSON.stringify(bad)}: not a pid`, () => {
      const image = newImageDir();
      const r = ckpt(['dump', '-t', bad, '-D', image]);
      assertCleanError(r);
      assert.equal(r.status, 2, r.stderr);
      assertNoImage(image, `dump -t ${JSON.stringify(bad)}`);
    });
  }

  test('-t missing, -D missing', SLOW, async () => {
    const p = await startChecked('blocked', ['nanosleep']);
    const image = newImageDir();
    const noPid = ckpt(['dump', '-D', image]);
    assertCleanError(noPid, '-t');
    assert.equal(noPid.status, 2);
    assertNoImage(image, 'dump without -t');
    for (const flags of [[], ['-R']]) {
      const noDir = ckpt(['dump', '-t', String(p.pid), ...flags]);
      assertCleanError(noDir, '-D');
      assert.equal(noDir.status, 2);
    }
    const restoreNoDir = ckpt(['restore', '-d']);
    assertCleanError(restoreNoDir, '-D');
    assert.equal(restoreNoDir.status, 2);
    await assertFine(p, 'after dumps without -D');
  });

  test('a DIR that holds an image: refused without --force (image untouched), replaced with --force (and the new one restores)', SLOW, async () => {
    const p = await startChecked('mem');
    const image = newImageDir();
    await dumpOk(p.pid, image, '-R');
    const first = treeDigest(image);
    const counterAtFirst = readCounter(p.dir);

    const refused = ckpt(['dump', '-t', String(p.pid), '-D', image, '-R']);
    assertCleanError(refused, 'already holds an image');
    assert.equal(refused.status, 6);
    assert.deepEqual(diffDigests(first, treeDigest(image)), [], 'a refused dump changed the image already there');
    assert.ok(!existsSync(`${image}.partial`));
    await assertFine(p, 'after the refused dump');

    // Without -R: the dump with --force kills the process, and only its image can bring it back.
    const counterBefore = readCounter(p.dir);
    assert.ok(counterBefore > counterAtFirst);
    await dumpOk(p.pid, image, '--force');
    assert.notDeepEqual(treeDigest(image), first, 'the forced dump left the old image');
    assert.ok(!existsSync(`${image}.partial`), 'DIR.partial left behind');
    assert.ok(!existsSync(`${image}.replaced`), 'DIR.replaced left behind');
    const pid = restoreDetachedOk(image, join(makeWorkDir('pidfile'), 'pid'));
    assert.equal(pid, p.pid);
    const report = await requestCheck(p.dir, AFTER_RESTORE);
    assertPass(report);
    assert.ok(reportedCounter(report) >= counterBefore, `restored from the old image? counter ${counterBefore} before the forced dump, then ${report}`);
  });
});

describe('two dumps of one process at once', () => {
  after(() => killAll());

  // Only one can hold the process frozen at a time; a dump -R that copies ahead
  // (src/dump/precopy.ts) holds it for two short moments, so both may succeed.
  test('dump -R twice at the same time: each succeeds or fails with one line; the process is fine and each image restores', SLOW, async () => {
    const p = await startChecked('mem');
    const images = [newImageDir('img-a'), newImageDir('img-b')];
    const runs = images.map((image) => ckptBackground(['dump', '-R', '-t', String(p.pid), '-D', image]));
    const results = await Promise.all(runs.map((r) => r.exited));
    const story = results.map((r, i) => `#${i}: status ${r.status} stderr ${JSON.stringify(r.stderr)}`).join('; ');
    assert.ok(results.some((r) => r.status === 0), `neither dump succeeded: ${story}`);
    for (const [i, r] of results.entries()) {
      if (r.status === 0) {
        assert.ok(existsSync(join(images[i], 'ckpt.img')), `dump #${i} succeeded but left no image`);
        assert.ok(!existsSync(`${images[i]}.partial`));
      } else {
        assertCleanError(r);
        assertNoImage(images[i], `dump #${i}, which failed`);
      }
    }
    await assertFine(p, 'after two dumps at once');

    for (const [i, r] of results.entries()) {
      if (r.status !== 0) continue;
      process.kill(p.pid, 'SIGKILL');
      await waitGone(p.pid);
      assert.equal(restoreDetachedOk(images[i], join(makeWorkDir('pidfile'), 'pid')), p.pid, `image #${i}`);
      assertPass(await requestCheck(p.dir, AFTER_RESTORE));
    }
  });
});

describe('the image directory', () => {
  let p: Program;
  before(async () => {
    p = await startChecked('blocked', ['nanosleep']);
  });
  after(() => killAll());

  test('DIR is 0700 and every file in it 0600, even under umask 0', SLOW, async () => {
    const image = newImageDir();
    const old = process.umask(0);
    let r;
    try {
      r = ckpt(['dump', '-R', '-t', String(p.pid), '-D', image]);
    } finally {
      process.umask(old);
    }
    assertSuccess(r, 'dump -R');
    assert.equal(statSync(image).mode & 0o7777, 0o700, `mode of ${image}`);
    const entries = [...treeDigest(image)];
    assert.ok(entries.length >= 2, `too few files: ${entries.map(([k]) => k).join(', ')}`);
    for (const [name, what] of entries) assert.match(what, /^file 600 /, `${name}: ${what}`);
    await assertFine(p, 'after the dump');
  });

  test('a symlink planted as DIR.partial is replaced, not written through', SLOW, async () => {
    const victim = makeWorkDir('victim');
    writeFileSync(join(victim, 'precious'), 'do not touch\n');
    const before = treeDigest(victim);
    const image = newImageDir();
    symlinkSync(victim, `${image}.partial`);
    const r = ckpt(['dump', '-R', '-t', String(p.pid), '-D', image]);
    assertSuccess(r, 'dump -R with a symlink as DIR.partial');
    assert.deepEqual(diffDigests(before, treeDigest(victim)), [], 'the dump wrote through the symlink');
    assert.ok(lstatSync(image).isDirectory(), 'DIR is not a real directory');
    assert.ok(existsSync(join(image, 'ckpt.img')));
    assert.ok(!existsSync(`${image}.partial`) && !isLink(`${image}.partial`), 'DIR.partial left behind');
    assert.equal(statSync(image).mode & 0o7777, 0o700);
    await assertFine(p, 'after the dump');
  });

  test('a symlink planted as DIR.partial that dangles, or points at a file, is replaced too', SLOW, async () => {
    const victim = makeWorkDir('victim');
    writeFileSync(join(victim, 'file'), 'do not touch\n');
    const before = treeDigest(victim);
    for (const target of [join(victim, 'missing'), join(victim, 'file')]) {
      const image = newImageDir();
      symlinkSync(target, `${image}.partial`);
      const r = ckpt(['dump', '-R', '-t', String(p.pid), '-D', image]);
      assertSuccess(r, `dump -R with DIR.partial a symlink to ${target}`);
      assert.ok(lstatSync(image).isDirectory());
      assert.ok(!isLink(`${image}.partial`));
    }
    assert.deepEqual(diffDigests(before, treeDigest(victim)), [], 'the dump wrote through a symlink');
    await assertFine(p, 'after the dumps');
  });

  test('DIR itself a symlink to an empty directory: refused, nothing written there', SLOW, async () => {
    const victim = makeWorkDir('victim');
    const image = newImageDir();
    symlinkSync(victim, image);
    const r = ckpt(['dump', '-R', '-t', String(p.pid), '-D', image]);
    assertCleanError(r, 'not a directory');
    assert.deepEqual(readdirSync(victim), [], 'the dump wrote into the symlink\'s target');
    assert.ok(!existsSync(`${image}.partial`));
    await assertFine(p, 'after the refused dump');
  });

  test('DIR a regular file, or a non-empty directory without an image: refused, left as it was', SLOW, async () => {
    const file = newImageDir();
    writeFileSync(file, 'a file\n');
    assertCleanError(ckpt(['dump', '-R', '-t', String(p.pid), '-D', file]), 'not a directory');
    assert.equal(readFileSync(file, 'utf8'), 'a file\n');
    const other = newImageDir();
    mkdirSync(other);
    writeFileSync(join(other, 'notes'), 'mine\n');
    const digest = treeDigest(other);
    assertCleanError(ckpt(['dump', '-R', '-t', String(p.pid), '-D', other, '--force']), 'holds no image');
    assert.deepEqual(diffDigests(digest, treeDigest(other)), []);
    assert.ok(!existsSync(`${file}.partial`) && !existsSync(`${other}.partial`));
    await assertFine(p, 'after the refused dumps');
  });
});

function isLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}
