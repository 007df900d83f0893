/**
 * Many syscalls in one resume of a task that runs ckpt's own code: the
 * restore's trampoline holds, beside its `syscall; int3`, a loop that makes
 * each call of a table in the task's memory and stores its result there,
 * then stops at an int3. One round trip for a table instead of one per call.
 * (A task ckpt dumps runs no code of ckpt's: its questions go in chains of
 * frames instead, ptrace/chain.ts.)
 *
 * The table: per call 8 u64s, nr and six arguments, then the result. rbx
 * points at the first entry, r12 holds the count. Both survive `syscall`.
 */
import type { RemoteCaller } from './remote.js';
import type { TraceeMemory } from './memory.js';

type Arg = number | bigint;
export interface BatchCall { nr: number; args: Arg[] }

export const ENTRY_SIZE = 64;

/* loop: test r12,r12; jz done; mov rax,[rbx]; mov rdi,[rbx+8]; mov rsi,[rbx+16];
 *       mov rdx,[rbx+24]; mov r10,[rbx+32]; mov r8,[rbx+40]; mov r9,[rbx+48];
 *       syscall; mov [rbx+56],rax; add rbx,64; dec r12; jmp loop
 * done: int3 */
export const BATCH_CODE = Buffer.from([
  0x4d, 0x85, 0xe4, 0x74, 0x2a,
  0x48, 0x8b, 0x03, 0x48, 0x8b, 0x7b, 0x08, 0x48, 0x8b, 0x73, 0x10, 0x48, 0x8b, 0x53, 0x18,
  0x4c, 0x8b, 0x53, 0x20, 0x4c, 0x8b, 0x43, 0x28, 0x4c, 0x8b, 0x4b, 0x30,
  0x0f, 0x05, 0x48, 0x89, 0x43, 0x38, 0x48, 0x83, 0xc3, 0x40, 0x49, 0xff, 0xcc, 0xeb, 0xd1,
  0xcc,
]);

/** The table's bytes for `calls` (results zero). */
export function encodeBatch(calls: BatchCall[]): Buffer {
  const b = Buffer.alloc(calls.length * ENTRY_SIZE);
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  calls.forEach((c, i) => {
    view.setBigInt64(i * ENTRY_SIZE, BigInt(c.nr), true);
    for (let j = 0; j < 6; j++) view.setBigUint64(i * ENTRY_SIZE + 8 + j * 8, BigInt.asUintN(64, BigInt(c.args[j] ?? 0)), true);
  });
  return b;
}

/**
 * Make `calls` in order through the loop at `code`, with their table at
 * `table` (written already, encodeBatch); their raw results (-errno on failure).
 */
export function runBatch(remote: RemoteCaller, mem: TraceeMemory, code: bigint, table: number, count: number, meanwhile?: () => void): bigint[] {
  remote.runToTrap(code, { rbx: BigInt(table), r12: BigInt(count) }, meanwhile);
  remote.calls += count;
  const out = mem.read(table, count * ENTRY_SIZE);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  return Array.from({ length: count }, (_, i) => view.getBigInt64(i * ENTRY_SIZE + 56, true));
}
