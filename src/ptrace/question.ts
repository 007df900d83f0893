/**
 * Questions for a frozen task: remote calls whose answers the kernel writes
 * into the task's memory (prctl(PR_GET_...), rt_sigaction, getitimer...).
 * askAll puts them to the main thread in chains (chain.ts), one resume for
 * many calls, where the task allows it, and one remote call each where not.
 *
 * A chain returns no rax: each answer slot is filled with SENTINEL before, and
 * a slot the call left as it was is asked again on its own, which gives the
 * errno of a call that failed (and the same answer, if it was the sentinel's
 * bytes).
 */
import { CkptError } from '../errors.js';
import type { RemoteCaller } from './remote.js';
import type { TraceeMemory } from './memory.js';
import { runChain, chainCapacity, type ChainSite } from './chain.js';

type Arg = number | bigint;

/** Bytes of one answer slot: every question's answer fits. */
export const SLOT = 64;
const SENTINEL = 0xa5;

export class Question<T> {
  private value?: { answer: T };

  constructor(
    readonly nr: number,
    /** The call's arguments, given the address of its answer slot. */
    readonly args: (slot: number) => Arg[],
    /** Bytes of the answer (at most SLOT). */
    readonly size: number,
    /** The call as an error names it. */
    readonly what: string,
    readonly decode: (answer: Buffer) => T,
  ) {
    if (size > SLOT) throw new CkptError('INTERNAL', `${what}: an answer of ${size} bytes`);
  }

  get answer(): T {
    if (!this.value) throw new CkptError('INTERNAL', `${this.what} was not asked`);
    return this.value.answer;
  }

  answered(bytes: Buffer): void { this.value = { answer: this.decode(bytes) }; }
}

/** Where questions are asked: the main thread's remote session, its scratch mapping, and a chain site if it has one. */
export interface Asking {
  remote: RemoteCaller;
  mem: TraceeMemory;
  /** The answer slots (and, after them, a chain's frames). */
  scratch: { addr: number; size: number };
  /** A chain site whose area is the part of scratch past the slots; undefined: one call each. */
  chain?: (area: number, areaSize: number) => ChainSite | undefined;
}

/** Ask every question; what one call each would throw (a failed call), this throws. */
export function askAll(a: Asking, questions: Question<unknown>[]): { chained: number } {
  let chained = 0;
  // Half of scratch for the slots, half for the frames: both hold about 500 questions.
  const slots = Math.floor(a.scratch.size / 2 / SLOT);
  const area = a.scratch.addr + slots * SLOT;
  const site = a.chain?.(area, a.scratch.addr + a.scratch.size - area);
  const per = site ? Math.min(slots, chainCapacity(site.areaSize)) : 1;
  for (let i = 0; i < questions.length; i += per) {
    const batch = questions.slice(i, i + per);
    if (!site || batch.length < 2) {
      for (const q of batch) askOne(a, q);
      continue;
    }
    a.mem.write(a.scratch.addr, Buffer.alloc(batch.length * SLOT, SENTINEL));
    runChain(site, batch.map((q, k) => ({ nr: q.nr, args: q.args(a.scratch.addr + k * SLOT) })));
    a.remote.calls += batch.length;
    chained += batch.length;
    const answers = a.mem.read(a.scratch.addr, batch.length * SLOT);
    batch.forEach((q, k) => {
      const bytes = answers.subarray(k * SLOT, k * SLOT + q.size);
      if (bytes.every((b) => b === SENTINEL)) askOne(a, q);
      else q.answered(Buffer.from(bytes));
    });
  }
  return { chained };
}

function askOne(a: Asking, q: Question<unknown>): void {
  a.remote.call(q.nr, q.args(a.scratch.addr), q.what);
  q.answered(a.mem.read(a.scratch.addr, q.size));
}
