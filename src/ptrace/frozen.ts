/**
 * A task frozen for dump: seized, interrupted, and able to run remote
 * syscalls in a way that can always be put back.
 *
 * Life cycle: freeze() → (optional) enterRemote() … remote calls … leaveRemote()
 * → detach() or kill. leaveRemote() puts back the original registers and signal
 * mask and brings the task back into a plain interrupt-stop, so that when it is
 * detached the kernel restarts an interrupted syscall exactly as it would
 * after any ptrace stop (nanosleep keeps its remaining time).
 */
import { CkptError, isCkptError } from '../errors.js';
import { E } from '../sys/errno.js';
import { readStatus } from '../proc/index.js';
import { ALL_SIGNALS, PROT, MAP, PTRACE_EVENT, PTRACE_O } from '../sys/constants.js';
import { NR } from '../sys/nr.js';
import type { UserRegs } from '../sys/structs.js';
import { Tracee } from './tracee.js';
import { RemoteCaller } from './remote.js';
import { TraceeMemory } from './memory.js';
import { findReturnPath, buildSigframe, buildExitFrame, type ReturnPath } from './safe-return.js';
import { nameRestartedCall } from './restart-call.js';
import type { ChainSite } from './chain.js';
import { diePoint } from '../fault.js';

/** The x86_64 ABI's red zone: 128 bytes below rsp that a signal frame skips. */
const RED_ZONE = 128n;
/** Above the scratch buffers: room for the return frames (xsave areas are up to ~11 KiB with AMX). */
const FRAME_AREA = 32 * 1024;

function isDead(tid: number): boolean {
  try { return ['Z', 'X'].includes(readStatus(tid).state); } catch { return true; }
}

export interface ScratchMapping { addr: number; size: number }

export class FrozenTask {
  readonly regs: UserRegs;
  readonly sigmask: bigint;
  /** Signals that arrived while freezing; re-sent to the task at detach. */
  readonly caughtSignals: number[];
  private remote?: RemoteCaller;
  private scratch?: ScratchMapping;
  private scratchTotal = 0;
  private mem?: TraceeMemory;
  private path?: ReturnPath;
  private xstate?: Buffer;
  private frameAddr?: bigint;
  /** The return frame's xsave area, once the frame is in the scratch mapping. */
  private fpstate?: bigint;
  private stackSaved?: { addr: bigint; bytes: Buffer };
  private named?: UserRegs;

  private constructor(readonly tracee: Tracee, regs: UserRegs, sigmask: bigint, caught: number[]) {
    this.regs = regs;
    this.sigmask = sigmask;
    this.caughtSignals = caught;
  }

  get tid(): number { return this.tracee.tid; }

  /** PTRACE_SEIZE + PTRACE_INTERRUPT; waits for the interrupt-stop. */
  static freeze(tid: number, extraOptions = 0): FrozenTask {
    const [t] = FrozenTask.freezeAll([tid], extraOptions);
    if (!t) throw new CkptError('ESRCH_PID', `no process ${tid}`, { pid: tid });
    return t;
  }

  /**
   * Seize and interrupt every tid, then wait for each to stop. A thread
   * born meanwhile (PTRACE_EVENT_CLONE of a seized one) is traced from its
   * start; it is waited for too and handed to `onBorn`.
   */
  static freezeAll(tids: number[], extraOptions = 0, onBorn?: (born: FrozenTask[]) => void): FrozenTask[] {
    // A thread listed a moment ago may be gone already (threads come and go): skip it.
    const tracees = tids.flatMap((tid) => {
      try { return [Tracee.seize(tid, PTRACE_O.TRACESYSGOOD | extraOptions)]; } catch (e) {
        if (isCkptError(e) && e.data.errnoName === 'ESRCH') return [];
        // A task that exited meanwhile cannot be seized (EPERM on a zombie).
        if (isCkptError(e) && e.data.errnoName === 'EPERM' && isDead(tid)) return [];
        throw e;
      }
    });
    const live = tracees.filter((t) => t.tryInterrupt());
    const born: Tracee[] = [];
    const stop = (tracee: Tracee): boolean => {
      for (;;) {
        const s = tracee.wait();
        if (s.kind === 'exited' || s.kind === 'killed') return false;
        if (s.kind === 'event-stop') return true;
        // Any ptrace-stop clears a pending PTRACE_INTERRUPT: ask again before resuming.
        tracee.tryInterrupt();
        if (s.kind === 'event') {
          // A thread or a child process born while freezing starts traced and stopped.
          if (s.event === PTRACE_EVENT.CLONE || s.event === PTRACE_EVENT.FORK || s.event === PTRACE_EVENT.VFORK) born.push(Tracee.adopt(tracee.eventMsg()));
          tracee.cont(0);
          continue;
        }
        // A signal being delivered right now: let it through (as it would have
        // been without us); the new interrupt stops it next.
        tracee.cont(s.kind === 'signal' ? s.sig : 0);
      }
    };
    const stopped = live.filter(stop);
    const frozen = (t: Tracee) => new FrozenTask(t, t.getRegs(), t.getSigmask(), []);
    const out = stopped.map(frozen);
    const children: FrozenTask[] = [];
    while (born.length) {
      const t = born.shift()!;
      if (stop(t)) children.push(frozen(t));
    }
    if (children.length) {
      if (onBorn) onBorn(children);
      else children.forEach((c) => c.release());
    }
    return out;
  }

