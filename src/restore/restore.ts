/**
 * Restore: grow the saved process out of a seed. The seed clones a child
 * with the saved pid (clone3 set_tid); the child rebuilds itself through
 * remote syscalls, in an order found to work (docs/architecture.md); then
 * registers, xstate and signal mask go back and it is let go.
 * Any failure kills everything created; the image is only read.
 */
import fs from 'node:fs';
import { CkptError } from '../errors.js';
import { readMaps, readStatus } from '../proc/index.js';
import { Tracee } from '../ptrace/tracee.js';
import { RemoteCaller } from '../ptrace/remote.js';
import { TraceeMemory } from '../ptrace/memory.js';
import { NR } from '../sys/nr.js';
import { CLONE, F, MAP, PAGE_SIZE, PR, PROT, PTRACE_O, SIG } from '../sys/constants.js';
import { encodeCloneArgs, CLONE_ARGS_SIZE, xsaveFeatures } from '../sys/structs.js';
import { getpid, tryKill, wait4, W } from '../sys/syscalls.js';
import { E } from '../sys/errno.js';
import { makeScratch, type RestoreTarget } from '../kinds/target.js';
import { checkXstate, resumeRegs } from '../kinds/regs.js';
import { mapVmas, protectVmas, adviseVmas, checkMappedFile, isFileBacked } from '../kinds/vma.js';
import { restoreRlimits } from '../kinds/rlimits.js';
import { restoreMisc, restoreDumpable, restoreThreadSched } from '../kinds/misc.js';
import { restoreThreadState } from '../kinds/thread.js';
import { restorePending } from '../kinds/signals.js';
import { restoreItimers, restorePosixTimers } from '../kinds/timers.js';
import { restoreSeccomp } from '../kinds/seccomp.js';
import { restorePages } from '../kinds/pages.js';
import { restoreChunkedPages } from './compressed-pages.js';
import type { ChunkTable } from '../kinds/page-chunks.js';
import type { PagesReader } from '../image/index.js';
import { restoreMm } from '../kinds/mm.js';
import { restoreSigactions } from '../kinds/sigactions.js';
import { restoreFs } from '../kinds/fs.js';
import { restoreCreds } from '../kinds/creds.js';
import { restoreFds, checkFd, FdKind } from '../kinds/files.js';
import { releaseSockets } from '../kinds/sockets/index.js';
import { spawnSeed, SEED_GADGET, GADGET_BYTES } from './seed.js';
import { loadImage, openPages, type ProcessImage, type LoadedImage, type ThreadImage } from './load.js';
import type { PendingVerdict } from './verify-pages.js';
import { findHole, type Range } from './layout.js';
import { moveSpecials } from './specials.js';
import { Timings } from '../timings.js';
import type { EngineProgress } from '../dump/dump.js';
import { fault } from '../fault.js';

export interface RestoreOptions {
  /** The image directory. */
  dir: string;
  /** Like `ckpt restore -d`: return once the process runs; its parent-death signal is not re-armed. */
  detach?: boolean;
  /** Write the restored pid to this file. */
  pidfile?: string;
  /** Give the process ckpt's terminal for the terminal fds it had (`-j`). */
  shellJob?: boolean;
  /** Each line the engine logs (what `ckpt restore -v` prints). */
  log?: (msg: string) => void;
  /** Hears each step as it ends. */
  onProgress?: (p: EngineProgress) => void;
}

export interface RestoreResult {
  pid: number;
  pids: number[];
  ms: number;
  timings: Record<string, number>;
}

const TRAMPOLINE_SIZE = 64 * 1024 + PAGE_SIZE;
const ALL_SIGNALS = 0xffffffffffffffffn;

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
const sleepMs = (ms: number) => Atomics.wait(sleepCell, 0, 0, ms);

/** The state letter of a pid, or undefined if there is no such process. */
function pidState(pid: number): string | undefined {
  try {
    return /^State:\s+(\S)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '?';
  } catch { return undefined; }
}

/**
 * A saved pid still held by a dying or not yet reaped process (its image may
 * have come through a pipe faster than it died) is waited for, a few seconds;
 * a live process holding it is refused at once.
 */
function waitPidFree(pid: number, timeoutMs = 5000): boolean {
  const until = performance.now() + timeoutMs;
  for (;;) {
    const state = pidState(pid);
    if (state === undefined) return true;
    if ((state !== 'Z' && state !== 'X') || performance.now() > until) return false;
    sleepMs(20);
  }
}

