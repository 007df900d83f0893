/**
 * ckpt run: CMD as PID 1 of new pid, mount, uts and ipc namespaces with its
 * own /proc; the host pid first on stdout; the exit status passed on; -d.
 */
import assert from 'node:assert/strict';
import { readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { after, afterEach, describe, test } from 'node:test';
import { assertCleanError, ckpt, ckptBackground, cleanup, killAll, makeWorkDir, track, waitFor, waitGone } from './lib/index.js';
import { runDetached } from './lib/run.js';

afterEach(() => killAll());
after(cleanup);

const nsOf = (pid: number | 'self', kind: string) => readlinkSync(`/proc/${pid}/ns/${kind}`);

describe('ckpt run', () => {
  test('CMD is PID 1 with a private /proc; the host pid comes first on stdout; the exit status is passed on', () => {
    const r = ckpt(['run', '--', 'sh', '-c', 'echo "me=$$"; ps -e -o pid=,comm=; hostname; ls /proc/$$/fd; exit 7']);
    assert.equal(r.status, 7, r.stderr);
    const lines = r.stdout.trim().split('\n');
    const hostPid = Number(lines[0]);
    assert.ok(Number.isInteger(hostPid) && hostPid > 1, `first line is the host pid: ${r.stdout}`);
    assert.equal(lines[1], 'me=1');
    // ps reads /proc: only the container's processes, numbered from 1.
    const ps = lines.slice(2, 4).map((l) => l.trim().split(/\s+/));
    assert.deepEqual(ps.map((p) => p[1]), ['sh', 'ps'], `ps -e inside: ${r.stdout}`);
    assert.equal(ps[0][0], '1');
    assert.ok(Number(ps[1][0]) < 10, `the container numbers its own pids: ${r.stdout}`);
    assert.equal(lines[4], hostname(), 'the new uts namespace starts with the host\'s name');
    // Only ckpt's stdio is passed on.
    assert.deepEqual(lines.slice(5).map(Number).sort(), [0, 1, 2]);
  });

  test('NODE_EXTRA_CA_CERTS: ckpt\'s node never loads it (no TLS here), and CMD still gets it', () => {
    // A file that does not exist: a node that tried to load it would warn on stderr.
    const env = { ...process.env, NODE_EXTRA_CA_CERTS: '/nonexistent/ckpt-test-ca.pem' };
    const r = ckpt(['run', '--', 'sh', '-c', 'echo "ca=$NODE_EXTRA_CA_CERTS saved=${CKPT_EXTRA_CA_CERTS-unset}"'], { env });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.equal(r.stdout.trim().split('\n')[1], 'ca=/nonexistent/ckpt-test-ca.pem saved=unset');
  });

  test('a name in the container stays there; arguments reach CMD as given', () => {
    const r = ckpt(['run', 'sh', '-c', 'hostname inner-box && hostname && echo "$1|$2"', 'sh', '-x', 'two words']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n').slice(1), ['inner-box', '-x|two words']);
    assert.notEqual(hostname(), 'inner-box');
  });

  test('an init killed from the host: ckpt exits 128+9', async () => {
    const bg = ckptBackground(['run', '--', 'sleep', '60']);
    let out = '';
    bg.child.stdout!.on('data', (s: string) => { out += s; });
    const pid = await waitFor('the host pid', () => Number(/^(\d+)\n/.exec(out)?.[1]) || undefined, 10_000);
    track(pid, 'sleep');
    await waitFor('sleep to run', () => (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'sleep' ? true : undefined), 10_000);
    process.kill(pid, 'SIGKILL');
    const r = await bg.exited;
    assert.equal(r.status, 137, r.stderr);
  });

  test('-d returns at once; the init runs on in its own namespaces, reparented', async () => {
    const dir = makeWorkDir('run');
    const t0 = Date.now();
    const pid = await runDetached(dir, ['sleep', '60'], 'sleep');
    assert.ok(Date.now() - t0 < 30_000);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    assert.match(status, /^NSpid:\s+\d+\s+1$/m, 'PID 1 of a pid namespace one level down');
    for (const kind of ['pid', 'mnt', 'uts', 'ipc']) assert.notEqual(nsOf(pid, kind), nsOf('self', kind), `${kind} namespace is new`);
    for (const kind of ['net', 'user', 'cgroup']) assert.equal(nsOf(pid, kind), nsOf('self', kind), `${kind} namespace is the host's`);
    process.kill(pid, 'SIGKILL');
    await waitGone(pid);
  });

  test('bad use is one clean line', () => {
    assertCleanError(ckpt(['run']), 'no command');
    assertCleanError(ckpt(['run', '-x', 'true']), "unknown option '-x'");
    assertCleanError(ckpt(['run', '--', 'no-such-command-here']), 'command not found');
    const dir = makeWorkDir('run-bad');
    writeFileSync(join(dir, 'plain'), 'text\n', { mode: 0o644 });
    assertCleanError(ckpt(['run', join(dir, 'plain')]), 'not an executable file');
    writeFileSync(join(dir, 'junk'), '\x01\x02 not a program\n', { mode: 0o755 });
    assertCleanError(ckpt(['run', join(dir, 'junk')]), /ENOEXEC: execve\(.*junk\) failed/);
  });
});
