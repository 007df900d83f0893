/**
 * `ckpt check`: probe, once, the kernel features ckpt relies on. Each probe
 * makes the real call (on ckpt itself or on a seed process it starts).
 */
import fs from 'node:fs';
import { readStatus } from './proc/index.js';
import { trySyscall, allocNative } from './sys/libc.js';
import { NR } from './sys/nr.js';
import { PR, PR_SET_MM_MAP, PTRACE_O, SIG, MAP, PROT } from './sys/constants.js';
import { close, getpid, tryKill, wait4 } from './sys/syscalls.js';
import { E } from './sys/errno.js';
import { encodeCloneArgs, CLONE_ARGS_SIZE } from './sys/structs.js';
import { Tracee } from './ptrace/tracee.js';
import { RemoteCaller } from './ptrace/remote.js';
import { TraceeMemory } from './ptrace/memory.js';
import { spawnSeed, SEED_GADGET } from './restore/seed.js';

export interface Probe { name: string; ok: boolean; detail: string; required: boolean }
export interface CheckResult { ok: boolean; probes: Probe[] }

const PR_SET_MM_MAP_SIZE = 15;
const CAP_SYS_RESOURCE = 24;

function localProbes(): Probe[] {
  const probes: Probe[] = [];
  const add = (name: string, ok: boolean, detail: string, required = true) => probes.push({ name, ok, detail, required });
  const mem = allocNative(4096);
  const r = trySyscall(NR.prctl, PR.SET_MM, PR_SET_MM_MAP_SIZE, mem.addr, 0, 0);
  add('prctl(PR_SET_MM, PR_SET_MM_MAP)', r === 0 && mem.buf.readUInt32LE(0) === 104, r === 0 ? `struct prctl_mm_map is ${mem.buf.readUInt32LE(0)} bytes` : `errno ${-r}`);
  void PR_SET_MM_MAP;
  const pidfd = trySyscall(NR.pidfd_open, getpid(), 0);
  add('pidfd_open', pidfd >= 0, pidfd >= 0 ? 'ok' : `errno ${-pidfd}`);
  if (pidfd >= 0) {
    const fd = trySyscall(NR.pidfd_getfd, pidfd, 0, 0);
    add('pidfd_getfd', fd >= 0, fd >= 0 ? 'ok' : `errno ${-fd}`);
    if (fd >= 0) close(fd);
    close(pidfd);
  }
  const mfd = trySyscall(NR.memfd_create, mem.addr, 1);
  add('memfd_create', mfd >= 0, mfd >= 0 ? 'ok' : `errno ${-mfd}`);
  if (mfd >= 0) close(mfd);
  let pagemap = false;
  try { fs.closeSync(fs.openSync('/proc/self/pagemap', 'r')); pagemap = true; } catch { /* absent */ }
  add('/proc/PID/pagemap', pagemap, pagemap ? 'ok' : 'cannot open');
  const uffd = trySyscall(323, 0o2000000);
  add('userfaultfd', uffd >= 0, uffd >= 0 ? 'ok (lazy restore possible)' : `errno ${-uffd}`, false);
  if (uffd >= 0) close(uffd);
  const caps = readStatus(process.pid).capEff;
  const hasResource = ((caps >> BigInt(CAP_SYS_RESOURCE)) & 1n) === 1n;
  add('CAP_SYS_RESOURCE', hasResource, hasResource ? 'present' : 'missing: saved hard limits above ckpt\'s own cannot be restored', false);
  return probes;
}

function seedProbes(): Probe[] {
  const probes: Probe[] = [];
  const add = (name: string, ok: boolean, detail: string, required = true) => probes.push({ name, ok, detail, required });
  let seed = 0;
  try {
    seed = spawnSeed();
    const t = Tracee.seize(seed, PTRACE_O.TRACESYSGOOD | PTRACE_O.TRACECLONE | PTRACE_O.EXITKILL);
    t.interrupt();
    for (;;) { const s = t.waitStopped(); if (s.kind === 'event-stop') break; t.cont(0); }
    add('ptrace(PTRACE_SEIZE, PTRACE_INTERRUPT)', true, 'ok');
    const x = t.getXstate();
    add('ptrace(PTRACE_GETREGSET, NT_X86_XSTATE)', x.length >= 576, `xsave area ${x.length} bytes`);
    const rseq = t.getRseq();
    add('ptrace(PTRACE_GET_RSEQ_CONFIGURATION)', rseq !== undefined, rseq ? 'ok' : 'missing', false);
    const remote = new RemoteCaller(t, BigInt(SEED_GADGET), 'int3', t.getRegs());
    const pid = remote.call(NR.getpid);
    add('remote syscall', pid === seed, `getpid() in the seed = ${pid}`);
    const page = remote.call(NR.mmap, [0, 4096, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS, -1, 0]);
    const mem = new TraceeMemory(seed);
    const setTid = Buffer.alloc(8); setTid.writeInt32LE(seed, 0);
    mem.write(page, setTid);
    mem.write(page + 64, encodeCloneArgs({ set_tid: BigInt(page), set_tid_size: 1n, exit_signal: BigInt(SIG.CHLD) }));
    mem.close();
    // set_tid of a pid in use must fail with EEXIST where set_tid is supported.
    const r = remote.raw(NR.clone3, [page + 64, CLONE_ARGS_SIZE]);
    add('clone3 with set_tid', r === BigInt(-E.EEXIST), r === BigInt(-E.EEXIST) ? 'ok' : `unexpected result ${r}`);
  } catch (e) {
    add('seed process', false, (e as Error).message);
  } finally {
    if (seed) { tryKill(seed, SIG.KILL); try { wait4(seed); } catch { /* reaped */ } }
  }
  return probes;
}

export function checkKernel(): CheckResult {
  const probes = [...localProbes(), ...seedProbes()];
  return { ok: probes.every((p) => p.ok || !p.required), probes };
}
