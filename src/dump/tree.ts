/**
 * Freeze a whole process tree before anything is read: every thread of
 * every process reachable from the root through /proc/PID/task/TID/children.
 * TRACECLONE|TRACEFORK|TRACEVFORK make any thread or child created by a
 * seized thread start traced and stopped; the tree is walked again until a
 * walk finds nothing ckpt has not frozen. Zombies are not seized (they
 * cannot be): they are recorded as they are, their parent being frozen.
 */
import { CkptError } from '../errors.js';
import { readChildren, readStat, readStatus, readTids } from '../proc/index.js';
import { FrozenTask } from '../ptrace/frozen.js';
import { PTRACE_O } from '../sys/constants.js';

export interface TreeProcess {
  /** Host pid (ckpt's view). */
  pid: number;
  /** Host pid of the parent (0 for the root's parent outside the tree). */
  ppid: number;
  /** Main thread first, the others by tid; empty for a zombie. */
  tasks: FrozenTask[];
  zombie: boolean;
}

const MAX_ROUNDS = 100;

function seccompOf(pid: number): boolean {
  try { return readStatus(pid).seccomp !== 0; } catch { return false; }
}

interface Walked { pid: number; ppid: number; tids: number[]; zombie: boolean }

/** The processes reachable from `root`, parents before children. */
function walk(root: number): Walked[] {
  const out: Walked[] = [];
  const seen = new Set<number>([root]);
  const queue: [number, number][] = [[root, 0]];
  while (queue.length) {
    const [pid, ppid] = queue.shift()!;
    let tids: number[];
    let state: string;
    try {
      state = readStat(pid).state;
      tids = readTids(pid);
    } catch (e) {
      if (pid === root) throw e;
      continue; // exited and reaped meanwhile
    }
    const zombie = state === 'Z' || state === 'X';
    out.push({ pid, ppid, tids, zombie });
    if (zombie) continue;
    for (const tid of tids) {
      let kids: number[] = [];
      try { kids = readChildren(pid, tid); } catch { /* the thread exited */ }
      for (const kid of kids) {
        if (seen.has(kid)) continue;
        seen.add(kid);
        queue.push([kid, pid]);
      }
    }
  }
  return out;
}

export function freezeTree(root: number): TreeProcess[] {
  const frozen = new Map<number, FrozenTask>();
  const gone = new Set<number>();
  const options = PTRACE_O.TRACECLONE | PTRACE_O.TRACEFORK | PTRACE_O.TRACEVFORK;
  let procs: Walked[] = [];
  try {
    for (let round = 0; ; round++) {
      procs = walk(root);
      const fresh = procs.filter((p) => !p.zombie).map((p) => ({ pid: p.pid, tids: p.tids.filter((tid) => !frozen.has(tid) && !gone.has(tid)) })).filter((p) => p.tids.length);
      if (fresh.length === 0) break;
      if (round > MAX_ROUNDS) throw new CkptError('UNSUPPORTED', `the tree of pid ${root} keeps creating threads and children faster than ckpt can freeze them`, { pid: root });
      const onBorn = (born: FrozenTask[]) => born.forEach((b) => frozen.set(b.tid, b));
      for (const p of fresh) {
        // A process in seccomp mode would filter ckpt's remote syscalls (SUSPEND_SECCOMP needs CAP_SYS_ADMIN: only where needed).
        const opts = options | (seccompOf(p.pid) ? PTRACE_O.SUSPEND_SECCOMP : 0);
        for (const t of FrozenTask.freezeAll(p.tids, opts, onBorn)) frozen.set(t.tid, t);
        p.tids.forEach((tid) => { if (!frozen.has(tid)) gone.add(tid); });
      }
    }
    const tree: TreeProcess[] = procs.map((p) => {
      if (p.zombie) {
        if (p.tids.length > 1) {
          throw new CkptError('UNSUPPORTED', `not supported yet: pid ${p.pid} is a zombie whose other threads still run`, { pid: p.pid });
        }
        return { pid: p.pid, ppid: p.ppid, tasks: [], zombie: true };
      }
      const main = frozen.get(p.pid);
      if (!main) throw new CkptError('UNSUPPORTED', `pid ${p.pid}'s main thread exited while its other threads run`, { pid: p.pid });
      const others = p.tids.filter((tid) => tid !== p.pid && frozen.has(tid)).sort((a, b) => a - b).map((tid) => frozen.get(tid)!);
      return { pid: p.pid, ppid: p.ppid, tasks: [main, ...others], zombie: false };
    });
    // A task seized on its way out of the tree (a child that was reparented away) goes free.
    const kept = new Set(tree.flatMap((p) => p.tasks.map((t) => t.tid)));
    for (const t of frozen.values()) if (!kept.has(t.tid)) t.release();
    return tree;
  } catch (e) {
    for (const t of frozen.values()) t.release();
    throw e;
  }
}

/** Release every frozen task of the tree (leaves first); one that fails stops none of the others. */
export function releaseTree(tree: TreeProcess[]): void {
  let first: unknown;
  for (const p of [...tree].reverse()) {
    for (const t of p.tasks) {
      try { t.release(); } catch (e) { first ??= e; }
    }
  }
  if (first !== undefined) throw first;
}
