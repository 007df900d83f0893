/**
 * A thread of the process and ckpt's own thread on one CPU, for as long as
 * they pass work back and forth (dump/page-splice.ts: one remote vmsplice per
 * MiB, ckpt splicing meanwhile).
 *
 * Each remote call resumes the thread twice, at its syscall entry and exit
 * stops. On separate CPUs each resume wakes the thread's CPU, halted while
 * ckpt spliced; on this VM the two waits for it took 75-340 ms over the ~1050
 * calls of a 1 GiB dump, against 35-60 ms with both on one CPU. On ckpt's CPU the
 * thread runs as soon as ckpt waits for it, and what else ckpt runs (the
 * helper taking the CRC) has the other CPUs. The vmsplice itself is short
 * (~25 µs a MiB): nothing that mattered ran in parallel with it.
 *
 * Both masks are put back by the returned function; nothing is pinned where
 * the two masks share no CPU or the kernel refuses (a thread of another user
 * without CAP_SYS_NICE). Were ckpt killed in between, the process keeps its
 * one-CPU mask, as it keeps the pipe's write end (architecture.md §5.13).
 */
import { getcpu, schedGetaffinity, schedSetaffinity } from '../sys/syscalls.js';

const isSet = (mask: Buffer, cpu: number) => cpu >> 3 < mask.length && (mask[cpu >> 3] & (1 << (cpu & 7))) !== 0;

/** Pin task `tid` and the calling thread to one CPU both may use; undefined if not done. Call the result to undo. */
export function pinBeside(tid: number): (() => void) | undefined {
  let theirs: Buffer;
  let ours: Buffer;
  let cpu: number;
  try {
    theirs = schedGetaffinity(tid);
    ours = schedGetaffinity(0);
    cpu = getcpu();
  } catch {
    return undefined;
  }
  const both = (c: number) => isSet(theirs, c) && isSet(ours, c);
  if (!both(cpu)) {
    cpu = -1;
    for (let c = 0; c < 8 * Math.min(theirs.length, ours.length); c++) if (both(c)) { cpu = c; break; }
    if (cpu < 0) return undefined;
  }
  const one = Buffer.alloc(Math.max(ours.length, theirs.length));
  one[cpu >> 3] = 1 << (cpu & 7);
  try {
    schedSetaffinity(tid, one.subarray(0, theirs.length));
  } catch {
    return undefined;
  }
  try {
    schedSetaffinity(0, one.subarray(0, ours.length));
  } catch {
    try { schedSetaffinity(tid, theirs); } catch { /* gone */ }
    return undefined;
  }
  return () => {
    try { schedSetaffinity(0, ours); } finally {
      try { schedSetaffinity(tid, theirs); } catch { /* the process is gone, or a child being killed */ }
    }
  };
}
