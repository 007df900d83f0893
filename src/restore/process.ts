/**
 * The steps that rebuild one process of the tree, through remote syscalls in
 * it, in an order found to work (docs/architecture.md §3):
 *  - memory(): its address space and pages, before it creates its children,
 *    so they inherit what they shared copy-on-write with it;
 *  - rest(): everything else, once the whole tree exists;
 *  - lockDown(): seccomp and credentials in every thread, the trampoline dropped;
 *  - finish(): registers, xstate and signal masks back; detach(): let go.
 */
import { CkptError } from '../errors.js';
import { readMaps } from '../proc/index.js';
import { Tracee } from '../ptrace/tracee.js';
import { RemoteCaller } from '../ptrace/remote.js';
import { TraceeMemory } from '../ptrace/memory.js';
import { NR } from '../sys/nr.js';
import fs from 'node:fs';
import { ALL_SIGNALS, CLONE, F, O, PAGE_SIZE, PR, PTRACE_O, SIG } from '../sys/constants.js';
import { encodeCloneArgs, CLONE_ARGS_SIZE } from '../sys/structs.js';
import { tryKill } from '../sys/syscalls.js';
import { E } from '../sys/errno.js';
import { makeScratch, callAll, type RestoreTarget, type Scratch } from '../kinds/target.js';
import { runBatch, encodeBatch } from '../ptrace/batch.js';
import { resumeRegs } from '../kinds/regs.js';
import { mapVmas, protectVmas, adviseVmas, type VmaToMap } from '../kinds/vma.js';
import { restoreRlimits } from '../kinds/rlimits.js';
import { restoreMisc, restoreDumpable, restoreThreadSched } from '../kinds/misc.js';
import { restoreThreadState } from '../kinds/thread.js';
import { restorePending } from '../kinds/signals.js';
import { restoreItimers, restorePosixTimers } from '../kinds/timers.js';
import { restoreSeccomp } from '../kinds/seccomp.js';
import { restorePages, type Run } from '../kinds/pages.js';
import { restoreMm } from '../kinds/mm.js';
import { restoreSigactions } from '../kinds/sigactions.js';
import { restoreFs } from '../kinds/fs.js';
import { restoreCreds } from '../kinds/creds.js';
import { restoreFds, type FileTable } from '../kinds/files.js';
import { openPtySlave, restoreControllingTty, restoreForeground, restoreTtys } from '../kinds/tty.js';
import { restoreEpollTargets } from '../kinds/anonfds.js';
import { restoreChunkedPages } from './compressed-pages.js';
import type { ChunkTable } from '../kinds/page-chunks.js';
import type { PagesReader } from '../image/index.js';
import type { ProcessImage, ThreadImage, VmaImage } from './load.js';
import type { Range } from './layout.js';
import { moveSpecials } from './specials.js';
import { fault } from '../fault.js';
import type { SharedMemory } from './shmem.js';

export const TRAMPOLINE_SIZE = 64 * 1024 + PAGE_SIZE;
/** Where the trampoline's page holds ckpt's loop of calls (ptrace/batch.ts), after its `syscall; int3`. */
export const BATCH_OFFSET = 16;
const MADV_DONTNEED = 4;
const RLIMIT_CORE = 4;

/** What every process's restore shares: the trampoline's address, the image's pages, the tree's files. */
export interface RestoreContext {
  tramp: number;
  pagesFd: number;
  compressed?: { reader: PagesReader; table: ChunkTable };
  files: FileTable;
  shmem: SharedMemory;
  /** The engine's work while a process reads its pages in (the small image's CRC check). */
  meanwhile?: () => void;
  /** In a container: attach a SysV segment of its ipc namespace at a VMA's address. */
  attachShm?: (t: RestoreTarget, v: VmaToMap) => void;
  detach: boolean;
  log(msg: string): void;
}

interface Thread { tracee: Tracee; target: RestoreTarget; image: ThreadImage }

