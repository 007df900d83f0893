/**
 * A thread we trace. Every ptrace() and wait4() on it must come from the
 * same OS thread: all calls here are synchronous.
 */
import { CkptError } from '../errors.js';
import { ptrace, tryPtrace, wait4, W, outBuffer } from '../sys/syscalls.js';
import { NT, PTRACE, PTRACE_EVENT, SIG } from '../sys/constants.js';
import {
  decodeUserRegs, encodeUserRegs, encodeIovec,
  decodeRseqConfig, RSEQ_CONFIG_SIZE, type UserRegs, type RseqConfig,
} from '../sys/structs.js';
import { E } from '../sys/errno.js';

export type Stop =
  | { kind: 'event-stop'; sig: number }          // PTRACE_EVENT_STOP: interrupt or group-stop
  | { kind: 'event'; event: number; sig: number } // fork/clone/exec/exit events
  | { kind: 'syscall' }                          // syscall entry or exit (TRACESYSGOOD)
  | { kind: 'signal'; sig: number }              // signal-delivery-stop
  | { kind: 'exited'; status: number }
  | { kind: 'killed'; sig: number };

export function decodeStop(status: number): Stop {
  if (W.ifExited(status)) return { kind: 'exited', status: W.exitStatus(status) };
  if (W.ifSignaled(status)) return { kind: 'killed', sig: W.termSig(status) };
  const sig = W.stopSig(status);
  const event = W.event(status);
  if (event === PTRACE_EVENT.STOP) return { kind: 'event-stop', sig };
  if (event !== 0) return { kind: 'event', event, sig };
  if (sig === (SIG.TRAP | 0x80)) return { kind: 'syscall' };
  return { kind: 'signal', sig };
}

export class Tracee {
  private constructor(readonly tid: number) {}

  /** PTRACE_SEIZE: no signal is sent; the thread keeps running until interrupted. */
  static seize(tid: number, options: number): Tracee {
    ptrace(PTRACE.SEIZE, tid, 0, options, 'ptrace(PTRACE_SEIZE)');
    return new Tracee(tid);
  }

  /** A thread that is already ours (auto-attached child of a traced clone). */
  static adopt(tid: number): Tracee { return new Tracee(tid); }

  setOptions(options: number): void { ptrace(PTRACE.SETOPTIONS, this.tid, 0, options, 'ptrace(PTRACE_SETOPTIONS)'); }

  interrupt(): void { ptrace(PTRACE.INTERRUPT, this.tid, 0, 0, 'ptrace(PTRACE_INTERRUPT)'); }
  /** PTRACE_INTERRUPT of a thread that may have exited meanwhile: false if it has. */
  tryInterrupt(): boolean { return tryPtrace(PTRACE.INTERRUPT, this.tid, 0, 0) >= 0; }

  wait(): Stop { return decodeStop(wait4(this.tid).status); }

  /** Wait for the next stop; a dead thread is an error naming it. */
  waitStopped(): Exclude<Stop, { kind: 'exited' } | { kind: 'killed' }> {
    const s = this.wait();
    if (s.kind === 'exited' || s.kind === 'killed') {
      throw new CkptError('ESRCH_PID', `pid ${this.tid} ${s.kind === 'exited' ? `exited with status ${s.status}` : `was killed by signal ${s.sig}`} while ckpt held it`, { pid: this.tid });
    }
    return s;
  }

  cont(sig = 0): void { ptrace(PTRACE.CONT, this.tid, 0, sig, 'ptrace(PTRACE_CONT)'); }
  syscallStep(sig = 0): void { ptrace(PTRACE.SYSCALL, this.tid, 0, sig, 'ptrace(PTRACE_SYSCALL)'); }
  detach(sig = 0): void { ptrace(PTRACE.DETACH, this.tid, 0, sig, 'ptrace(PTRACE_DETACH)'); }
  /** Detach that tolerates a thread already gone. */
  tryDetach(sig = 0): boolean { return tryPtrace(PTRACE.DETACH, this.tid, 0, sig) >= 0; }

  eventMsg(): number {
    const mem = outBuffer();
    ptrace(PTRACE.GETEVENTMSG, this.tid, 0, mem.addr, 'ptrace(PTRACE_GETEVENTMSG)');
    return Number(mem.buf.readBigUInt64LE(0));
  }

  getRegs(): UserRegs {
    const mem = outBuffer();
    ptrace(PTRACE.GETREGS, this.tid, 0, mem.addr, 'ptrace(PTRACE_GETREGS)');
    return decodeUserRegs(mem.buf);
  }

  setRegs(regs: UserRegs): void {
    const mem = outBuffer();
    encodeUserRegs(regs, mem.buf);
    ptrace(PTRACE.SETREGS, this.tid, 0, mem.addr, 'ptrace(PTRACE_SETREGS)');
  }

  /** The whole xsave area (NT_X86_XSTATE), as long as the kernel says it is. */
  getXstate(): Buffer {
    const mem = outBuffer();
    const areaOff = 64;
    encodeIovec(mem.buf, 0, mem.addr + BigInt(areaOff), mem.size - areaOff);
    ptrace(PTRACE.GETREGSET, this.tid, NT.X86_XSTATE, mem.addr, 'ptrace(PTRACE_GETREGSET, NT_X86_XSTATE)');
    const len = Number(mem.buf.readBigUInt64LE(8));
    return Buffer.from(mem.buf.subarray(areaOff, areaOff + len));
  }

  setXstate(area: Buffer): void {
    const mem = outBuffer();
    const areaOff = 64;
    area.copy(mem.buf, areaOff);
    encodeIovec(mem.buf, 0, mem.addr + BigInt(areaOff), area.length);
    ptrace(PTRACE.SETREGSET, this.tid, NT.X86_XSTATE, mem.addr, 'ptrace(PTRACE_SETREGSET, NT_X86_XSTATE)');
  }

  getSigmask(): bigint {
    const mem = outBuffer();
    ptrace(PTRACE.GETSIGMASK, this.tid, 8, mem.addr, 'ptrace(PTRACE_GETSIGMASK)');
    return mem.buf.readBigUInt64LE(0);
  }

  setSigmask(mask: bigint): void {
    const mem = outBuffer();
    mem.buf.writeBigUInt64LE(mask, 0);
    ptrace(PTRACE.SETSIGMASK, this.tid, 8, mem.addr, 'ptrace(PTRACE_SETSIGMASK)');
  }

  /** The rseq registration, or undefined where the kernel lacks the request. */
  getRseq(): RseqConfig | undefined {
    const mem = outBuffer();
    mem.buf.fill(0, 0, RSEQ_CONFIG_SIZE);
    const r = tryPtrace(PTRACE.GET_RSEQ_CONFIGURATION, this.tid, RSEQ_CONFIG_SIZE, mem.addr);
    if (r === -E.EINVAL || r === -E.EIO) return undefined;
    if (r < 0) ptrace(PTRACE.GET_RSEQ_CONFIGURATION, this.tid, RSEQ_CONFIG_SIZE, mem.addr, 'ptrace(PTRACE_GET_RSEQ_CONFIGURATION)');
    return decodeRseqConfig(mem.buf);
  }
}

