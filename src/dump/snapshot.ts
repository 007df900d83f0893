/**
 * A copy-on-write snapshot of a frozen process's memory, for a short freeze
 * with --leave-running (the idea of DMTCP's forked checkpointing): a remote
 * clone() without CLONE_VM makes a child that shares every private page
 * copy-on-write and starts traced and stopped (TRACECLONE); the process runs
 * on while its pages are copied from the child, which is then killed.
 * exit_signal 0: the process gets no SIGCHLD for it.
 * Shared mappings and MADV_DONTFORK/MADV_WIPEONFORK areas do not follow a
 * fork: they are copied from the process itself while it is still frozen.
 * A child with exit_signal 0 is never reaped automatically and the process
 * would not reap it: once it is dead, ckpt freezes the process again for a
 * moment and makes it reap its zombie (a remote wait4 with __WALL).
 */
import { NR } from '../sys/nr.js';
import { SIG, WALL } from '../sys/constants.js';
import { tryKill, wait4 } from '../sys/syscalls.js';
import { Tracee } from '../ptrace/tracee.js';
import { TraceeMemory } from '../ptrace/memory.js';
import { FrozenTask } from '../ptrace/frozen.js';
import { VmaKind, VM_FLAG_BITS, type VmaPlan } from '../kinds/vma.js';

/** Below this, the fork costs more freeze than it saves. */
export const SNAPSHOT_MIN_BYTES = 16 * 1024 * 1024;

export interface Snapshot { pid: number; mem: TraceeMemory; discard(): void }

export function followsFork(plan: VmaPlan): boolean {
  if (plan.kind !== VmaKind.ANON && plan.kind !== VmaKind.FILE_PRIVATE) return false;
  return (plan.vmFlags & (VM_FLAG_BITS.dc | VM_FLAG_BITS.wf)) === 0;
}

/** The snapshot child, or undefined if the clone failed (then copy while frozen). */
export function forkSnapshot(task: FrozenTask, gadget: bigint): Snapshot | undefined {
  const parent = task.tid;
  const remote = task.enterRemote(gadget);
  const events = { children: [] as number[] };
  let child = -1;
  try {
    const r = remote.raw(NR.clone, [0, 0, 0, 0, 0], events);
    child = events.children[0] ?? (r > 0n ? Number(r) : -1);
  } finally {
    task.leaveRemote();
  }
  if (child <= 0) return undefined;
  const tracee = Tracee.adopt(child);
  for (;;) {
    const s = tracee.wait();
    if (s.kind === 'exited' || s.kind === 'killed') return undefined;
    if (s.kind === 'event-stop') break;
    tracee.cont(0);
  }
  const mem = new TraceeMemory(child);
  return {
    pid: child, mem,
    discard() {
      mem.close();
      tryKill(child, SIG.KILL);
      try { wait4(child); } catch { /* reaped */ }
      reapInParent(parent, child, gadget);
    },
  };
}

/** Make `parent` reap its dead child `child`: a moment's freeze and one remote wait4. */
function reapInParent(parent: number, child: number, gadget: bigint): void {
  let t: FrozenTask | undefined;
  try {
    t = FrozenTask.freeze(parent);
    t.enterRemote(gadget).raw(NR.wait4, [child, 0, WALL, 0]);
  } catch {
    // The parent is gone or busy elsewhere: the zombie is all that is left.
  } finally {
    t?.release();
  }
}