/** Everything checked before the first process is created. */
function preflight(img: LoadedImage, opts: RestoreOptions): void {
  for (const p of img.processes) {
    for (const v of p.vmas) if (isFileBacked(v.fields.kind)) checkMappedFile(v.fields, v.path);
    for (const f of p.fds) {
      if (f.fields.kind === FdKind.TTY && !opts.shellJob) {
        throw new CkptError('USAGE', `fd ${f.fields.fd} of pid ${p.pid} was a terminal: restore with --shell-job`, { pid: p.pid });
      }
      checkFd(f);
    }
    if (!waitPidFree(p.pid)) throw new CkptError('PID_IN_USE', `pid ${p.pid} is in use`, { pid: p.pid });
  }
}

const CAP_SYS_ADMIN = 21n;
const CAP_CHECKPOINT_RESTORE = 40n;

/**
 * Giving a process its saved pid (clone3 set_tid) needs CAP_CHECKPOINT_RESTORE
 * or CAP_SYS_ADMIN; without them a restore could only hand out what the user
 * has anyway, so it is refused at once with the reason.
 */
function requireRestorePrivileges(): void {
  const eff = readStatus(process.pid).capEff;
  const has = (cap: bigint) => ((eff >> cap) & 1n) === 1n;
  if (!has(CAP_CHECKPOINT_RESTORE) && !has(CAP_SYS_ADMIN)) {
    throw new CkptError('PERMISSION', `restore needs CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN (to give processes their saved pids); run it as root`);
  }
}

/**
 * Kill and reap what a failed restore created (processes and the threads
 * cloned into them). Threads are reaped first, newest first: a group leader's
 * exit is reported only once its other threads are gone.
 */
function killAll(tids: number[]): void {
  for (const tid of tids) tryKill(tid, SIG.KILL);
  for (const tid of [...tids].reverse()) { try { wait4(tid); } catch { /* already reaped */ } }
}

export function restoreSync(opts: RestoreOptions): RestoreResult {
  const t0 = performance.now();
  const log = opts.log ?? (() => {});
  const times = new Timings((step) => opts.onProgress?.({ phase: step, done: 1, total: 1 }));
  const img = loadImage(opts.dir);
  requireRestorePrivileges();
  fault('restore:load');
  if (img.processes.length !== 1) throw new CkptError('UNSUPPORTED', `not supported yet: the image holds ${img.processes.length} processes`);
  const proc = img.processes[0];
  preflight(img, opts);
  const { reader: pages, verdict, chunks } = openPages(img);
  times.mark('load');
  const created: number[] = [];
  try {
    const seed = spawnSeed();
    created.push(seed);
    fault('restore:seed');
    const child = growFromSeed(seed, proc, created, times);
    rebuild(child, proc, pages.fd, opts, times, verdict, chunks && { reader: pages, table: chunks }, created);
    times.mark('rebuild');
    releaseSockets(proc.sockets, log);
    if (opts.pidfile) fs.writeFileSync(opts.pidfile, `${proc.pid}\n`);
    log(`restore of pid ${proc.pid}: ${times.format()}`);
    return { pid: proc.pid, pids: [proc.pid], ms: performance.now() - t0, timings: times.record() };
  } catch (e) {
    killAll(created);
    throw e;
  } finally {
    pages.close();
  }
}

/** Seize the seed, give it a trampoline, clone the saved pid out of it, drop the seed. */
function growFromSeed(seed: number, proc: ProcessImage, created: number[], times: Timings): Tracee {
  const seedT = Tracee.seize(seed, PTRACE_O.TRACESYSGOOD | PTRACE_O.TRACECLONE | PTRACE_O.TRACEFORK | PTRACE_O.EXITKILL);
  seedT.interrupt();
  waitEventStop(seedT);
  const hostX = seedT.getXstate();
  for (const th of proc.threads) {
    checkXstate({ xfeatures: th.xfeatures, xstate_bv: th.xstateBv, size: th.xstate.length }, xsaveFeatures(hostX).xfeatures, hostX.length);
  }
  const remote = new RemoteCaller(seedT, BigInt(SEED_GADGET), 'int3', seedT.getRegs());
  const mem = new TraceeMemory(seed);
  try {
    const taken: Range[] = [...proc.vmas.map((v): Range => [v.fields.start, v.fields.end]),
      ...readMaps(seed).map((v): Range => [v.start, v.end])];
    const tramp = findHole(TRAMPOLINE_SIZE, taken);
    remote.call(NR.mmap, [tramp, PAGE_SIZE, PROT.READ | PROT.EXEC, MAP.PRIVATE | MAP.ANONYMOUS | MAP.FIXED_NOREPLACE, -1, 0], 'mmap(trampoline)');
    remote.call(NR.mmap, [tramp + PAGE_SIZE, TRAMPOLINE_SIZE - PAGE_SIZE, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS | MAP.FIXED_NOREPLACE, -1, 0], 'mmap(scratch)');
    mem.write(tramp, GADGET_BYTES);
    trampolines.set(seed, tramp);
    // clone_args and set_tid must be in the caller's own memory.
    const setTid = Buffer.alloc(8);
    setTid.writeInt32LE(proc.pid, 0);
    const setTidAddr = tramp + PAGE_SIZE;
    const argsAddr = setTidAddr + 64;
    mem.write(setTidAddr, setTid);
    mem.write(argsAddr, encodeCloneArgs({ flags: BigInt(CLONE.PARENT), exit_signal: 0n, set_tid: BigInt(setTidAddr), set_tid_size: 1n }));
    const events = { children: [] as number[] };
    const r = remote.raw(NR.clone3, [argsAddr, CLONE_ARGS_SIZE], events);
    if (r === BigInt(-E.EEXIST)) throw new CkptError('PID_IN_USE', `pid ${proc.pid} is in use`, { pid: proc.pid });
    if (r < 0n) throw new CkptError('SYSCALL', `remote clone3(set_tid=${proc.pid}) failed: errno ${-r}`, { pid: seed, syscall: 'clone3' });
    const child = Number(r);
    created.push(child);
    const childT = Tracee.adopt(child);
    waitEventStop(childT);
    trampolines.set(child, tramp);
    times.mark('clone');
    fault('restore:clone');
    return childT;
  } finally {
    mem.close();
    tryKill(seed, SIG.KILL);
    try { wait4(seed); } catch { /* reaped */ }
    created.splice(created.indexOf(seed), 1);
  }
}

