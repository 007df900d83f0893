/**
 * The shape of the tree to restore, worked out from the image before any
 * process is created: who is whose parent, in which order processes are
 * created, which sessions and process groups need a helper because their
 * leader is gone, and which process groups each process joins.
 *
 * Sessions: a process is born in its creator's session, and setsid() is the
 * only way into a new one. A session leader calls setsid() as soon as it is
 * created, before it creates its children, so they are born in its session.
 * A process whose session leader is gone is created by a helper that takes
 * the leader's pid, calls setsid() and creates it with CLONE_PARENT (so its
 * parent is still the right one); the helper exits and its parent reaps it.
 * Process groups: set after every process exists (setpgid needs the group's
 * leader, or another member, alive in the same session); a group whose
 * leader is gone gets a helper with the leader's pid for that moment.
 */
import { CkptError } from '../errors.js';
import type { ProcessImage } from './load.js';

export interface TreeNode {
  proc: ProcessImage;
  /** pid, session and process group as the tree's pid namespace sees them. */
  pid: number;
  sid: number;
  pgid: number;
  parent?: TreeNode;
  children: TreeNode[];
  zombie: boolean;
}

export interface TreePlan {
  root: TreeNode;
  /** Parents before children; the order processes are created in. */
  order: TreeNode[];
  /** The root is the init (pid 1) of its own pid namespace: restore it in a fresh one. */
  container: boolean;
  /** Session ids whose leader is not in the tree and not the root's outer session. */
  orphanSessions: Set<number>;
  /** Process group ids whose leader is not in the tree (and not the root's outer group). */
  orphanGroups: Set<number>;
}

const unsupported = (msg: string, pid: number) => new CkptError('UNSUPPORTED', `not supported yet: ${msg}`, { pid });

export function planTree(procs: ProcessImage[]): TreePlan {
  const byPid = new Map<number, TreeNode>();
  for (const proc of procs) {
    if (byPid.has(proc.pid)) throw new CkptError('BAD_IMAGE', `bad image: two processes with pid ${proc.pid}`, { pid: proc.pid });
    byPid.set(proc.pid, { proc, pid: proc.pid, sid: proc.task.session, pgid: proc.task.pgrp, children: [], zombie: proc.task.state === 'Z' });
  }
  const roots = [...byPid.values()].filter((n) => !byPid.has(n.proc.task.ppid) || n.proc.task.ppid === n.pid);
  if (roots.length !== 1) {
    throw new CkptError('BAD_IMAGE', `bad image: the processes form ${roots.length} trees (roots: ${roots.map((r) => r.pid).join(', ') || 'none'})`);
  }
  const root = roots[0];
  if (root.zombie) throw new CkptError('BAD_IMAGE', `bad image: the root process ${root.pid} is a zombie`, { pid: root.pid });
  for (const n of byPid.values()) {
    if (n === root) continue;
    const parent = byPid.get(n.proc.task.ppid)!;
    if (parent.zombie) throw new CkptError('BAD_IMAGE', `bad image: pid ${n.pid}'s parent ${parent.pid} is a zombie`, { pid: n.pid });
    n.parent = parent;
    parent.children.push(n);
  }
  // Pages shared copy-on-write come from the parent's memory: it must map them.
  for (const n of byPid.values()) {
    for (const v of n.proc.vmas) {
      if (!v.cow.length) continue;
      const inParent = n.parent?.proc.vmas.some((p) => p.fields.kind === v.fields.kind && p.fields.start <= v.fields.start && p.fields.end >= v.fields.end);
      if (!inParent) {
        throw new CkptError('BAD_IMAGE', `bad image: VMA 0x${v.fields.start.toString(16)} of pid ${n.pid} shares pages with a parent that does not map it`, { pid: n.pid });
      }
    }
  }
  const order: TreeNode[] = [];
  const visit = (n: TreeNode) => {
    order.push(n);
    // Session leaders first: a sibling may need one to be born in its session.
    n.children.sort((a, b) => Number(b.sid === b.pid) - Number(a.sid === a.pid) || a.pid - b.pid);
    n.children.forEach(visit);
  };
  visit(root);
  if (order.length !== byPid.size) throw new CkptError('BAD_IMAGE', 'bad image: the parent links of its processes form a cycle');
  const container = root.pid === 1;
  // The root's own session and group, if it leads neither, are those it is restored into.
  const outerSid = root.sid === root.pid ? -1 : root.sid;
  const outerPgid = root.pgid === root.pid ? -1 : root.pgid;
  const orphanSessions = new Set<number>();
  const orphanGroups = new Set<number>();
  for (const n of order) {
    if (n.sid !== outerSid && !byPid.has(n.sid)) orphanSessions.add(n.sid);
    if (n.sid !== outerSid && byPid.has(n.sid) && byPid.get(n.sid)!.sid !== n.sid) {
      throw unsupported(`pid ${n.pid} is in session ${n.sid}, whose leader's pid now belongs to a process of another session`, n.pid);
    }
    // Born in its creator's session: a child still in a session its parent left by setsid() after the fork cannot be made.
    if (n.parent && n.sid !== n.pid && n.sid !== n.parent.sid && !orphanSessions.has(n.sid)) {
      throw unsupported(`pid ${n.pid} is in session ${n.sid}, which its parent ${n.parent.pid} left (it is in session ${n.parent.sid})`, n.pid);
    }
    if (n.pgid !== outerPgid && !byPid.has(n.pgid) && !orphanSessions.has(n.pgid)) orphanGroups.add(n.pgid);
    if (n.pgid === outerPgid && n.sid !== outerSid) throw unsupported(`pid ${n.pid} is in the root's outer process group but another session`, n.pid);
  }
  // Id 0: a session or group outside the pid namespace, other than the root's.
  if (orphanSessions.has(0) || orphanGroups.has(0)) throw unsupported('a process of the tree is in a session or process group outside its pid namespace', root.pid);
  return { root, order, container, orphanSessions, orphanGroups };
}
