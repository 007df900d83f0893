/**
 * Whole containers (issue 4, acceptance 3): `ckpt run -- sh -c LOOP`, a
 * shell loop that starts children; dump the container; restore it twice side
 * by side: both clones carry on, each its own PID 1 with the same hostname,
 * and SysV IPC objects come back with their ids in each.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import { assertPass, assertSuccess, ckpt, ckptBackground, cleanup, compile, requestCheck, waitReady, killAll, makeWorkDir, trackExact, waitFor, waitGone } from './lib/index.js';
import { runDetached } from './lib/run.js';

afterEach(() => killAll());
after(cleanup);

const SLOW = { timeout: 180_000 };

/** Lines "PID I HOSTNAME" the loop appended, parsed. */
function lines(file: string): { pid: number; i: number; host: string }[] {
  let text = '';
  try { text = readFileSync(file, 'utf8'); } catch { return []; }
  return text.trim().split('\n').filter(Boolean).map((l) => {
    const [pid, i, host] = l.split(' ');
    return { pid: Number(pid), i: Number(i), host };
  });
}

const nspid = (hostPid: number) => /^NSpid:\s+(.*)$/m.exec(readFileSync(`/proc/${hostPid}/status`, 'utf8'))![1].trim().split(/\s+/).map(Number);

describe('containers', () => {
  test('ckpt run -- sh -c LOOP: dumped, restored twice side by side, both clones carry on as PID 1 with the container hostname', SLOW, async () => {
    const dir = makeWorkDir('container');
    const log = join(dir, 'log');
    // Every turn starts children (command substitutions and sleep) and appends one line.
    const loop = `echo ckpt-ct > /proc/sys/kernel/hostname; ipcmk -M 8192 >/dev/null; ipcmk -S 3 >/dev/null; ipcmk -Q >/dev/null; i=0; while :; do i=$((i+1)); echo "$$ $i $(cat /proc/sys/kernel/hostname)" >> ${log}; sleep 0.1; done`;
    const init = await runDetached(dir, ['sh', '-c', loop], 'sh');
    await waitFor('the loop to run 5 turns', () => (lines(log).length >= 5 ? true : undefined), 30_000);
    assert.deepEqual(nspid(init).slice(-1), [1]);

    const image = makeWorkDir('img');
    const dump = ckpt(['dump', '-t', String(init), '-D', image]);
    assertSuccess(dump, 'dump of the container');
    await waitGone(init);
    const atDump = Math.max(...lines(log).map((l) => l.i));

    // Two restores of one image at the same time.
    const restores = [1, 2].map((n) => ({ pidfile: join(dir, `clone${n}.pid`), bg: ckptBackground(['restore', '-d', '-D', image, '--pidfile', join(dir, `clone${n}.pid`)]) }));
    const clones: number[] = [];
    for (const [n, { pidfile, bg }] of restores.entries()) {
      assertSuccess(await bg.exited, `restore ${n + 1}`);
      const host = Number(readFileSync(pidfile, 'utf8'));
      trackExact(host);
      clones.push(host);
    }
    assert.notEqual(clones[0], clones[1]);
    for (const host of clones) assert.deepEqual(nspid(host), [host, 1], `clone ${host} is PID 1 of its own pid namespace`);
    // Both clones append the turns after the dump: each turn number twice.
    const turn = atDump + 4;
    await waitFor(`both clones to reach turn ${turn}`, () => (lines(log).filter((l) => l.i === turn).length === 2 ? true : undefined), 30_000);
    for (const l of lines(log)) {
      assert.equal(l.pid, 1, `the shell sees itself as PID 1: ${JSON.stringify(l)}`);
      assert.equal(l.host, 'ckpt-ct', `the hostname set inside the container: ${JSON.stringify(l)}`);
    }
    for (const host of clones) {
      const name = spawnSync('nsenter', ['-t', String(host), '-u', 'cat', '/proc/sys/kernel/hostname'], { encoding: 'utf8' });
      assert.equal(name.stdout.trim(), 'ckpt-ct', name.stderr);
      // The SysV IPC objects made inside, in each clone's own ipc namespace, with their ids.
      const ipcs = spawnSync('nsenter', ['-t', String(host), '-i', 'ipcs'], { encoding: 'utf8' });
      for (const [what, re] of [['shm', /^0x[0-9a-f]+ 0\s+root\s+644\s+8192\s/m], ['sem', /^0x[0-9a-f]+ 0\s+root\s+644\s+3\s*$/m], ['msg', /^0x[0-9a-f]+ 0\s+root\s+644\s+0\s+0\s*$/m]] as const) {
        assert.match(ipcs.stdout, re, `clone ${host}: the ${what} object is not back: ${ipcs.stdout}`);
      }
    }
    for (const host of clones) process.kill(host, 'SIGKILL');
  });

  test('a SysV shared memory segment attached by a container\'s init and its child is one segment again after restore', SLOW, async () => {
    const dir = makeWorkDir('shm2');
    const init = await runDetached(dir, [compile('shm2'), dir], 'shm2');
    await waitReady(dir);
    assertPass(await requestCheck(dir));
    const image = makeWorkDir('img');
    assertSuccess(ckpt(['dump', '-t', String(init), '-D', image]), 'dump of the container');
    await waitGone(init);
    const pidfile = join(dir, 'restored.pid');
    assertSuccess(ckpt(['restore', '-d', '-D', image, '--pidfile', pidfile]), 'restore');
    const host = Number(readFileSync(pidfile, 'utf8'));
    trackExact(host);
    assertPass(await requestCheck(dir, { timeoutMs: 60_000 }));
    process.kill(host, 'SIGKILL');
  });
});

