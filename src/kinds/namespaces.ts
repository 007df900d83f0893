/**
 * Which namespaces a tree lives in, and whether ckpt can bring it back.
 *
 * ckpt restores two shapes of tree:
 *  - a plain tree: every process in ckpt's own namespaces of every kind;
 *  - a container: its root is the init (PID 1) of its own pid namespace, one
 *    level below ckpt's, with its own mount, uts and ipc namespaces as well
 *    (what `ckpt run` makes); every process of the tree is in those four, and
 *    in ckpt's net, user, cgroup and time namespaces. A restore makes the
 *    four anew (clone3 with CLONE_NEWPID|CLONE_NEWNS|CLONE_NEWUTS|CLONE_NEWIPC)
 *    and keeps the host's others.
 * Anything else is refused before the tree is touched, naming the pid and
 * the namespace kind. A network namespace is not saved: a container made
 * by `ckpt run` keeps the host's, so a tree in another one is refused.
 */
import { CkptError } from '../errors.js';
import { innermost, readStatus } from '../proc/index.js';
import { readNsIds, type NsIds, type NsKind } from '../proc/ns.js';

/** The kinds a container owns (made anew at restore). */
export const CONTAINER_KINDS: readonly NsKind[] = ['pid', 'mnt', 'uts', 'ipc'];
/** The kinds a tree always shares with ckpt (not saved, not made). */
export const HOST_KINDS: readonly NsKind[] = ['net', 'user', 'cgroup', 'time'];

const NAME: Record<NsKind, string> = {
  pid: 'pid', mnt: 'mount', uts: 'uts', ipc: 'ipc', net: 'network', user: 'user', cgroup: 'cgroup', time: 'time',
};

/** A process's ids as its own pid namespace sees them (the last NSpid/NStgid/NSpgid/NSsid entry; 0: outside it). */
export interface InnerIds { pid: number; tgid: number; pgid: number; sid: number }

export interface TreeNamespaces {
  /** The root is a container's init: restore must make new pid, mount, uts and ipc namespaces. */
  container: boolean;
  /** The root's namespaces (ckpt's own ones for a plain tree). */
  ids: NsIds;
  /** Each pid checked, as its own pid namespace numbers it. */
  inner: Map<number, InnerIds>;
}

const last = (a: number[]) => innermost(a, 0);

export function innerIds(pid: number): InnerIds {
  const s = readStatus(pid);
  return { pid: last(s.nspid), tgid: last(s.nstgid), pgid: last(s.nspgid), sid: last(s.nssid) };
}

/**
 * Check the namespaces of a tree: `root` and the other processes of the
 * tree (host pids). Throws UNSUPPORTED naming the first pid and kind that
 * ckpt cannot restore. ckpt's own namespaces are those of its main thread.
 */
export function checkTreeNamespaces(root: number, pids: readonly number[], own: NsIds = readNsIds(process.pid)): TreeNamespaces {
  const ids = readNsIds(root);
  const status = readStatus(root);
  const ownDepth = readStatus(process.pid).nspid.length;
  const container = ids.pid !== own.pid;
  if (container) {
    if (last(status.nspid) !== 1) {
      throw new CkptError('UNSUPPORTED', `not supported yet: pid ${root} is in another pid namespace than ckpt's but is not its init (it is pid ${last(status.nspid)} there): dump the container's init`, { pid: root });
    }
    if (status.nspid.length !== ownDepth + 1) {
      throw new CkptError('UNSUPPORTED', `not supported yet: pid ${root} is the init of a pid namespace ${status.nspid.length - ownDepth} levels below ckpt's (only one level is restored)`, { pid: root });
    }
    for (const kind of CONTAINER_KINDS) {
      if (ids[kind] === own[kind]) {
        throw new CkptError('UNSUPPORTED', `not supported yet: pid ${root} is a container init that shares ckpt's ${NAME[kind]} namespace: a container must have its own pid, mount, uts and ipc namespaces (as ckpt run makes them)`, { pid: root });
      }
    }
  } else {
    for (const kind of CONTAINER_KINDS) {
      if (ids[kind] !== own[kind]) {
        throw new CkptError('UNSUPPORTED', `not supported yet: pid ${root} is in another ${NAME[kind]} namespace than ckpt's, and is not a container init (its own pid namespace's PID 1)`, { pid: root });
      }
    }
  }
  for (const kind of HOST_KINDS) {
    if (ids[kind] !== own[kind]) {
      throw new CkptError('UNSUPPORTED', `not supported yet: pid ${root} is in another ${NAME[kind]} namespace than ckpt's (${NAME[kind]} namespaces are not saved)`, { pid: root });
    }
  }
  const inner = new Map<number, InnerIds>([[root, { pid: last(status.nspid), tgid: last(status.nstgid), pgid: last(status.nspgid), sid: last(status.nssid) }]]);
  for (const pid of pids) {
    if (pid === root) continue;
    const theirs = readNsIds(pid);
    for (const kind of [...CONTAINER_KINDS, ...HOST_KINDS]) {
      if (theirs[kind] !== ids[kind]) {
        throw new CkptError('UNSUPPORTED', `not supported yet: pid ${pid} is in another ${NAME[kind]} namespace than pid ${root}, the root of the tree`, { pid });
      }
    }
    inner.set(pid, innerIds(pid));
  }
  return { container, ids, inner };
}
