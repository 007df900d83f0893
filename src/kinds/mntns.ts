/**
 * The mount namespace of a container: ckpt does not save mounts. A container
 * that `ckpt run` made, or that a restore makes, gets a fresh copy of ckpt's
 * mounts with propagation made private (so nothing it mounts leaks to the
 * host, and the reverse), and its own proc on /proc, which shows its own pid
 * namespace. The task must already be in its new mount and pid namespaces.
 */
import { NR } from '../sys/nr.js';
import type { RestoreTarget } from './target.js';

const MS = { NOSUID: 0x2, NODEV: 0x4, NOEXEC: 0x8, REC: 0x4000, PRIVATE: 0x40000 } as const;

export function setupContainerMounts(t: RestoreTarget): void {
  t.scratch.reset();
  const root = t.scratch.put(Buffer.from('/\0'));
  t.remote.call(NR.mount, [0, root, 0, MS.REC | MS.PRIVATE, 0], 'mount(/, MS_REC|MS_PRIVATE)');
  const proc = t.scratch.put(Buffer.from('proc\0'));
  const target = t.scratch.put(Buffer.from('/proc\0'));
  t.remote.call(NR.mount, [proc, target, proc, MS.NOSUID | MS.NODEV | MS.NOEXEC, 0], 'mount(proc, /proc)');
}