const trampolines = new Map<number, number>();

function waitEventStop(t: Tracee): void {
  for (;;) {
    const s = t.waitStopped();
    if (s.kind === 'event-stop') return;
    t.cont(0);
  }
}

/** The child rebuilds itself as the saved process. */
function rebuild(childT: Tracee, proc: ProcessImage, pagesFd: number, opts: RestoreOptions, times: Timings, verdict: PendingVerdict,
  compressed: { reader: PagesReader; table: ChunkTable } | undefined, created: number[]): void {
  const pid = childT.tid;
  const tramp = trampolines.get(pid)!;
  const mem = new TraceeMemory(pid);
  const remote = new RemoteCaller(childT, BigInt(tramp), 'int3', childT.getRegs());
  const t: RestoreTarget = {
    pid, remote, mem, scratch: makeScratch(mem, tramp + PAGE_SIZE, TRAMPOLINE_SIZE - PAGE_SIZE),
    log: opts.log ?? (() => {}),
  };
  try {
    // Nothing is delivered while we work: timers and re-queued signals stay pending.
    childT.setSigmask(ALL_SIGNALS);
    remote.call(NR.close_range, [0, 0xffffffff, 0], 'close_range');
    const current = readMaps(pid);
    for (const v of current) {
      if (v.start === tramp || v.start === tramp + PAGE_SIZE || v.path.startsWith('[v')) continue;
      remote.call(NR.munmap, [v.start, v.end - v.start], `munmap(seed ${v.path || 'anon'})`);
    }
    const taken: Range[] = [...proc.vmas.map((v): Range => [v.fields.start, v.fields.end]), [tramp, tramp + TRAMPOLINE_SIZE]];
    moveSpecials(t, readMaps(pid), proc.vmas, taken);
    mapVmas(t, proc.vmas);
    times.mark('map');
    fault('restore:map');
    const ckptPidfd = remote.call(NR.pidfd_open, [getpid(), 0], 'pidfd_open(ckpt)');
    const maxFd = proc.fds.reduce((m, f) => Math.max(m, f.fields.fd), 2);
    const pidfd = remote.call(NR.fcntl, [ckptPidfd, F.DUPFD_CLOEXEC, maxFd + 1], 'fcntl(F_DUPFD_CLOEXEC)');
    remote.call(NR.close, [ckptPidfd]);
    if (compressed) {
      // Compressed chunks: ckpt decompresses them and writes the pages in (CRCs checked on the way).
      restoreChunkedPages(pid, compressed.reader, compressed.table, proc.vmas);
    } else {
      const imgFd = remote.call(NR.pidfd_getfd, [pidfd, pagesFd, 0], 'pidfd_getfd(pages.img)');
      restorePages(t, imgFd, proc.vmas);
      remote.call(NR.close, [imgFd]);
    }
    times.mark('pages');
    fault('restore:pages');
    protectVmas(t, proc.vmas);
    adviseVmas(t, proc.vmas);
    restoreMm(t, proc.mm, proc.auxv, proc.exe);
    restoreSigactions(t, proc.sigactions);
    if (proc.task.leader) remote.call(NR.setsid, [], 'setsid');
    else if (proc.task.pgrp === proc.pid) remote.call(NR.setpgid, [0, 0], 'setpgid');
    restoreFs(t, proc.fs, proc.cwd, proc.root);
    restoreFds(t, pidfd, proc.fds, proc.pipes, proc.sockets);
    remote.call(NR.close, [pidfd]);
    fault('restore:files');
    restoreRlimits(t, proc.rlimits);
    if (proc.misc) restoreMisc(t, proc.misc.fields, proc.misc.affinity);
    // The other threads, cloned by the main thread with their saved tids.
    const threads: { tracee: Tracee; target: RestoreTarget; image: ThreadImage }[] = [{ tracee: childT, target: t, image: proc.threads[0] }];
    for (const th of proc.threads.slice(1)) {
      const tracee = cloneThread(t, th.fields.tid);
      created.push(tracee.tid);
      const target: RestoreTarget = { ...t, pid: tracee.tid, remote: new RemoteCaller(tracee, BigInt(tramp), 'int3', tracee.getRegs()) };
      tracee.setSigmask(ALL_SIGNALS);
      threads.push({ tracee, target, image: th });
      if (proc.misc) restoreThreadSched(target, proc.misc.fields, proc.misc.affinity);
    }
    times.mark('threads');
    for (const th of threads) restoreThreadState(th.target, th.image.fields);
    // The parent-death signal would fire as soon as a detached ckpt exits.
    if (proc.task.pdeath_signal && !opts.detach) remote.call(NR.prctl, [PR.SET_PDEATHSIG, proc.task.pdeath_signal], 'prctl(PR_SET_PDEATHSIG)');
    restoreItimers(t, proc.itimers);
    restorePosixTimers(t, proc.posixTimers);
    restorePending(t, pid, pid, proc.pending);
    for (const th of threads) restorePending(th.target, pid, th.tracee.tid, th.image.pending);
    fault('restore:signals');
    // Seccomp and credentials are per thread: each thread gets the process's; the main thread's last.
    for (const th of [...threads.slice(1), threads[0]]) {
      if (proc.seccomp.mode) {
        th.tracee.setOptions(PTRACE_O.TRACESYSGOOD | PTRACE_O.TRACECLONE | PTRACE_O.EXITKILL | PTRACE_O.SUSPEND_SECCOMP);
        restoreSeccomp(th.target, proc.seccomp.mode, proc.seccomp.filters);
      }
      if (proc.creds) restoreCreds(th.target, proc.task, proc.groups, proc.creds);
    }
    if (proc.misc) restoreDumpable(t, proc.misc.fields);
    fault('restore:creds');
    // The trampoline's own munmap must not return into it: stop at syscall exit.
    // The other threads sit on its int3, but they get their own registers before they run.
    remote.raw(NR.munmap, [tramp, TRAMPOLINE_SIZE], undefined, 'syscall-stop');
    // Nothing runs until every page is known good.
    verdict.wait();
    times.mark('verify');
    fault('restore:verify');
    for (const th of threads) {
      th.tracee.setRegs(resumeRegs(th.image.regs));
      th.tracee.setXstate(th.image.xstate);
      th.tracee.setSigmask(th.image.fields.sigmask);
    }
    fault('restore:detach');
    // A process stopped at dump time comes back stopped: SIGSTOP waits, pending, for the detach.
    if (proc.task.state === 'T') tryKill(pid, SIG.STOP);
    for (const th of threads.slice(1)) th.tracee.detach(0);
    childT.detach(0);
  } finally {
    mem.close();
  }
}