/** One process being restored: traced, stopped, running remote syscalls from the trampoline. */
/** A thread that runs from the trampoline: its calls, single or in batches, and the scratch area it shares. */
function trampolineTarget(tracee: Tracee, mem: TraceeMemory, scratch: Scratch, ctx: RestoreContext): RestoreTarget {
  const remote = new RemoteCaller(tracee, BigInt(ctx.tramp), 'int3', tracee.getRegs());
  return {
    pid: tracee.tid, remote, mem, scratch, log: ctx.log,
    // The table goes after what the scratch area holds for the calls (paths, iovecs).
    batch: (calls, meanwhile) => runBatch(remote, mem, BigInt(ctx.tramp + BATCH_OFFSET), scratch.put(encodeBatch(calls)), calls.length, meanwhile),
  };
}

export class RestoredProcess {
  readonly target: RestoreTarget;
  readonly mem: TraceeMemory;
  private pidfd = -1;
  private threads: Thread[] = [];

  /**
   * `pidfd`: the fd number of a pidfd of ckpt this process inherited from its
   * creator (the seed opened the first one): a process in a fresh pid
   * namespace cannot name ckpt's pid to open one itself.
   */
  constructor(readonly tracee: Tracee, readonly image: ProcessImage, private ctx: RestoreContext, pidfd: number) {
    this.pidfd = pidfd;
    this.mem = new TraceeMemory(tracee.tid);
    this.target = trampolineTarget(tracee, this.mem, makeScratch(this.mem, ctx.tramp + PAGE_SIZE, TRAMPOLINE_SIZE - PAGE_SIZE), ctx);
  }

  get host(): number { return this.tracee.tid; }
  get remote(): RemoteCaller { return this.target.remote; }

  /**
   * clone3 in this process: a child with `nspid` (as this process's pid
   * namespace sees it), traced and stopped from its start (TRACEFORK).
   */
  cloneChild(nspid: number, exitSignal: number, flags = 0): Tracee {
    const t = this.target;
    t.scratch.reset();
    const setTid = Buffer.alloc(8);
    setTid.writeInt32LE(nspid, 0);
    const setTidAddr = t.scratch.put(setTid);
    const args = t.scratch.put(encodeCloneArgs({ flags: BigInt(flags), exit_signal: BigInt(exitSignal), set_tid: BigInt(setTidAddr), set_tid_size: 1n }));
    const events = { children: [] as number[] };
    const r = t.remote.raw(NR.clone3, [args, CLONE_ARGS_SIZE], events);
    if (r === BigInt(-E.EEXIST)) throw new CkptError('PID_IN_USE', `pid ${nspid} is in use`, { pid: nspid });
    if (r < 0n) throw new CkptError('SYSCALL', `remote clone3(set_tid=${nspid}) in pid ${this.host} failed: errno ${-r}`, { pid: this.host, syscall: 'clone3' });
    const child = Tracee.adopt(events.children[0] ?? Number(r));
    waitEventStop(child);
    return child;
  }

  /** A process this one just cloned, before it is anything of its own (a helper). */
  forkOf(tracee: Tracee): RestoredProcess { return new RestoredProcess(tracee, this.image, this.ctx, this.pidfd); }

  /** The ckpt pidfd's number here, which a process cloned now inherits. */
  get pidfdNumber(): number { return this.pidfd; }

  /** Exit now with `code`, untraced: it ends as a zombie of its parent. */
  exitNow(code: number): void { this.runDetached(NR.exit_group, [code]); }

  /** Die now of `sig` (without a core file), untraced: a zombie killed by that signal. */
  killSelfNow(sig: number): void {
    const t = this.target;
    t.scratch.reset();
    // The status says how it died, not what it left.
    t.remote.call(NR.prlimit64, [0, RLIMIT_CORE, t.scratch.put(Buffer.alloc(16)), 0], 'prlimit64(RLIMIT_CORE)');
    this.runDetached(NR.kill, [this.image.pid, sig]);
  }

