/**
 * A small dump onto tmpfs allocates its pages.img ahead, on a thread of its
 * own (dump/page-pump.ts preallocate): the image holds exactly the pages
 * written and restores; a dump onto a disk allocates nothing ahead; and a dump
 * that fails at any step, on either, joins that thread and closes every fd it
 * opened (a library process lives on after it).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import { dumpSync } from '../src/dump/dump.js';
import { FAULT_STEPS } from '../src/fault.js';
import {
  assertPass, assertSuccess, ckpt, cleanup, compile, isRunning, killAll, makeWorkDir, readCounter, requestCheck,
  restoreDetachedOk, track, tracerPid, waitCounterAbove, waitGone, waitReady,
} from './lib/index.js';

afterEach(() => killAll());
after(cleanup);

const SLOW = { timeout: 120_000 };
/** Small enough for the small dump's copy (under 48 MiB), large enough to be allocated ahead. */
const MIB = 12;

/** api-mem.c holding MIB MiB, as an orphan: this process may then dump it itself (dumpSync). */
async function startMem(): Promise<{ pid: number; dir: string }> {
  const binary = compile('api-mem');
  const dir = makeWorkDir('tmpfs-pages');
  const r = spawnSync('sh', ['-c', '"$0" "$@" </dev/null >/dev/null 2>&1 & echo $!', binary, dir, String(MIB)], { encoding: 'utf8' });
  const pid = Number.parseInt(r.stdout, 10);
  assert.ok(pid > 0, `cannot start api-mem: ${r.stderr}`);
  track(pid, basename(binary));
  await waitReady(dir, { pid, timeoutMs: 20_000 });
  assertPass(await requestCheck(dir));
  return { pid, dir };
}

function onTmpfs(label: string): string {
  return mkdtempSync(join('/dev/shm', `ckpt-${label}-`));
}

function openFds(): string[] {
  return readdirSync('/proc/self/fd').sort();
}

describe('a small dump onto tmpfs', () => {
  test(`api-mem.c ${MIB}: pages.img allocated ahead, cut to the pages written; the image restores and PASSes`, SLOW, async () => {
    const root = onTmpfs('img');
    try {
      const { pid, dir } = await startMem();
      const image = join(root, 'image');
      const r = ckpt(['dump', '-t', String(pid), '-D', image, '-v', '--json']);
      assertSuccess(r, 'dump onto tmpfs');
      const ahead = /pages\.img allocated ahead on tmpfs: ([\d.]+) MiB/.exec(r.stderr);
      assert.ok(ahead, `the dump did not allocate pages.img ahead: ${r.stderr}`);
      assert.ok(Number(ahead[1]) >= MIB, `allocated ${ahead[1]} MiB ahead for ${MIB} MiB`);
      const { bytes } = JSON.parse(r.stdout) as { bytes: number };
      const st = statSync(join(image, 'pages.img'));
      assert.equal(st.size, 4096 + bytes, 'pages.img is its header and the pages written, no more');
      assert.ok(st.blocks * 512 <= st.size, `${st.blocks * 512} bytes allocated for a ${st.size}-byte pages.img`);
      const counter = readCounter(dir);
      await waitGone(pid);
      assert.equal(restoreDetachedOk(image, join(makeWorkDir('pidfile'), 'pid')), pid);
      await waitCounterAbove(dir, counter);
      assertPass(await requestCheck(dir));
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test(`api-mem.c ${MIB} onto a disk: nothing allocated ahead`, SLOW, async () => {
    const { pid } = await startMem();
    const image = join(makeWorkDir('disk-img'), 'image');
    const r = ckpt(['dump', '-t', String(pid), '-D', image, '-v']);
    assertSuccess(r, 'dump onto a disk');
    assert.doesNotMatch(r.stderr, /allocated ahead/);
  });
});

describe('a dump that fails at any step closes what it opened', () => {
  for (const fs of ['tmpfs', 'disk'] as const) {
    test(`in this process (dumpSync), onto ${fs}: no fd left open, no image, the process runs on`, SLOW, async () => {
      const root = fs === 'tmpfs' ? onTmpfs('fail') : makeWorkDir('fail');
      const { pid, dir } = await startMem();
      const before = openFds();
      try {
        for (const step of FAULT_STEPS.dump) {
          for (const leaveRunning of [false, true]) {
            const image = join(root, `${step}${leaveRunning ? '-R' : ''}`);
            process.env.CKPT_FAULT = `dump:${step}`;
            try {
              assert.throws(() => dumpSync({ pid, dir: image, leaveRunning }), /injected fault/);
            } finally {
              delete process.env.CKPT_FAULT;
            }
            const what = `a dump${leaveRunning ? ' -R' : ''} that failed at ${step}`;
            assert.deepEqual(openFds(), before, `${what} left fds open`);
            assert.ok(!existsSync(image) && !existsSync(`${image}.partial`), `${what} left an image`);
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
});
