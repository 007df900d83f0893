/**
 * What a kind's restore half works with: the task being rebuilt, a way to
 * run syscalls in it, and a scratch area in its memory for their arguments.
 */
import { CkptError } from '../errors.js';
import type { RemoteCaller } from '../ptrace/remote.js';
import type { TraceeMemory } from '../ptrace/memory.js';
import type { BatchCall } from '../ptrace/batch.js';
import { sysError } from '../sys/libc.js';

export interface Scratch {
  readonly addr: number;
  readonly size: number;
  /** Copy bytes into the scratch area (8-byte aligned) and return their address. */
  put(data: Buffer): number;
  /** Forget everything put so far. */
  reset(): void;
  /** Bytes still free. */
  left(): number;
  /** Where the next put goes; rewind(mark) forgets what was put after it. */
  mark(): number;
  rewind(mark: number): void;
}

export interface RestoreTarget {
  /** The pid as ckpt sees it. */
  readonly pid: number;
  readonly remote: RemoteCaller;
  readonly mem: TraceeMemory;
  readonly scratch: Scratch;
  /** Many calls in one resume (ptrace/batch.ts), where the task has ckpt's loop; their raw results. */
  readonly batch?: (calls: BatchCall[], meanwhile?: () => void) => bigint[];
  log(msg: string): void;
}

type Arg = number | bigint;
/** A call for callAll: `what` names it in an error. */
export interface TargetCall { nr: number; args: Arg[]; what: string }

/** Calls per batch: their table (64 bytes each) goes in the scratch area after what is there. */
const BATCH_MAX = 128;
/** The scratch area a batch's table takes at most. */
export const BATCH_TABLE_BYTES = BATCH_MAX * 64;

/**
 * Make `calls` in order, in one resume per BATCH_MAX where the target can
 * batch them, else one call each; their raw results. With `check`, a failed
 * call throws as RemoteCaller.call() would (in a batch, the calls after it
 * were made too: a restore that fails goes as a whole). `meanwhile` runs while
 * the first of them do (RemoteCaller.raw).
 */
/** A call's raw result that is -errno throws as RemoteCaller.call() would, naming the call. */
export function throwIfFailed(t: RestoreTarget, c: TargetCall, r: bigint): void {
  if (r < 0n && r > -4096n) throw sysError(Number(-r), `remote ${c.what}`, { pid: t.pid });
}

export function callAll(t: RestoreTarget, calls: TargetCall[], opts: { check?: boolean; meanwhile?: () => void } = {}): bigint[] {
  let meanwhile = opts.meanwhile;
  const results: bigint[] = [];
  const fail = (c: TargetCall, r: bigint) => { if (opts.check) throwIfFailed(t, c, r); };
  if (!t.batch || calls.length < 2) {
    for (const c of calls) {
      const r = t.remote.raw(c.nr, c.args, undefined, undefined, meanwhile);
      meanwhile = undefined;
      fail(c, r);
      results.push(r);
    }
    return results;
  }
  // Every part's table goes in the same place, after what the calls' arguments took.
  const mark = t.scratch.mark();
  for (let i = 0; i < calls.length; i += BATCH_MAX) {
    const part = calls.slice(i, i + BATCH_MAX);
    t.scratch.rewind(mark);
    const got = t.batch(part, meanwhile);
    meanwhile = undefined;
    part.forEach((c, k) => fail(c, got[k]));
    results.push(...got);
  }
  return results;
}

export function makeScratch(mem: TraceeMemory, addr: number, size: number): Scratch {
  let used = 0;
  return {
    addr, size,
    put(data: Buffer): number {
      const at = used;
      const next = Math.ceil((at + data.length) / 8) * 8;
      if (next > size) throw new CkptError('INTERNAL', `scratch area of ${size} bytes is full`);
      mem.write(addr + at, data);
      used = next;
      return addr + at;
    },
    reset() { used = 0; },
    left() { return size - used; },
    mark() { return used; },
    rewind(mark: number) { used = Math.min(used, mark); },
  };
}