  /**
   * The registers with a restart_syscall named as the call it carries on
   * (ptrace/restart-call.ts): what an image keeps and what the return frame restores.
   */
  namedRegs(): UserRegs {
    this.named ??= nameRestartedCall(this.regs, this.memory());
    return this.named;
  }

  /** The xsave area as the task was frozen (remote calls may run through frames that load it again). */
  xstateAtFreeze(): Buffer {
    this.xstate ??= this.tracee.getXstate();
    return this.xstate;
  }

  memory(): TraceeMemory {
    this.mem ??= new TraceeMemory(this.tid);
    return this.mem;
  }

  /**
   * Prepare remote syscalls. Signals are blocked meanwhile so that none can
   * interleave with our calls; they stay pending and arrive after detach.
   * With a return path (ptrace/safe-return.ts) every instant from here to the
   * end of leaveRemote() is one the task survives if ckpt dies: calls go
   * through that path's `syscall`, on a frame that restores the task.
   * Without one, through `gadget` (a vDSO `syscall`), as before: that is the
   * one case where a kill of ckpt in the window leaves the task lost.
   */
  enterRemote(gadget: bigint): RemoteCaller {
    if (this.remote) return this.remote;
    const mem = this.memory();
    const path = findReturnPath(this.tid, mem);
    const frame = path && this.stackFrame(path);
    if (!path || !frame) {
      this.tracee.setSigmask(ALL_SIGNALS);
      this.remote = new RemoteCaller(this.tracee, gadget, 'syscall-stop', this.regs);
      return this.remote;
    }
    this.path = path;
    // Parked: were ckpt to die now, the task would `ret` into the restorer.
    this.tracee.setRegs({ ...this.regs, rip: path.after, rsp: frame, orig_rax: -1n });
    diePoint('parked');
    this.tracee.setSigmask(ALL_SIGNALS);
    diePoint('masked');
    this.remote = new RemoteCaller(this.tracee, path.gadget, 'syscall-stop', { ...this.regs, rsp: frame });
    return this.remote;
  }

  /** A private anonymous scratch mapping in the task, for syscall in/out buffers. */
  scratchMapping(size = 64 * 1024): ScratchMapping {
    if (this.scratch) return this.scratch;
    if (!this.remote) throw new CkptError('INTERNAL', 'scratch mapping before enterRemote');
    const total = size + FRAME_AREA;
    // MAP_NORESERVE: unlike the process's own anonymous memory it is not accounted, so the
    // kernel never merges it into a neighbour (a scratch area a killed ckpt leaves stays apart).
    const addr = this.remote.call(NR.mmap, [0, total, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS | MAP.NORESERVE, -1, 0], 'mmap(scratch)');
    this.scratch = { addr, size };
    this.scratchTotal = total;
    if (this.path) {
      // The frame moves to the top of the scratch mapping; the stack gets its bytes back.
      const f = buildSigframe(BigInt(addr + total), this.namedRegs(), this.sigmask, this.xstate!, this.path.restorer);
      this.memory().write(f.addr, f.bytes);
      this.remote.setBase({ ...this.regs, rsp: f.addr });
      this.tracee.setRegs({ ...this.tracee.getRegs(), rsp: f.addr });
      diePoint('moved');
      this.frameAddr = f.addr;
      this.fpstate = f.fpstate;
      this.putBackStack();
    }
    return this.scratch;
  }