  /** Let the process run one last syscall on its own: set up at the trampoline, all signals open, detached. */
  private runDetached(nr: number, args: number[]): void {
    const regs = { ...this.tracee.getRegs(), orig_rax: -1n, rip: BigInt(this.ctx.tramp), rax: BigInt(nr), rdi: BigInt(args[0] ?? 0), rsi: BigInt(args[1] ?? 0) };
    this.tracee.setRegs(regs);
    this.tracee.setSigmask(0n);
    this.mem.close();
    this.tracee.detach(0);
  }

  /** The address space: seed or parent mappings out, saved VMAs in, pages in. */
  memory(): void {
    const { remote } = this.target;
    const proc = this.image;
    const tramp = this.ctx.tramp;
    // Nothing is delivered while we work: timers and re-queued signals stay pending.
    this.tracee.setSigmask(ALL_SIGNALS);
    // Every fd it inherited goes but its pidfd of ckpt, moved above the fds it will have.
    const maxFd = proc.fds.reduce((m, f) => Math.max(m, f.fields.fd), 2);
    const pidfd = this.pidfd > maxFd ? this.pidfd : remote.call(NR.fcntl, [this.pidfd, F.DUPFD_CLOEXEC, maxFd + 1], 'fcntl(F_DUPFD_CLOEXEC)');
    if (pidfd > 0) remote.call(NR.close_range, [0, pidfd - 1, 0], 'close_range');
    remote.call(NR.close_range, [pidfd + 1, 0xffffffff, 0], 'close_range');
    this.pidfd = pidfd;
    // VMAs this process shared copy-on-write with its parent stay as the fork left them.
    const kept = proc.vmas.filter((v) => v.cow.length > 0);
    const keptRanges: Range[] = kept.map((v) => [v.fields.start, v.fields.end]);
    const current = readMaps(this.host);
    for (const v of kept) {
      if (!covered(v.fields.start, v.fields.end, current.map((c): Range => [c.start, c.end]))) {
        throw new CkptError('BAD_IMAGE', `bad image: pid ${proc.pid} shares 0x${v.fields.start.toString(16)}-0x${v.fields.end.toString(16)} with its parent, which does not map it`, { pid: proc.pid });
      }
    }
    this.target.scratch.reset();
    callAll(this.target, current.filter((v) => !(v.start === tramp || v.start === tramp + PAGE_SIZE || v.path.startsWith('[v')))
      .flatMap((v) => subtract([v.start, v.end], keptRanges).map(([a, b]) => ({ nr: NR.munmap, args: [a, b - a], what: `munmap(${v.path || 'anon'} 0x${a.toString(16)})` }))),
    { check: true });
    const taken: Range[] = [...proc.vmas.map((v): Range => [v.fields.start, v.fields.end]), [tramp, tramp + TRAMPOLINE_SIZE]];
    moveSpecials(this.target, readMaps(this.host), proc.vmas, taken);
    mapVmas(this.target, proc.vmas.filter((v) => v.cow.length === 0), {
      sharedFd: (v) => this.sharedFd(v),
      attachShm: this.ctx.attachShm && ((v) => this.ctx.attachShm!(this.target, v)),
    });
    for (const v of kept) zapUnsaved(this.target, v);
    fault('restore:map');
    if (this.ctx.compressed) {
      // Compressed chunks: ckpt decompresses them and writes the pages in (CRCs checked on the way).
      restoreChunkedPages(this.host, this.ctx.compressed.reader, this.ctx.compressed.table, proc.vmas);
    } else {
      const imgFd = remote.call(NR.pidfd_getfd, [this.pidfd, this.ctx.pagesFd, 0], 'pidfd_getfd(pages.img)');
      restorePages(this.target, imgFd, proc.vmas, this.ctx.meanwhile);
      remote.call(NR.close, [imgFd]);
    }
    fault('restore:pages');
  }

