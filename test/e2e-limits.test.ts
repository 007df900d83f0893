/**
 * What the machine refuses: a restore by a user without the needed
 * capability, and a dump onto a filesystem that fills up. Both fail with one
 * line; nothing is left behind and the dumped process runs on.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import {
  assertCleanError, assertPass, CLI, cleanup, dumpOk, isRunning, killAll, makeWorkDir, readCounter,
  requestCheck, startChecked, tracerPid, waitCounterAbove, waitGone,
} from './lib/index.js';

afterEach(() => killAll());
after(cleanup);

const SLOW = { timeout: 120_000 };

describe('refusals the machine imposes', () => {
  test('a restore run by an unprivileged user (nobody) is refused with the reason, and creates nothing', SLOW, async () => {
    const { pid } = await startChecked('blocked', ['nanosleep']);
    const image = makeWorkDir('img');
    await dumpOk(pid, image);
    await waitGone(pid);
    // nobody must be able to read the image and run ckpt to reach the check at all
    for (const p of [image, join(image, 'ckpt.img'), join(image, 'pages.img')]) chmodSync(p, 0o755);
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, CLI, 'restore', '-D', image], { encoding: 'utf8' });
    assertCleanError({ status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr }, /restore needs CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN/);
    assert.equal(r.status, 8);
    assert.ok(!existsSync(`/proc/${pid}`), 'a refused restore created the process');
  });

  // mem.c (68 MiB) and api-mem.c at 12 MiB: the page copy's writes run on glibc's AIO thread, several in flight.
  for (const [name, args] of [['mem', []], ['api-mem', ['12']]] as [string, string[]][]) {
    test(`a dump of ${[`${name}.c`, ...args].join(' ')} onto a filesystem that fills up fails with ENOSPC; the process runs on and no image is left`, SLOW, async (t) => {
      await dumpOntoFullFs(t, name, args);
    });
  }
});

/** A dump of program NAME onto a 4 MiB tmpfs: one ENOSPC line, and the process runs on intact. */
async function dumpOntoFullFs(t: { skip(msg: string): void }, name: string, args: string[]): Promise<void> {
  const mnt = mkdtempSync(join(tmpdir(), 'ckpt-small-fs-'));
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt], { encoding: 'utf8' });
  if (m.status !== 0) {
    t.skip(`cannot mount a small tmpfs here: ${m.stderr.trim()}`);
    return;
  }
  try {
    const { dir, pid } = await startChecked(name, args);
    const counter = readCounter(dir);
    const image = join(mnt, 'img');
    const r = spawnSync(process.execPath, [CLI, 'dump', '-t', String(pid), '-D', image], { encoding: 'utf8' });
    assertCleanError({ status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr }, /ENOSPC/);
    assert.ok(!existsSync(image) && !existsSync(`${image}.partial`), 'a failed dump left an image directory');
    assert.ok(isRunning(pid), 'the process did not survive a failed dump');
    assert.equal(tracerPid(pid), 0);
    await waitCounterAbove(dir, counter);
    assertPass(await requestCheck(dir));
  } finally {
    spawnSync('umount', [mnt]);
    rmSync(mnt, { recursive: true, force: true });
  }
}
