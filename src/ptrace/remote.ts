/**
 * Remote syscalls: make a stopped tracee run one syscall of our choosing.
 *
 * The tracee's registers are set to the call (rax = nr; rdi, rsi, rdx, r10,
 * r8, r9 = args) with rip on a `syscall` instruction already in its memory.
 * Two ways to get control back:
 *  - 'int3': the gadget is `syscall; int3` (ckpt's seed and trampoline): one
 *    resume, then a SIGTRAP stop that we swallow.
 *  - 'syscall-stop': any `0f 05` will do (e.g. inside the vDSO): resume with
 *    PTRACE_SYSCALL to the entry stop, again to the exit stop. The next
 *    instruction never runs, so the bytes around the gadget do not matter.
 * orig_rax is set to -1 so that the kernel never restarts a syscall the
 * tracee was blocked in under our registers.
 */
import { CkptError } from '../errors.js';
import { sysError } from '../sys/libc.js';
import { syscallName } from '../sys/nr.js';
import { PTRACE_EVENT, SIG } from '../sys/constants.js';
import type { UserRegs } from '../sys/structs.js';
import type { Stop, Tracee } from './tracee.js';
import { diePoint } from '../fault.js';

export type GadgetKind = 'int3' | 'syscall-stop';

export interface RemoteEvents {
  /** Pids of children reported by fork/clone events during the call. */
  children: number[];
}

const MAX_GROUP_STOPS = 16;
const ARG_REGS = ['rdi', 'rsi', 'rdx', 'r10', 'r8', 'r9'] as const;
type Arg = number | bigint;

/** The registers of one call: `base` with rax = nr, the arguments, rip on the `syscall`, rsp. */
export function callRegs(base: UserRegs, nr: number, args: Arg[], rip: bigint, rsp: bigint): UserRegs {
  const regs: UserRegs = { ...base, rax: BigInt(nr), orig_rax: -1n, rip, rsp };
  ARG_REGS.forEach((r, i) => { regs[r] = BigInt.asUintN(64, BigInt(args[i] ?? 0)); });
  return regs;
}

export class RemoteCaller {
  /** Number of remote syscalls made (for -v breakdowns). */
  calls = 0;

  constructor(
    readonly tracee: Tracee,
    private gadget: bigint,
    private kind: GadgetKind,
    /** Registers to build each call on (cs, ss, eflags, fs_base stay valid). */
    private base: UserRegs,
  ) {}

  setGadget(gadget: bigint, kind: GadgetKind): void {
    this.gadget = gadget;
    this.kind = kind;
  }

  /** Build later calls on these registers (a dump moves its return frame, ptrace/safe-return.ts). */
  setBase(base: UserRegs): void { this.base = base; }

  /**
   * Run one syscall; returns the raw result (negative errno on failure).
   * `meanwhile` runs on ckpt's thread while the tracee is in the call: work
   * that overlaps it on another core. What it throws is thrown once the
   * tracee has stopped again.
   */
  raw(nr: number, args: Arg[] = [], events?: RemoteEvents, kind: GadgetKind = this.kind, meanwhile?: () => void): bigint {
    let thrown: { error: unknown } | undefined;
    const overlap = () => {
      try { meanwhile?.(); } catch (error) { thrown = { error }; }
      meanwhile = undefined;
    };
    const r = this.run(nr, args, events, kind, overlap);
    if (thrown) throw thrown.error;
    return r;
  }

  private run(nr: number, args: Arg[], events: RemoteEvents | undefined, kind: GadgetKind, overlap: () => void): bigint {
    const t = this.tracee;
    t.setRegs(callRegs(this.base, nr, args, this.gadget, this.base.rsp));
    diePoint('call');
    this.calls++;
    let groupStops = 0;
    if (kind === 'int3') {
      t.cont(0);
      overlap();
      for (;;) {
        const s = t.waitStopped();
        if (s.kind === 'signal' && s.sig === SIG.TRAP) break;
        if (s.kind === 'event') { this.noteEvent(s.event, events); t.cont(0); continue; }
        if (s.kind === 'event-stop' && ++groupStops < MAX_GROUP_STOPS) { t.cont(0); continue; }
        throw this.unexpected(nr, s);
      }
    } else {
      let syscallStops = 0;
      t.syscallStep(0);
      for (;;) {
        const s = t.waitStopped();
        if (s.kind === 'syscall') {
          diePoint(++syscallStops === 1 ? 'entry' : 'exit');
          if (syscallStops === 2) break;
          t.syscallStep(0);
          overlap();
          continue;
        }
        if (s.kind === 'event') { this.noteEvent(s.event, events); t.syscallStep(0); continue; }
        // A stopped process (SIGSTOP) reports its group-stop again when resumed.
        if (s.kind === 'event-stop' && ++groupStops < MAX_GROUP_STOPS) { t.syscallStep(0); continue; }
        throw this.unexpected(nr, s);
      }
    }
    return BigInt.asIntN(64, t.getRegs().rax);
  }

  /**
   * Run code of ckpt's own in the tracee (an int3 at its end: ptrace/batch.ts)
   * from `rip`, with `regs` over the base registers, until that int3; the
   * registers then. `meanwhile` as for raw().
   */
  runToTrap(rip: bigint, regs: Partial<UserRegs>, meanwhile?: () => void): UserRegs {
    this.tracee.setRegs({ ...this.base, ...regs, orig_rax: -1n, rip });
    this.contUntil((s) => s.kind === 'signal' && s.sig === SIG.TRAP, `in ckpt's code at 0x${rip.toString(16)}`, meanwhile);
    return this.tracee.getRegs();
  }

  /**
   * Resume the tracee (PTRACE_CONT) on the registers set, and wait for the
   * stop `done` accepts; a group-stop is resumed, any other stop is INTERNAL
   * (`where` says in what). `meanwhile` as for raw().
   */
  contUntil(done: (s: Stop) => boolean, where: string, meanwhile?: () => void): void {
    const t = this.tracee;
    let thrown: { error: unknown } | undefined;
    t.cont(0);
    try { meanwhile?.(); } catch (error) { thrown = { error }; }
    let groupStops = 0;
    for (;;) {
      const s = t.waitStopped();
      if (done(s)) break;
      // A stopped process (SIGSTOP) reports its group-stop again when resumed.
      if (s.kind === 'event-stop' && ++groupStops < MAX_GROUP_STOPS) { t.cont(0); continue; }
      throw new CkptError('INTERNAL', `pid ${t.tid}: unexpected ${JSON.stringify(s)} ${where}`, { pid: t.tid });
    }
    if (thrown) throw thrown.error;
  }

  /** Run one syscall and throw a SYSCALL error naming it if it fails. */
  call(nr: number, args: Arg[] = [], what?: string, events?: RemoteEvents, meanwhile?: () => void): number {
    const r = this.raw(nr, args, events, this.kind, meanwhile);
    if (r < 0n && r > -4096n) {
      throw sysError(Number(-r), `remote ${what ?? syscallName(nr)}`, { pid: this.tracee.tid });
    }
    return Number(r);
  }

  private noteEvent(event: number, events?: RemoteEvents): void {
    if (event === PTRACE_EVENT.FORK || event === PTRACE_EVENT.CLONE || event === PTRACE_EVENT.VFORK) {
      events?.children.push(this.tracee.eventMsg());
    }
  }

  private unexpected(nr: number, s: { kind: string }): CkptError {
    return new CkptError('INTERNAL', `pid ${this.tracee.tid}: unexpected ${JSON.stringify(s)} during remote ${syscallName(nr)}`, { pid: this.tracee.tid });
  }
}