  /**
   * A session leader whose controlling terminal is a pty of the tree takes it
   * now, before it clones anyone: members of its session get it only at fork.
   * The slave fd is installed early (rest() installs it again, the same way).
   */
  takeTerminal(): void {
    const f = this.image.fds.find((x) => x.ctty);
    if (!f) return;
    const { remote } = this.target;
    const local = openPtySlave(f);
    try {
      const tmp = remote.call(NR.pidfd_getfd, [this.pidfd, local, 0], `pidfd_getfd(pty slave fd ${f.fields.fd})`);
      if (tmp !== f.fields.fd) {
        remote.call(NR.dup3, [tmp, f.fields.fd, O.CLOEXEC], `dup3(${tmp}, ${f.fields.fd})`);
        remote.call(NR.close, [tmp]);
      }
    } finally {
      fs.closeSync(local);
    }
    restoreControllingTty(this.target, f.fields.fd);
  }

  /** The foreground group of the session's terminal, once every group exists. */
  setForeground(): void {
    const f = this.image.fds.find((x) => x.ctty);
    const fg = f?.pty?.fields.fg_pgrp ?? -1;
    if (f && fg > 0) restoreForeground(this.target, f.fields.fd, fg);
  }

  /** A MAP_SHARED anonymous object: the tree's one memfd for it, taken into this process for mmap. */
  private sharedFd(v: VmaToMap): number {
    const local = this.ctx.shmem.get(v);
    return this.remote.call(NR.pidfd_getfd, [this.pidfd, local, 0], `pidfd_getfd(shared memory of 0x${v.fields.start.toString(16)})`);
  }

  /** Everything but memory and registers, once the whole tree exists. */
  rest(created: number[]): void {
    const t = this.target;
    const { remote } = t;
    const proc = this.image;
    protectVmas(t, proc.vmas.filter((v) => v.cow.length === 0));
    // Inherited VMAs have their parent's temporary protection: set theirs.
    for (const v of proc.vmas) if (v.cow.length) remote.call(NR.mprotect, [v.fields.start, v.fields.end - v.fields.start, v.fields.prot], `mprotect(0x${v.fields.start.toString(16)})`);
    adviseVmas(t, proc.vmas);
    restoreMm(t, proc.mm!, proc.auxv, proc.exe);
    restoreSigactions(t, proc.sigactions);
    restoreFs(t, proc.fs!, proc.cwd, proc.root);
    restoreFds(t, this.pidfd, proc.pid, proc.fds, this.ctx.files);
    restoreTtys(t, proc.fds);
    restoreEpollTargets(t, proc.fds);
    remote.call(NR.close, [this.pidfd]);
    this.pidfd = -1;
    fault('restore:files');
    restoreRlimits(t, proc.rlimits);
    if (proc.misc) restoreMisc(t, proc.misc.fields, proc.misc.affinity);
    // The other threads, cloned by the main thread with their saved tids.
    const threads: Thread[] = [{ tracee: this.tracee, target: t, image: proc.threads[0] }];
    this.threads = threads;
    for (const th of proc.threads.slice(1)) {
      // A thread with its saved tid, cloned by the main thread, traced and stopped from its start.
      const tracee = this.cloneChild(th.fields.tid, 0, THREAD_FLAGS);
      created.push(tracee.tid);
      const target = trampolineTarget(tracee, t.mem, t.scratch, this.ctx);
      tracee.setSigmask(ALL_SIGNALS);
      threads.push({ tracee, target, image: th });
      if (proc.misc) restoreThreadSched(target, proc.misc.fields, proc.misc.affinity);
    }
    for (const th of threads) restoreThreadState(th.target, th.image.fields);
    // The parent-death signal would fire as soon as a detached ckpt exits.
    if (proc.task.pdeath_signal && !this.ctx.detach) remote.call(NR.prctl, [PR.SET_PDEATHSIG, proc.task.pdeath_signal], 'prctl(PR_SET_PDEATHSIG)');
    restoreItimers(t, proc.itimers);
    restorePosixTimers(t, proc.posixTimers);
    // Children (helpers, zombies) that exited during the restore left a SIGCHLD the process never had.
    drainSignal(t, SIG.CHLD);
    restorePending(t, proc.pid, proc.pid, proc.pending);
    for (const th of threads) restorePending(th.target, proc.pid, th.image.fields.tid, th.image.pending);
    fault('restore:signals');
  }

