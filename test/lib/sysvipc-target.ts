/**
 * Run as its own process (it traces a seed, which a test process must not):
 *   node dist/test/lib/sysvipc-target.js FROM_PID SHMB_ID CHECKER
 * Dumps the uts names and SysV IPC of FROM_PID's namespaces, then brings them
 * back in a seed that unshared new uts and ipc namespaces, the way a restore
 * does for a container's init: restoreUts through remote calls,
 * restoreSysvIpc, every /SYSV VMA of FROM_PID attached at its address with
 * attachShmVma (plus a partial attach of one page), finishSysvIpc. Then it
 * reads everything back and runs CHECKER (sysvipc check SHMB_ID) in the new
 * ipc namespace with nsenter. Prints one JSON line.
 */
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { spawnSeed, SEED_GADGET } from '../../src/restore/seed.js';
import { Tracee } from '../../src/ptrace/tracee.js';
import { RemoteCaller } from '../../src/ptrace/remote.js';
import { TraceeMemory } from '../../src/ptrace/memory.js';
import { makeScratch, type RestoreTarget } from '../../src/kinds/target.js';
import { NR } from '../../src/sys/nr.js';
import { CLONE, MAP, PROT, PTRACE_O, SIG } from '../../src/sys/constants.js';
import { tryKill, wait4 } from '../../src/sys/syscalls.js';
import { readMaps } from '../../src/proc/index.js';
import { dumpUts, restoreUts } from '../../src/kinds/uts.js';
import { attachShmVma, dumpSysvIpc, finishSysvIpc, restoreSysvIpc, shmOfVma, type SysvIpc } from '../../src/kinds/sysvipc.js';
import { withShm } from '../../src/sys/sysvipc.js';
import { inNamespaceOf } from '../../src/sys/ns.js';

const [from, shmB, checker] = [Number(process.argv[2]), Number(process.argv[3]), process.argv[4]];

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex').slice(0, 16);
/** What must survive: everything but the kernel's times, pids and attach counts. */
function summary(ipc: SysvIpc) {
  const perm = (f: { key: number; id: number; uid: number; gid: number; mode: number }) => ({ key: f.key, id: f.id, uid: f.uid, gid: f.gid, mode: f.mode & 0o777 });
  return {
    shm: ipc.shm.map((s) => ({ ...perm(s.fields), size: Number(s.fields.size), data: sha(s.data) })),
    sem: ipc.sem.map((s) => ({ ...perm(s.fields), values: s.values })),
    msg: ipc.msg.map((q) => ({ ...perm(q.fields), qbytes: Number(q.fields.qbytes), messages: q.messages.map((m) => [String(m.mtype), m.text.toString('latin1')]) })),
  };
}

const uts = dumpUts(from);
const ipc = dumpSysvIpc(from);
const vmas = readMaps(from).flatMap((v) => {
  const s = shmOfVma(v);
  return s ? [{ ...v, shmid: s.shmid, key: s.key }] : [];
});

const seed = spawnSeed();
try {
  const seedT = Tracee.seize(seed, PTRACE_O.TRACESYSGOOD | PTRACE_O.EXITKILL);
  seedT.interrupt();
  for (;;) { if (seedT.waitStopped().kind === 'event-stop') break; seedT.cont(0); }
  const base = seedT.getRegs();
  const remote = new RemoteCaller(seedT, BigInt(SEED_GADGET), 'int3', base);
  const area = remote.call(NR.mmap, [0, 65536, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS, -1, 0]);
  const mem = new TraceeMemory(seed);
  const t: RestoreTarget = { pid: seed, remote, mem, scratch: makeScratch(mem, area, 65536), log: () => {} };
  remote.call(NR.unshare, [CLONE.NEWUTS | CLONE.NEWIPC], 'unshare');
  restoreUts(t, uts);
  restoreSysvIpc(seed, ipc);
  const sizeOf = (id: number) => Number(ipc.shm.find((s) => s.fields.id === id)!.fields.size);
  for (const v of vmas) attachShmVma(t, { start: v.start, end: v.end, pgoff: v.pgoff, prot: v.prot, shmid: v.shmid, size: sizeOf(v.shmid) });
  // Part of a segment: its second page, alone, somewhere else.
  const big = ipc.shm.reduce((a, b) => (a.fields.size > b.fields.size ? a : b));
  const partAt = 0x10000000;
  attachShmVma(t, { start: partAt, end: partAt + 4096, pgoff: 4096, prot: PROT.READ, shmid: big.fields.id, size: Number(big.fields.size) });
  finishSysvIpc(seed, ipc);

  // The restored task sees the saved bytes at the saved addresses.
  const memOk = vmas.every((v) => {
    const want = ipc.shm.find((s) => s.fields.id === v.shmid)!.data.subarray(v.pgoff, v.pgoff + (v.end - v.start));
    return mem.read(v.start, want.length).equals(want);
  }) && mem.read(partAt, 4096).equals(big.data.subarray(4096, 8192));
  // One object: a write through the task's mapping is seen through another attach of the segment.
  const b = vmas.find((v) => v.shmid === shmB)!;
  mem.write(b.start + 100, Buffer.from('written-by-task'));
  const seen = Buffer.alloc(15);
  inNamespaceOf(seed, 'ipc', () => withShm(shmB, true, (io) => io.read(100, seen)));
  const mapsAfter = readMaps(seed).flatMap((v) => (shmOfVma(v) ? [{ start: v.start, end: v.end, pgoff: v.pgoff, shmid: v.ino }] : []));
  mem.write(b.start + 100, Buffer.alloc(15));
  const after = { uts: dumpUts(seed), ipc: summary(dumpSysvIpc(seed)) };
  mem.close();
  // Let the seed sit in pause() untraced while the checker runs in its namespace.
  seedT.setRegs(base);
  seedT.detach(0);
  const check = spawnSync('nsenter', ['-t', String(seed), '-i', '--', checker, 'check', String(shmB)], { encoding: 'utf8' });
  process.stdout.write(JSON.stringify({
    before: { uts, ipc: summary(ipc) }, after, memOk, shared: seen.toString('latin1'),
    vmas: vmas.map((v) => ({ start: v.start, end: v.end, pgoff: v.pgoff, shmid: v.shmid })), mapsAfter,
    check: (check.stdout + check.stderr).trim(),
  }) + '\n');
} finally {
  tryKill(seed, SIG.KILL);
  try { wait4(seed); } catch { /* reaped */ }
}
fs.writeSync(1, '');