const THREAD_FLAGS = CLONE.VM | CLONE.FS | CLONE.FILES | CLONE.SIGHAND | CLONE.THREAD | CLONE.SYSVSEM;

/** clone3 in the main thread: a thread with the saved tid, traced and stopped from its start. */
function cloneThread(main: RestoreTarget, tid: number): Tracee {
  main.scratch.reset();
  const setTid = Buffer.alloc(8);
  setTid.writeInt32LE(tid, 0);
  const setTidAddr = main.scratch.put(setTid);
  const args = main.scratch.put(encodeCloneArgs({ flags: BigInt(THREAD_FLAGS), exit_signal: 0n, set_tid: BigInt(setTidAddr), set_tid_size: 1n }));
  const events = { children: [] as number[] };
  const r = main.remote.raw(NR.clone3, [args, CLONE_ARGS_SIZE], events);
  if (r === BigInt(-E.EEXIST)) throw new CkptError('PID_IN_USE', `tid ${tid} is in use`, { pid: tid });
  if (r < 0n) throw new CkptError('SYSCALL', `remote clone3(thread, set_tid=${tid}) failed: errno ${-r}, pid ${main.pid}`, { pid: main.pid, syscall: 'clone3' });
  const tracee = Tracee.adopt(Number(r));
  waitEventStop(tracee);
  return tracee;
}

/** Wait for a restored process (ckpt is its parent) and return a shell-style status. */
export function waitForExit(pid: number): number {
  for (;;) {
    const { status } = wait4(pid);
    if (W.ifExited(status)) return W.exitStatus(status);
    if (W.ifSignaled(status)) return 128 + W.termSig(status);
  }
}