  /** Seccomp and credentials are per thread: each thread gets the process's; the main thread's last. */
  lockDown(): void {
    const proc = this.image;
    for (const th of [...this.threads.slice(1), this.threads[0]]) {
      if (proc.seccomp.mode) {
        th.tracee.setOptions(PTRACE_O.TRACESYSGOOD | PTRACE_O.TRACECLONE | PTRACE_O.EXITKILL | PTRACE_O.SUSPEND_SECCOMP);
        restoreSeccomp(th.target, proc.seccomp.mode, proc.seccomp.filters);
      }
      if (proc.creds) restoreCreds(th.target, proc.task, proc.groups, proc.creds);
    }
    if (proc.misc) restoreDumpable(this.target, proc.misc.fields);
    // The trampoline's own munmap must not return into it: stop at syscall exit.
    // The other threads sit on its int3, but they get their own registers before they run.
    this.remote.raw(NR.munmap, [this.ctx.tramp, TRAMPOLINE_SIZE], undefined, 'syscall-stop');
  }

  /** Registers, xstate and signal masks back. */
  finish(): void {
    for (const th of this.threads) {
      th.tracee.setRegs(resumeRegs(th.image.regs));
      th.tracee.setXstate(th.image.xstate);
      th.tracee.setSigmask(th.image.fields.sigmask);
    }
  }

  /** Let it run. A process stopped at dump time comes back stopped: SIGSTOP waits, pending, for the detach. */
  detach(): void {
    if (this.image.task.state === 'T') tryKill(this.host, SIG.STOP);
    for (const th of this.threads.slice(1)) th.tracee.detach(0);
    this.tracee.detach(0);
    this.mem.close();
  }

  close(): void { this.mem.close(); }
}

/** Wait for a new tracee's first stop (PTRACE_EVENT_STOP), passing anything else on. */
export function waitEventStop(t: Tracee): void {
  for (;;) {
    const s = t.waitStopped();
    if (s.kind === 'event-stop') return;
    t.cont(0);
  }
}

function covered(start: number, end: number, ranges: Range[]): boolean {
  let at = start;
  for (const [a, b] of [...ranges].sort((x, y) => x[0] - y[0])) {
    if (a <= at && b > at) at = b;
    if (at >= end) return true;
  }
  return at >= end;
}

/** [a, b) minus every range in `holes`, as sorted pieces. */
function subtract([a, b]: Range, holes: Range[]): Range[] {
  const out: Range[] = [];
  let at = a;
  for (const [x, y] of [...holes].sort((p, q) => p[0] - q[0])) {
    if (y <= at || x >= b) continue;
    if (x > at) out.push([at, x]);
    at = Math.max(at, y);
  }
  if (at < b) out.push([at, b]);
  return out;
}

/** In an inherited VMA, pages the process had neither of its own nor shared are dropped. */
function zapUnsaved(t: RestoreTarget, v: VmaImage): void {
  const have: Range[] = [...v.runs, ...v.cow].map(([a, n]: Run): Range => [a, a + n * PAGE_SIZE]);
  for (const [a, b] of subtract([v.fields.start, v.fields.end], have)) {
    t.remote.call(NR.madvise, [a, b - a, MADV_DONTNEED], `madvise(0x${a.toString(16)}, MADV_DONTNEED)`);
  }
}

/** Take every pending instance of `sig` (blocked now) without delivering it. */
function drainSignal(t: RestoreTarget, sig: number): void {
  t.scratch.reset();
  const set = Buffer.alloc(8);
  set.writeBigUInt64LE(1n << BigInt(sig - 1));
  const setAddr = t.scratch.put(set);
  const zero = t.scratch.put(Buffer.alloc(16));
  for (let i = 0; i < 64; i++) if (t.remote.raw(NR.rt_sigtimedwait, [setAddr, 0, zero, 8]) < 0n) return;
}

const THREAD_FLAGS = CLONE.VM | CLONE.FS | CLONE.FILES | CLONE.SIGHAND | CLONE.THREAD | CLONE.SYSVSEM;

