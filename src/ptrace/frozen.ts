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
import { readStatus } from '../proc/index.js';
import { PROT, MAP, PTRACE_EVENT, PTRACE_O } from '../sys/constants.js';
import { NR } from '../sys/nr.js';
import type { UserRegs } from '../sys/structs.js';
import { Tracee } from './tracee.js';
import { RemoteCaller } from './remote.js';
import { TraceeMemory } from './memory.js';

const ALL_SIGNALS = 0xffffffffffffffffn;

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
  private mem?: TraceeMemory;

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

  memory(): TraceeMemory {
    this.mem ??= new TraceeMemory(this.tid);
    return this.mem;
  }

  /**
   * Prepare remote syscalls through a `syscall` instruction at `gadget`
   * (found in the vDSO). Signals are blocked meanwhile so that none can
   * interleave with our calls; they stay pending and arrive after detach.
   */
  enterRemote(gadget: bigint): RemoteCaller {
    if (this.remote) return this.remote;
    this.tracee.setSigmask(ALL_SIGNALS);
    this.remote = new RemoteCaller(this.tracee, gadget, 'syscall-stop', this.regs);
    return this.remote;
  }

  /** A private anonymous scratch mapping in the task, for syscall in/out buffers. */
  scratchMapping(size = 64 * 1024): ScratchMapping {
    if (this.scratch) return this.scratch;
    if (!this.remote) throw new CkptError('INTERNAL', 'scratch mapping before enterRemote');
    const addr = this.remote.call(NR.mmap, [0, size, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS, -1, 0], 'mmap(scratch)');
    this.scratch = { addr, size };
    return this.scratch;
  }

  /** Undo everything enterRemote/scratchMapping did; back to an interrupt-stop. */
  leaveRemote(): void {
    if (!this.remote) return;
    const remote = this.remote;
    this.remote = undefined;
    if (this.scratch) {
      remote.call(NR.munmap, [this.scratch.addr, this.scratch.size], 'munmap(scratch)');
      this.scratch = undefined;
    }
    this.tracee.setRegs(this.regs);
    this.tracee.setSigmask(this.sigmask);
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
