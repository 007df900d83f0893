/**
 * What a kind's restore half works with: the task being rebuilt, a way to
 * run syscalls in it, and a scratch area in its memory for their arguments.
 */
import { CkptError } from '../errors.js';
import type { RemoteCaller } from '../ptrace/remote.js';
import type { TraceeMemory } from '../ptrace/memory.js';

export interface Scratch {
  readonly addr: number;
  readonly size: number;
  /** Copy bytes into the scratch area (8-byte aligned) and return their address. */
  put(data: Buffer): number;
  /** Forget everything put so far. */
  reset(): void;
}

export interface RestoreTarget {
  /** The pid as ckpt sees it. */
  readonly pid: number;
  readonly remote: RemoteCaller;
  readonly mem: TraceeMemory;
  readonly scratch: Scratch;
  log(msg: string): void;
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
  };
}