  /**
   * Where a clone()d copy of this task should have its stack: a frame in the
   * scratch mapping that makes the copy exit at once if ckpt dies before it
   * kills it. Undefined without a return path and scratch mapping.
   */
  childStack(): bigint | undefined {
    if (!this.path || !this.scratch || this.frameAddr === undefined) return undefined;
    const f = buildExitFrame(this.frameAddr - 256n, this.regs, this.path);
    this.memory().write(f.addr, f.bytes);
    return f.addr;
  }

  /**
   * Where a chain of remote calls can run (ptrace/chain.ts), its frames in
   * `area` of the scratch mapping: only inside a remote session on a return
   * path whose frame is in the scratch mapping. `ns`: the task's process and
   * thread ids as its pid namespace numbers them; `marker` as chain.ts says.
   */
  chainSite(area: number, areaSize: number, ns: { tgid: number; tid: number }, marker: number): ChainSite | undefined {
    if (!this.remote || !this.path || !this.scratch || this.frameAddr === undefined || this.fpstate === undefined) return undefined;
    // Every rt_sigreturn resets the task's restart block: a sleep the freeze interrupted
    // would then end in EINTR instead of carrying on through restart_syscall.
    if (BigInt.asIntN(64, this.regs.orig_rax) >= 0n && BigInt.asIntN(64, this.regs.rax) === BigInt(-E.ERESTART_RESTARTBLOCK)) return undefined;
    return {
      tracee: this.tracee, remote: this.remote, mem: this.memory(), tgid: ns.tgid, tid: ns.tid, path: this.path, base: this.regs,
      home: this.frameAddr, fpstate: this.fpstate, area, areaSize, marker,
    };
  }

  /** Undo everything enterRemote/scratchMapping did; back to an interrupt-stop. */
  leaveRemote(): void {
    if (!this.remote) return;
    const remote = this.remote;
    this.remote = undefined;
    if (this.scratch) {
      if (this.path) {
        // The frame goes back to the stack before its home in scratch is unmapped.
        const frame = this.stackFrame(this.path);
        if (frame === undefined) throw new CkptError('INTERNAL', `pid ${this.tid}: the stack below rsp is no longer writable`, { pid: this.tid });
        remote.setBase({ ...this.regs, rsp: frame });
        this.tracee.setRegs({ ...this.tracee.getRegs(), rsp: frame });
      }
      remote.call(NR.munmap, [this.scratch.addr, this.scratchTotal], 'munmap(scratch)');
      this.scratch = undefined;
      this.frameAddr = undefined;
      this.fpstate = undefined;
      diePoint('leave');
    }
    // Mask first: parked on the frame, the task is safe with either mask.
    this.tracee.setSigmask(this.sigmask);
    diePoint('unmasked');
    this.tracee.setRegs(this.regs);
    this.putBackStack();
    this.path = undefined;
    this.tracee.interrupt();
    this.tracee.cont(0);
    for (;;) {
      const s = this.tracee.waitStopped();
      if (s.kind === 'event-stop') break;
      // That stop cleared the interrupt: ask again.
      this.tracee.tryInterrupt();
      this.tracee.cont(s.kind === 'signal' ? s.sig : 0);
    }
  }

  /**
   * Write a return frame below the stack's red zone (saving what was there);
   * its address, or undefined if that memory cannot be written.
   */
  private stackFrame(path: ReturnPath): bigint | undefined {
    this.xstate ??= this.tracee.getXstate();
    const f = buildSigframe(this.regs.rsp - RED_ZONE, this.namedRegs(), this.sigmask, this.xstate, path.restorer);
    const mem = this.memory();
    const saved = Buffer.alloc(f.bytes.length);
    if (mem.tryRead(f.addr, saved, 0, saved.length) !== saved.length) return undefined;
    try { mem.write(f.addr, f.bytes); } catch { return undefined; }
    this.stackSaved = { addr: f.addr, bytes: saved };
    return f.addr;
  }

  private putBackStack(): void {
    if (!this.stackSaved) return;
    this.memory().write(this.stackSaved.addr, this.stackSaved.bytes);
    this.stackSaved = undefined;
  }

  /** Put everything back and let the task run on as if never seen. */
  release(): void {
    try { this.leaveRemote(); } finally {
      this.mem?.close();
      this.mem = undefined;
      this.tracee.tryDetach(0);
    }
  }

  closeMemory(): void { this.mem?.close(); this.mem = undefined; }
}
