/**
 * Tasks ckpt makes remote calls in, on the CPU of ckpt's own thread, for as
 * long as they pass work back and forth.
 *
 * Each remote call resumes the task twice, at its syscall entry and exit
 * stops. On another CPU, halted while ckpt worked, the task took ~200 µs to
 * wake each time on this VM: in a 1 GiB dump's page step of the time (one
 * remote vmsplice per MiB) the waits for the two stops came to 75-340 ms over
 * ~1050 calls, against 35-60 ms with both on one CPU; library dumps of a
 * 5 MiB process that they kill took ~3 ms less pinned (medians of 19, twice).
 * On ckpt's CPU the task runs as soon as ckpt waits for it. What the task
 * does in a call is short: nothing that mattered ran in parallel with it.
 *
 * Only tasks that will not run on are pinned (those of a dump that kills
 * them): were ckpt killed meanwhile, the task would keep a one-CPU mask.
 * The calling thread is pinned while any task is; unpin()/unpinAll() put
 * every mask back. Nothing is pinned where no CPU is allowed to both or the
 * kernel refuses (another user's task without CAP_SYS_NICE).
 */
import { getcpu, schedGetaffinity, schedSetaffinity } from '../sys/syscalls.js';

const isSet = (mask: Buffer, cpu: number) => cpu >> 3 < mask.length && (mask[cpu >> 3] & (1 << (cpu & 7))) !== 0;

/** This thread's mask and the CPU it is pinned to, while any task is pinned beside it. */
let self: { mask: Buffer; cpu: number } | undefined;
/** The pinned tasks and their masks before. */
const pinned = new Map<number, Buffer>();
/**
 * How many of this process's threads are pinned to each CPU: shared by the
 * library's engine workers (api/engine.ts passes it with every dump), so
 * that two dumps at once do not both pin to the same CPU and leave another
 * idle. A CLI command has one engine thread, and no table.
 */
let claims: Int32Array | undefined;

/** The CPU table shared with the other engine threads of this process (a SharedArrayBuffer of CPU_CLAIMS_BYTES). */
export function shareCpuClaims(buf: SharedArrayBuffer | undefined): void {
  if (buf) claims = new Int32Array(buf);
}

export const CPU_CLAIMS_BYTES = 4 * 1024;

function oneCpu(cpu: number, length: number): Buffer {
  const mask = Buffer.alloc(Math.max(length, (cpu >> 3) + 1));
  mask[cpu >> 3] = 1 << (cpu & 7);
  return mask;
}

/**
 * The CPU to pin to: one both masks allow, the fewest of this process's
 * threads pinned there (`claims`), then the one the calling thread is on
 * (`current`), then the lowest. -1 if the masks share none.
 */
export function chooseCpu(ours: Buffer, theirs: Buffer, current: number, claims?: Int32Array): number {
  const claimed = (c: number) => (claims && c < claims.length ? Atomics.load(claims, c) : 0);
  let best = -1;
  for (let c = 0; c < 8 * Math.min(ours.length, theirs.length); c++) {
    if (!isSet(ours, c) || !isSet(theirs, c)) continue;
    if (best < 0 || claimed(c) < claimed(best) || (claimed(c) === claimed(best) && c === current)) best = c;
  }
  return best;
}

/**
 * Pin task `tid` beside the calling thread. True if this call pinned it
 * (then unpin it when done); false if it was already, or cannot be.
 */
export function pinBeside(tid: number): boolean {
  if (pinned.has(tid)) return false;
  let theirs: Buffer;
  try { theirs = schedGetaffinity(tid); } catch { return false; }
  if (!self) {
    let ours: Buffer;
    let cpu: number;
    try {
      ours = schedGetaffinity(0);
      cpu = chooseCpu(ours, theirs, getcpu(), claims);
      if (cpu < 0) return false;
      schedSetaffinity(0, oneCpu(cpu, ours.length));
    } catch {
      return false;
    }
    self = { mask: ours, cpu };
    if (claims && cpu < claims.length) Atomics.add(claims, cpu, 1);
  }
  let done = false;
  if (isSet(theirs, self.cpu)) {
    try { schedSetaffinity(tid, oneCpu(self.cpu, theirs.length)); done = true; } catch { /* refused: not pinned */ }
  }
  if (!done) {
    if (pinned.size === 0) restoreSelf();
    return false;
  }
  pinned.set(tid, theirs);
  return true;
}

/** The mask task `tid` had before it was pinned, or undefined if it is not pinned (then it is its own). */
export function maskBeforePin(tid: number): Buffer | undefined {
  return pinned.get(tid);
}

/** Put task `tid`'s mask back (if it is gone, there is nothing to put back); this thread's with the last one. */
export function unpin(tid: number): void {
  const mask = pinned.get(tid);
  if (!mask) return;
  pinned.delete(tid);
  try {
    schedSetaffinity(tid, mask);
  } catch { /* gone: killed, or a snapshot child reaped */ } finally {
    if (pinned.size === 0) restoreSelf();
  }
}

/** Every pinned task's mask back, and this thread's: the end of an operation, whatever happened. */
export function unpinAll(): void {
  for (const tid of [...pinned.keys()]) unpin(tid);
  restoreSelf();
}

function restoreSelf(): void {
  if (!self) return;
  const { mask, cpu } = self;
  self = undefined;
  if (claims && cpu < claims.length) Atomics.sub(claims, cpu, 1);
  try { schedSetaffinity(0, mask); } catch { /* its own mask, refused: the thread stays where it is */ }
}
