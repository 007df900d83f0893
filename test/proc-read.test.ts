import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync, realpathSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as proc from '../src/proc/index.js';

const pid = process.pid;

test('readers on the running test process', () => {
  const maps = proc.readMaps(pid);
  const vdso = maps.find((v) => v.path === '[vdso]');
  assert.ok(vdso, '[vdso] mapped');
  assert.ok(maps.some((v) => v.path === realpathSync(process.execPath)), 'node itself mapped');
  assert.ok(proc.readSmaps(pid).some((v) => v.path === '[vdso]' && v.vmFlags.includes('ex')));

  const auxv = proc.parseAuxv(proc.readAuxv(pid));
  assert.deepEqual(auxv.find(([t]) => t === proc.AT_PAGESZ), [proc.AT_PAGESZ, 4096n]);
  assert.equal(auxv.find(([t]) => t === proc.AT_SYSINFO_EHDR)![1], BigInt(vdso.start));

  const status = proc.readStatus(pid);
  assert.equal(status.pid, pid);
  assert.equal(status.tgid, pid);
  assert.equal(status.ppid, process.ppid);
  const stat = proc.readStat(pid);
  assert.equal(stat.pid, pid);
  assert.equal(stat.ppid, process.ppid);
  assert.equal(stat.comm, proc.readComm(pid));
  assert.equal(status.name, proc.readComm(pid));

  const limits = proc.readLimits(pid);
  assert.equal(limits.length, 16);
  assert.equal(limits[7]!.name, 'Max open files');

  const tids = proc.readTids(pid);
  assert.ok(tids.includes(pid));
  assert.deepEqual(tids, [...tids].sort((a, b) => a - b));

  assert.equal(proc.readExe(pid), realpathSync(process.execPath));
  assert.equal(proc.readCwd(pid), process.cwd());
  assert.equal(proc.readRoot(pid), '/');
  assert.equal(proc.readCmdline(pid).toString().split('\0')[0], process.argv0);
  assert.deepEqual(proc.readEnviron(pid), readFileSync('/proc/self/environ'));
});

test('fd readers on an fd this process opened', () => {
  const path = fileURLToPath(new URL('../../test/fixtures/proc/maps-edge.txt', import.meta.url));
  const fd = openSync(path, 'r');
  try {
    const fds = proc.readFdList(pid);
    assert.ok(fds.includes(0) && fds.includes(fd));
    assert.deepEqual(fds, [...fds].sort((a, b) => a - b));
    assert.equal(proc.readFdLink(pid, fd), realpathSync(path));
    const info = proc.readFdinfo(pid, fd);
    assert.equal(info.pos, 0);
    assert.equal(info.flags & 3, 0, 'O_RDONLY');
  } finally {
    closeSync(fd);
  }
});

test('readChildren sees a child of this process', async () => {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  try {
    await new Promise((resolve) => child.once('spawn', resolve));
    // libuv forks from the thread that runs the loop: the main thread, tid == pid
    assert.ok(proc.readChildren(pid).includes(child.pid!));
    assert.ok(proc.readChildren(pid, pid).includes(child.pid!));
  } finally {
    child.kill('SIGKILL');
  }
});

function absentPid(): number {
  const max = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
  for (let p = max - 1; p > 1; p--) if (!existsSync(`/proc/${p}`)) return p;
  throw new Error('every pid is taken');
}

test('readers throw ESRCH_PID for a pid that does not exist', () => {
  const gone = absentPid();
  const readers: Array<[string, () => unknown]> = [
    ['readMaps', () => proc.readMaps(gone)],
    ['readSmaps', () => proc.readSmaps(gone)],
    ['readStatus', () => proc.readStatus(gone)],
    ['readStat', () => proc.readStat(gone)],
    ['readLimits', () => proc.readLimits(gone)],
    ['readAuxv', () => proc.readAuxv(gone)],
    ['readTids', () => proc.readTids(gone)],
    ['readChildren', () => proc.readChildren(gone)],
    ['readFdList', () => proc.readFdList(gone)],
    ['readFdLink', () => proc.readFdLink(gone, 0)],
    ['readFdinfo', () => proc.readFdinfo(gone, 0)],
    ['readCmdline', () => proc.readCmdline(gone)],
    ['readEnviron', () => proc.readEnviron(gone)],
    ['readComm', () => proc.readComm(gone)],
    ['readExe', () => proc.readExe(gone)],
    ['readCwd', () => proc.readCwd(gone)],
    ['readRoot', () => proc.readRoot(gone)],
  ];
  for (const [name, read] of readers) {
    assert.throws(read, { name: 'CkptError', code: 'ESRCH_PID', message: `no process ${gone}`, data: { pid: gone } }, name);
  }
});

test('a missing fd or tid of a live process is a SYSCALL error, not ESRCH_PID', () => {
  const cases: Array<[string, () => unknown, string, string]> = [
    ['readFdLink', () => proc.readFdLink(pid, 65535), 'readlink', `/proc/${pid}/fd/65535`],
    ['readFdinfo', () => proc.readFdinfo(pid, 65535), 'open', `/proc/${pid}/fdinfo/65535`],
    ['readChildren', () => proc.readChildren(pid, absentPid()), 'open', ''],
  ];
  for (const [name, read, syscall, path] of cases) {
    assert.throws(read, (e: any) => {
      assert.equal(e.code, 'SYSCALL', name);
      assert.equal(e.data.pid, pid);
      assert.equal(e.data.syscall, syscall);
      assert.equal(e.data.errnoName, 'ENOENT');
      assert.equal(e.data.errno, 2);
      if (path) assert.equal(e.data.path, path);
      return true;
    }, name);
  }
});
