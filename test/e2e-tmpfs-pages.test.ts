/**
 * A small dump onto tmpfs (its writes queued on glibc's AIO thread,
 * dump/page-pump.ts): the image holds exactly the pages written and restores;
 * and a dump, onto tmpfs or a disk, failed at any step or not, closes every fd
 * it opened (a library process lives on after it).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import { dumpSync } from '../src/dump/dump.js';
import { FAULT_STEPS } from '../src/fault.js';
import {
  assertPass, assertSuccess, ckpt, cleanup, isRunning, killAll, makeWorkDir, readCounter, requestCheck,
  restoreDetachedOk, startMemOrphan, tracerPid, waitCounterAbove, waitGone,
} from './lib/index.js';

afterEach(() => killAll());
after(cleanup);

const SLOW = { timeout: 120_000 };
/** Large enough for the page copy's ring of writes to go round several times. */
const MIB = 12;

/** api-mem.c holding `mib` MiB, as an orphan: this process may then dump it itself (dumpSync). */
const startMem = (mib = MIB) => startMemOrphan(mib, 'tmpfs-pages');

function onTmpfs(label: string): string {
  return mkdtempSync(join('/dev/shm', `ckpt-${label}-`));
}

/**
 * The fds this process has open, but those of Node's own threads (pipes,
 * eventfds, epoll: each helper thread the page copy keeps has some, and a
 * helper may still be ending its last job).
 */
function openFds(): string[] {
  return readdirSync('/proc/self/fd').flatMap((fd) => {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      return /^(pipe:|anon_inode:\[(eventfd|eventpoll)\])/.test(target) ? [] : [`${fd} ${target}`];
    } catch {
      return []; // the fd of the readdir itself
    }
  }).sort();
}

describe('a small dump onto tmpfs', () => {
  test(`api-mem.c ${MIB}: pages.img holds the pages written, no more; the image restores and PASSes`, SLOW, async () => {
    const root = onTmpfs('img');
    try {
      const { pid, dir } = await startMem();
      const image = join(root, 'image');
      const r = ckpt(['dump', '-t', String(pid), '-D', image, '--json']);
      assertSuccess(r, 'dump onto tmpfs');
      const { bytes } = JSON.parse(r.stdout) as { bytes: number };
      assert.ok(bytes >= MIB * 1024 * 1024, `${bytes} bytes saved of ${MIB} MiB`);
      const st = statSync(join(image, 'pages.img'));
      assert.equal(st.size, 4096 + bytes, 'pages.img is its header and the pages written, no more');
      const counter = readCounter(dir);
      await waitGone(pid);
      assert.equal(restoreDetachedOk(image, join(makeWorkDir('pidfile'), 'pid')), pid);
      await waitCounterAbove(dir, counter);
      assertPass(await requestCheck(dir));
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('a dump closes what it opened, failed at any step or not (a library process lives on after it)', () => {
  // 12 and 64 MiB; with -R, 64 MiB is copied while it runs (dump/precopy.ts).
  for (const mib of [MIB, 64]) {
    for (const fs of ['tmpfs', 'disk'] as const) {
      test(`api-mem.c ${mib}, in this process (dumpSync), onto ${fs}: no fd left open, no image after a failure, the process runs on`, SLOW, async () => {
        const root = fs === 'tmpfs' ? onTmpfs('fail') : makeWorkDir('fail');
        const { pid, dir } = await startMem(mib);
        const before = openFds();
        try {
          for (const step of [...FAULT_STEPS.dump, undefined]) {
            for (const leaveRunning of step === undefined ? [true] : [false, true]) {
              const image = join(root, `${step ?? 'ok'}${leaveRunning ? '-R' : ''}`);
              const what = step === undefined ? 'a dump -R' : `a dump${leaveRunning ? ' -R' : ''} that failed at ${step}`;
              if (step === undefined) {
                dumpSync({ pid, dir: image, leaveRunning });
                rmSync(image, { recursive: true });
              } else {
                process.env.CKPT_FAULT = `dump:${step}`;
                try {
                  assert.throws(() => dumpSync({ pid, dir: image, leaveRunning }), /injected fault/);
                } finally {
                  delete process.env.CKPT_FAULT;
                }
                assert.ok(!existsSync(image) && !existsSync(`${image}.partial`), `${what} left an image`);
              }
              assert.deepEqual(openFds(), before, `${what} left fds open`);
              assert.ok(isRunning(pid), `the process is gone after ${what}`);
              assert.equal(tracerPid(pid), 0, `still traced after ${what}`);
            }
          }
          const counter = readCounter(dir);
          await waitCounterAbove(dir, counter);
          assertPass(await requestCheck(dir));
        } finally {
          delete process.env.CKPT_FAULT;
          if (fs === 'tmpfs') rmSync(root, { recursive: true, force: true });
        }
      });
    }
  }
});
