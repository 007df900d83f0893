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
import { PTRACE_O, SIG, WALL } from '../sys/constants.js';
import { diePoint } from '../fault.js';
import { innermost, readStat, readStatus } from '../proc/index.js';
import { findReturnPath, EXIT_FRAME_CODE } from '../ptrace/safe-return.js';
import { tryKill, wait4 } from '../sys/syscalls.js';
import { Tracee } from '../ptrace/tracee.js';
import { TraceeMemory } from '../ptrace/memory.js';
import { FrozenTask } from '../ptrace/frozen.js';
import { VmaKind, VM_FLAG_BITS, type VmaPlan } from '../kinds/vma.js';

/** Below this, the fork costs more freeze than it saves. */
export const SNAPSHOT_MIN_BYTES = 16 * 1024 * 1024;

export interface Snapshot {
  pid: number;
  mem: TraceeMemory;
  /** Kill the child and have the process reap it; `frozen`: its main thread, if ckpt still holds the process frozen. */
  discard(frozen?: FrozenTask): void;
}

export function followsFork(plan: VmaPlan): boolean {
  if (plan.kind !== VmaKind.ANON && plan.kind !== VmaKind.FILE_PRIVATE) return false;
  return (plan.vmFlags & (VM_FLAG_BITS.dc | VM_FLAG_BITS.wf)) === 0;
}

/**
 * The snapshot child, or undefined if the clone failed (then copy while frozen).
 * `meanwhile` runs on ckpt's thread while the kernel copies the page tables:
 * reads of the frozen tree that need neither this task nor its address space
 * (the fork holds its mmap lock). What it throws is thrown once the child is gone.
 */
export function forkSnapshot(task: FrozenTask, gadget: bigint, meanwhile?: () => void): Snapshot | undefined {
  const remote = task.enterRemote(gadget);
  const events = { children: [] as number[] };
  let child = -1;
  let tracee: Tracee | undefined;
  let failed: { error: unknown } | undefined;
  const overlap = meanwhile && (() => {
    try { meanwhile(); } catch (error) { failed = { error }; }
  });
  try {
    // The child's stack: a frame that makes it exit if ckpt dies before it kills it.
    task.scratchMapping();
    const stack = task.childStack() ?? 0n;
    const r = remote.raw(NR.clone, [0, stack, 0, 0, 0], events, undefined, overlap);
    child = events.children[0] ?? (r > 0n ? Number(r) : -1);
    if (child > 0) tracee = stopped(child);
  } finally {
    if (!failed) {
      try {
        task.leaveRemote();
      } catch (e) {
        // The child is stopped and ours: kill it and have the process reap it before the error goes on.
        if (tracee) made(task, gadget, child).discard(task);
        throw e;
      }
    }
  }
  const snapshot = tracee && made(task, gadget, child);
  if (failed) {
    snapshot?.discard(task);
    throw failed.error;
  }
  return snapshot;
}

function made(task: FrozenTask, gadget: bigint, child: number): Snapshot {
  const parent = task.tid;
  const mem = new TraceeMemory(child);
  // The parent's remote wait4 names the child as the parent's pid namespace sees it.
  const inner = nsPid(child);
  return {
    pid: child, mem,
    discard(frozen?: FrozenTask) {
      mem.close();
      tryKill(child, SIG.KILL);
      try { wait4(child); } catch { /* reaped */ }
      if (frozen) reapFrozen(frozen, inner, gadget);
      else reapInParent(parent, inner, gadget);
    },
  };
}

/** The new child in its first stop, with EXITKILL set; undefined if it died. */
function stopped(child: number): Tracee | undefined {
  const tracee = Tracee.adopt(child);
  for (;;) {
    const s = tracee.wait();
    if (s.kind === 'exited' || s.kind === 'killed') return undefined;
    if (s.kind === 'event-stop') break;
    tracee.cont(0);
  }
  diePoint('child');
  // From here the kernel kills the child if ckpt dies; before, its stack frame makes it exit.
  tracee.setOptions(PTRACE_O.TRACESYSGOOD | PTRACE_O.EXITKILL);
  return tracee;
}

/**
 * A snapshot child left by a ckpt that died (killed by EXITKILL, or gone
 * through its exit frame) is a zombie of the process that nobody reaps: a
 * zombie child with exit signal 0, the process's comm, and SIGKILL or
 * EXIT_FRAME_CODE (its exit frame) as its end. Make the process reap each one, so that it is
 * not taken for a child of the process. Returns the pids reaped.
 */
export function reapLeftoverSnapshots(task: FrozenTask, children: number[]): number[] {
  const comm = readStat(task.tid).comm;
  const leftovers = children.filter((c) => {
    try {
      const st = readStat(c);
      return st.state === 'Z' && st.exit_signal === 0 && st.comm === comm
        && (st.exit_code === SIG.KILL || st.exit_code === EXIT_FRAME_CODE << 8);
    } catch { return false; }
  });
  const path = leftovers.length ? findReturnPath(task.tid, task.memory()) : undefined;
  if (!path) return [];
  const remote = task.enterRemote(path.gadget);
  try {
    // Only a zombie the process really reaped (wait4 names it by its pid there) is gone.
    return leftovers.filter((c) => remote.raw(NR.wait4, [nsPid(c), 0, WALL, 0]) > 0n);
  } finally {
    task.leaveRemote();
  }
}

/** A pid as its own pid namespace numbers it (a zombie's status still says). */
function nsPid(pid: number): number {
  try { return innermost(readStatus(pid).nspid, pid); } catch { return pid; }
}

/** Make `parent` reap its dead child (`child`: its pid as the parent sees it): a moment's freeze and one remote wait4. */
function reapInParent(parent: number, child: number, gadget: bigint): void {
  let t: FrozenTask | undefined;
  try {
    t = FrozenTask.freeze(parent);
    reapFrozen(t, child, gadget);
  } catch {
    // The parent is gone or busy elsewhere: the zombie is all that is left.
  } finally {
    t?.release();
  }
}

/** The same through a task ckpt holds frozen; its remote session stays open for its release. */
function reapFrozen(t: FrozenTask, child: number, gadget: bigint): void {
  try {
    t.enterRemote(gadget).raw(NR.wait4, [child, 0, WALL, 0]);
  } catch {
    // The parent is gone: so is its zombie.
  }
}
