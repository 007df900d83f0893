/**
 * Signals that set a flag instead of killing: for an engine that runs
 * synchronously on this very thread (the CLI's dump and restore), where no
 * JavaScript handler could run before the engine is done.
 *
 * The handler is six instructions of our own in a read+exec page: it puts
 * the signal's number in word 0 of a SharedArrayBuffer, if that word is still
 * 0 (lock cmpxchg), and returns. The engine reads that word at every step and
 * between page batches (src/fault.ts checkAbort). SA_RESTART: a syscall the
 * signal interrupts (wait4, a futex wait) goes on. For a signal sent to the
 * process, the kernel picks the main thread first when it does not block the
 * signal, so Node's other threads never see it.
 */
import { allocNative, freeNative, mapCode, sharedNative, syscall } from './libc.js';
import { NR } from './nr.js';
import { ALL_SIGNALS } from './constants.js';

const SA_RESTART = 0x10000000n;
const SA_RESTORER = 0x04000000n;
/** struct kernel_sigaction (x86_64): handler, flags, restorer, mask. */
const SIGACTION_SIZE = 32;

/** handler(signo): cmpxchg(flag, 0, signo); restorer: rt_sigreturn. */
function handlerCode(flagAddr: bigint): { code: Buffer; restorerAt: number } {
  const addr = Buffer.alloc(8);
  addr.writeBigUInt64LE(flagAddr);
  const handler = Buffer.concat([
    Buffer.from([0x31, 0xc0]), //             xor eax, eax
    Buffer.from([0x89, 0xf9]), //             mov ecx, edi
    Buffer.from([0x48, 0xba]), addr, //       movabs rdx, flag
    Buffer.from([0xf0, 0x0f, 0xb1, 0x0a]), // lock cmpxchg [rdx], ecx
    Buffer.from([0xc3]), //                   ret
  ]);
  const restorer = Buffer.from([0xb8, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05]); // mov eax, 15 (rt_sigreturn); syscall
  return { code: Buffer.concat([handler, restorer]), restorerAt: handler.length };
}

/**
 * From now until the returned function is called, each of `signals` sets
 * word 0 of `flag` (if 0) to its number. The function puts back the actions
 * the signals had before.
 */
export function flagSignals(flag: SharedArrayBuffer, signals: number[]): () => void {
  const { code, restorerAt } = handlerCode(sharedNative(flag, 0, 4).addr);
  const page = mapCode(code);
  const act = allocNative(SIGACTION_SIZE * (1 + signals.length));
  act.buf.writeBigUInt64LE(page.addr, 0);
  act.buf.writeBigUInt64LE(SA_RESTART | SA_RESTORER, 8);
  act.buf.writeBigUInt64LE(page.addr + BigInt(restorerAt), 16);
  act.buf.writeBigUInt64LE(ALL_SIGNALS, 24);
  const oldAt = (i: number) => act.addr + BigInt(SIGACTION_SIZE * (1 + i));
  const installed: number[] = [];
  const putBack = () => {
    for (const [i, sig] of signals.entries()) {
      if (installed.includes(sig)) syscall(NR.rt_sigaction, [sig, oldAt(i), 0, 8], { what: 'rt_sigaction' });
    }
    page.unmap();
    freeNative(act);
  };
  try {
    for (const [i, sig] of signals.entries()) {
      syscall(NR.rt_sigaction, [sig, act.addr, oldAt(i), 8], { what: 'rt_sigaction' });
      installed.push(sig);
    }
  } catch (e) {
    putBack();
    throw e;
  }
  return putBack;
}
