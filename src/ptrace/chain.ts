/**
 * Many remote calls in one resume of a frozen task: a chain of rt_sigreturn
 * frames, written into its scratch mapping, each of which sets the registers
 * for one syscall on the return path's `syscall; (xor)*; ret`
 * (safe-return.ts) with rsp on the next frame, so that its `ret` goes into
 * the restorer and the restorer's rt_sigreturn into the next call.
 *
 * How ckpt gets control back: the marker, a signal the process ignores (by
 * default or by SIG_IGN: SIGURG, SIGWINCH or SIGCHLD, not caught, blocked or
 * pending), is made pending first, by a single remote tgkill whose result
 * ckpt checks: a chain never runs without its stop. Every frame blocks every
 * signal but the last, which unblocks the marker: a traced task stops at its
 * delivery (a signal-delivery-stop) as soon as it enters that frame, and ckpt
 * ends the stop with signal 0 and blocks every signal again. (The last
 * frame's own call, a tgkill of the marker, runs only if ckpt has died.)
 *
 * Why it is safe: the chain needs nobody. Were ckpt to die at any instant,
 * the task would run the rest of the chain by itself; untraced, it drops the
 * marker as the ignored signal it is, and the last `ret` goes into the task's
 * return frame, which puts back its registers, fpu state and signal mask, as
 * every remote call's would. The calls are questions (get this, get that),
 * so running them unasked changes nothing. No code is written into the task.
 *
 * What it cannot do: return rax. Each call's answer must be in memory (see
 * question.ts, which tells a call that failed by the bytes it did not write).
 */
import { CkptError } from '../errors.js';
import { NR } from '../sys/nr.js';
import { ALL_SIGNALS, SIG } from '../sys/constants.js';
import type { UserRegs } from '../sys/structs.js';
import { diePoint } from '../fault.js';
import type { Tracee } from './tracee.js';
import { callRegs, type RemoteCaller } from './remote.js';
import type { TraceeMemory } from './memory.js';
import { buildCallFrame, CALL_FRAME_SIZE, type ReturnPath } from './safe-return.js';

type Arg = number | bigint;
export interface ChainCall { nr: number; args: Arg[] }

/** Where and on what a chain runs: all of it set up by FrozenTask's remote session. */
export interface ChainSite {
  tracee: Tracee;
  /** The remote session the chain runs in (for the marker's tgkill). */
  remote: RemoteCaller;
  mem: TraceeMemory;
  /** The task's process and thread ids as its own pid namespace numbers them (tgkill runs there). */
  tgid: number;
  tid: number;
  path: ReturnPath;
  /** The task's registers (cs, ss, eflags carry over into every frame). */
  base: UserRegs;
  /** The task's return frame: where the last call's `ret` goes. */
  home: bigint;
  /** That frame's xsave area, shared by every frame of the chain. */
  fpstate: bigint;
  /** Memory of ckpt's for the frames (its scratch mapping). */
  area: number;
  areaSize: number;
  marker: number;
}

/** Signals whose default action is to ignore them, the rarest in use first. */
const MARKERS = [SIG.URG, SIG.WINCH, SIG.CHLD];

/**
 * With the x86 user shadow stack on, rt_sigreturn wants a token ckpt's frames
 * do not have (the task would get SIGSEGV): no chains for such a task.
 * `status`: the raw fields of its /proc/TID/status.
 */
export function shadowStackOn(status: { raw: Record<string, string> }): boolean {
  return /\bshstk\b/.test(status.raw['x86_Thread_features'] ?? '');
}

/** The calls one chain can hold in `areaSize` bytes (one frame more for the marker). */
export function chainCapacity(areaSize: number): number {
  return Math.max(0, Math.floor((areaSize - 16) / CALL_FRAME_SIZE) - 1);
}

/**
 * A marker for a task, from /proc/TID/status read before its remote session:
 * a signal it neither catches nor blocks (a blocked one may be waited for with
 * sigwait or a signalfd) and that is not pending, or undefined.
 */
export function markerFor(status: { sigCgt: bigint; sigBlk: bigint; sigPnd: bigint; shdPnd: bigint }): number | undefined {
  const bit = (mask: bigint, sig: number) => ((mask >> BigInt(sig - 1)) & 1n) === 1n;
  return MARKERS.find((sig) => ![status.sigCgt, status.sigBlk, status.sigPnd, status.shdPnd].some((m) => bit(m, sig)));
}

/**
 * Run `calls` in the task, in order, in one resume. On return the task is in
 * the marker's signal-delivery-stop (the next remote call or leaveRemote
 * resumes it with signal 0). Throws if it stopped any other way.
 */
export function runChain(site: ChainSite, calls: ChainCall[]): void {
  if (calls.length > chainCapacity(site.areaSize)) {
    throw new CkptError('INTERNAL', `pid ${site.tracee.tid}: a chain of ${calls.length} calls does not fit in ${site.areaSize} bytes`, { pid: site.tracee.tid });
  }
  const t = site.tracee;
  // Frames are 16-byte aligned plus 8, as the kernel places a signal frame.
  const first = ((BigInt(site.area) + 15n) & ~15n) + 8n;
  const frameAt = (i: number) => first + BigInt(i * CALL_FRAME_SIZE);
  const all = [...calls, { nr: NR.tgkill, args: [site.tgid, site.tid, site.marker] }];
  const bytes = Buffer.concat(all.map((c, i) => {
    const last = i === all.length - 1;
    const regs = callRegs(site.base, c.nr, c.args, site.path.gadget, last ? site.home : frameAt(i + 1));
    const mask = last ? ALL_SIGNALS & ~(1n << BigInt(site.marker - 1)) : ALL_SIGNALS;
    return buildCallFrame(regs, mask, site.fpstate, site.path.restorer);
  }));
  site.mem.write(Number(first), bytes);
  // The marker, pending and blocked until the last frame; without it the chain would not stop.
  const r = site.remote.raw(NR.tgkill, [site.tgid, site.tid, site.marker]);
  if (r !== 0n) throw new CkptError('INTERNAL', `pid ${t.tid}: remote tgkill(${site.marker}) for a chain of calls: ${r}`, { pid: t.tid });
  // As if the frame before the first had just returned into the restorer.
  t.setRegs({ ...site.base, orig_rax: -1n, rip: site.path.restorer, rsp: frameAt(0) + 8n });
  diePoint('chain');
  site.remote.contUntil((s) => s.kind === 'signal' && s.sig === site.marker, `during a chain of ${calls.length} remote calls`);
  diePoint('chained');
  // The last frame's mask lets the marker in: no signal may come between the calls that follow.
  t.setSigmask(ALL_SIGNALS);
}
