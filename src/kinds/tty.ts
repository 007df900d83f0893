/**
 * Pseudo-terminals the process opened itself, as a terminal multiplexer does:
 * the master (/dev/ptmx) and its slaves (/dev/pts/N), and /dev/tty when the
 * process's controlling terminal is such a pty. A terminal from outside is
 * not here: it needs --shell-job (files.ts).
 *
 * Saved once per pair, on the master: the pts index, termios (TCGETS2), the
 * window size, the lock, packet mode, and the session and foreground group.
 * Restore gets the same index by opening /dev/ptmx until it comes up (the
 * kernel hands out the lowest free one), and refuses when it is taken. Slaves
 * are opened from the master (TIOCGPTPEER), so they meet the right master
 * whatever the path. Bytes in flight are not saved: a tty has no tee and no
 * peek, and reading them would take them from the process. Their counts are
 * in the record (show prints them) and they are lost.
 *
 * The controlling terminal: the dump marks one slave fd (CTTY record); after
 * the fds are back, restoreControllingTty makes it the controlling terminal
 * of the restored session leader (TIOCSCTTY), and each /dev/tty fd, which
 * ckpt held as a placeholder, is reopened by the process itself.
 */
import fs from 'node:fs';
import { CkptError } from '../errors.js';
import { Content, defineRecord, type FieldsOf } from '../image/index.js';
import { readFdinfo, readFdList, readStat } from '../proc/index.js';
import { AT_FDCWD, F, O } from '../sys/constants.js';
import { NR } from '../sys/nr.js';
import { errnoName } from '../sys/errno.js';
import { close, fcntl, pidfdGetfd, pidfdOpen } from '../sys/syscalls.js';
import {
  ioctlGetInt, ioctlGetStruct, ioctlSetInt, ioctlSetStruct, openPtyPeer, tryIoctlGetInt, TERMIOS2_SIZE, TIOC, WINSIZE_SIZE,
} from '../sys/tty.js';
import { T } from './ids.js';
import type { RestoreTarget } from './target.js';
import { FdKind, type SavedFd } from './files.js';

/**
 * content: struct termios2 (44 bytes) then struct winsize (8). sid and
 * fg_pgrp are -1 when the pty is nobody's controlling terminal.
 * master_unread and slave_unread: bytes in flight at dump, dropped.
 */
export const PTY = defineRecord({
  type: T.PTY, name: 'pty', content: Content.DATA,
  fields: { fd: 'u32', index: 'u32', locked: 'u32', packet: 'u32', sid: 'i32', fg_pgrp: 'i32', master_unread: 'u32', slave_unread: 'u32' },
});
export type PtyFields = FieldsOf<typeof PTY>;
/** The process's controlling terminal is the pty slave open at `fd`. */
export const CTTY = defineRecord({ type: T.CTTY, name: 'ctty', content: Content.VOID, fields: { fd: 'u32', index: 'u32' } });

export interface PtyState {
  fields: PtyFields;
  termios: Buffer;
  winsize: Buffer;
  /** The master's path, reopened to make the pair. */
  ptmx: string;
  /**
   * ckpt's master, made by the first open of the pair in a restore (master or
   * slave, whichever comes first); the slaves are opened from it, so it must
   * stay open until every fd of the pair is installed.
   */
  local?: number;
}

export type TtyRole = 'ptmx' | 'pts' | 'devtty';

const major = (rdev: bigint) => Number((rdev >> 8n) & 0xfffn);
const minor = (rdev: bigint) => Number((rdev & 0xffn) | ((rdev >> 12n) & 0xfff00n));

/** The index of a pty slave device (Unix98 slave majors 136-143), or undefined. */
export function ptsIndex(rdev: bigint): number | undefined {
  const ma = major(rdev);
  return ma >= 136 && ma <= 143 ? (ma - 136) * 256 + minor(rdev) : undefined;
}

/**
 * The pts indexes of the pty masters a process holds (their fdinfo has a
 * tty-index line). A tree dump unites those of every process and passes
 * them to ttyRole.
 */
export function ptyMasterIndexes(pid: number): Set<number> {
  const out = new Set<number>();
  for (const fd of readFdList(pid)) {
    let idx: string | undefined;
    try { idx = readFdinfo(pid, fd).extra['tty-index']; } catch { continue; }
    if (idx !== undefined) out.add(Number(idx));
  }
  return out;
}

/**
 * How a terminal fd comes back: a pty master, a slave whose master is in the
 * dump (`masters`: the pts indexes of the masters it holds; by default those
 * of this process), or /dev/tty when the process's controlling terminal is
 * such a slave. undefined: a terminal from outside (--shell-job).
 */
export function ttyRole(pid: number, rdev: bigint, masters?: ReadonlySet<number>): TtyRole | undefined {
  if (major(rdev) === 5 && minor(rdev) === 2) return 'ptmx';
  const own = () => masters ?? ptyMasterIndexes(pid);
  const idx = ptsIndex(rdev);
  if (idx !== undefined) return own().has(idx) ? 'pts' : undefined;
  if (major(rdev) === 5 && minor(rdev) === 0) {
    const ctty = ptsIndex(BigInt(readStat(pid).tty_nr));
    return ctty !== undefined && own().has(ctty) ? 'devtty' : undefined;
  }
  return undefined;
}

/** A pty master of the process, read through a copy of its fd. */
function dumpPty(pid: number, fd: number, path: string, slaves: SavedFd[]): PtyState {
  const pidfd = pidfdOpen(pid);
  const held: number[] = [];
  const take = (n: number) => { const l = pidfdGetfd(pidfd, n, pid); held.push(l); return l; };
  try {
    const m = take(fd);
    const index = ioctlGetInt(m, TIOC.TIOCGPTN, 'TIOCGPTN');
    const slave = slaves.find((s) => ptsIndex(s.fields.rdev) === index);
    const sid = tryIoctlGetInt(m, TIOC.TIOCGSID);
    const fg = sid > 0 ? tryIoctlGetInt(m, TIOC.TIOCGPGRP) : -1;
    return {
      ptmx: path,
      termios: ioctlGetStruct(m, TIOC.TCGETS2, TERMIOS2_SIZE, 'TCGETS2'),
      winsize: ioctlGetStruct(m, TIOC.TIOCGWINSZ, WINSIZE_SIZE, 'TIOCGWINSZ'),
      fields: {
        fd, index, locked: ioctlGetInt(m, TIOC.TIOCGPTLCK, 'TIOCGPTLCK') ? 1 : 0, packet: ioctlGetInt(m, TIOC.TIOCGPKT, 'TIOCGPKT') ? 1 : 0,
        sid: sid > 0 ? sid : -1, fg_pgrp: fg > 0 ? fg : -1,
        master_unread: ioctlGetInt(m, TIOC.FIONREAD, 'FIONREAD'),
        slave_unread: slave ? ioctlGetInt(take(slave.fields.fd), TIOC.FIONREAD, 'FIONREAD') : 0,
      },
    };
  } finally {
    for (const l of held) close(l);
    close(pidfd);
  }
}

/**
 * Every pty pair of the process, saved on its master; each slave points to
 * its pair; the slave that is the controlling terminal of the session the
 * process leads is marked (CTTY).
 */
export function dumpPtys(pid: number, fds: SavedFd[], masters?: ReadonlySet<number>): void {
  const slaves = fds.filter((f) => f.fields.kind === FdKind.PTS);
  const byIndex = new Map<number, PtyState>();
  for (const f of fds) {
    if (f.fields.kind !== FdKind.PTMX || f.fields.same_as >= 0) continue;
    f.pty = dumpPty(pid, f.fields.fd, f.path, slaves);
    byIndex.set(f.pty.fields.index, f.pty);
  }
  for (const s of slaves) s.pty = byIndex.get(ptsIndex(s.fields.rdev)!);
  // Only a session leader takes a controlling terminal (TIOCSCTTY); the
  // other members of its session have it from the session.
  const stat = readStat(pid);
  const ctty = ptsIndex(BigInt(stat.tty_nr));
  // The pair's master may be in another process of the tree (a terminal multiplexer).
  if (ctty === undefined || !(masters ?? byIndex).has(ctty) || stat.session !== pid) return;
  const on = slaves.find((s) => ptsIndex(s.fields.rdev) === ctty);
  if (!on) {
    throw new CkptError('UNSUPPORTED_FD', `not supported yet: the controlling terminal of pid ${pid} is its own pty /dev/pts/${ctty}, which it holds open on no fd`, { pid });
  }
  on.ctty = true;
}

/** Before anything is created: the pts index is free. */
export function checkPty(p: PtyState): void {
  const n = p.fields.index;
  if (fs.existsSync(`/dev/pts/${n}`)) {
    throw new CkptError('FILE_CHANGED', `pty ${n} (/dev/pts/${n}) of fd ${p.fields.fd} is taken by another terminal since the dump`, { path: `/dev/pts/${n}` });
  }
}

/** The master, with the saved index and settings, made once per restore. */
function createPty(p: PtyState): number {
  if (p.local !== undefined) return p.local;
  const want = p.fields.index;
  const extra: number[] = [];
  let m = -1;
  try {
    // The kernel gives the lowest free index: take and hold the ones below ours.
    for (;;) {
      const fd = fs.openSync(p.ptmx, O.RDWR | O.NOCTTY | O.CLOEXEC);
      const got = ioctlGetInt(fd, TIOC.TIOCGPTN, 'TIOCGPTN');
      if (got === want) { m = fd; break; }
      extra.push(fd);
      if (got > want) throw new CkptError('FILE_CHANGED', `pty ${want} (/dev/pts/${want}) is taken by another terminal: ${p.ptmx} gave ${got}`, { path: `/dev/pts/${want}` });
    }
  } finally {
    for (const fd of extra) close(fd);
  }
  try {
    ioctlSetStruct(m, TIOC.TCSETS2, p.termios, 'TCSETS2');
    ioctlSetStruct(m, TIOC.TIOCSWINSZ, p.winsize, 'TIOCSWINSZ');
    if (p.fields.packet) ioctlSetInt(m, TIOC.TIOCPKT, 1, 'TIOCPKT');
    ioctlSetInt(m, TIOC.TIOCSPTLCK, p.fields.locked, 'TIOCSPTLCK');
  } catch (e) {
    close(m);
    throw e;
  }
  p.local = m;
  return m;
}

/** ckpt's master for a saved master fd (with its status flags). */
export function openPtyMaster(f: SavedFd): number {
  if (!f.pty) throw new CkptError('BAD_IMAGE', `bad image: fd ${f.fields.fd} is a pty master without a pty record`);
  const m = createPty(f.pty);
  fcntl(m, F.SETFL, f.fields.flags & O.NONBLOCK);
  return m;
}

/** A new open of the slave, from ckpt's master (unlocked for the moment). */
export function openPtySlave(f: SavedFd): number {
  const p = f.pty;
  if (!p) throw new CkptError('BAD_IMAGE', `bad image: fd ${f.fields.fd} (${f.path}) is a pty slave whose master the image does not hold`);
  const m = createPty(p);
  if (p.fields.locked) ioctlSetInt(m, TIOC.TIOCSPTLCK, 0, 'TIOCSPTLCK');
  try {
    return openPtyPeer(m, (f.fields.flags & (O.ACCMODE | O.NONBLOCK | O.APPEND)) | O.NOCTTY | O.CLOEXEC);
  } finally {
    if (p.fields.locked) ioctlSetInt(m, TIOC.TIOCSPTLCK, 1, 'TIOCSPTLCK');
  }
}

/**
 * Make the terminal open at `fd` the controlling terminal of the restored
 * process, which must lead its session by now (setsid). Its foreground group
 * is then the process's own group; a tree sets another with restoreForeground
 * once every group exists.
 */
export function restoreControllingTty(t: RestoreTarget, fd: number): void {
  const r = t.remote.raw(NR.ioctl, [fd, TIOC.TIOCSCTTY, 0]);
  if (r < 0n) {
    throw new CkptError('SYSCALL', `pid ${t.pid}: remote ioctl(fd ${fd}, TIOCSCTTY) failed (${errnoName(Number(-r))}): the restored process must lead its session to take back its controlling terminal`, { pid: t.pid, syscall: 'ioctl(TIOCSCTTY)' });
  }
}

/** The foreground process group of the controlling terminal at `fd` (after restoreControllingTty). */
export function restoreForeground(t: RestoreTarget, fd: number, pgrp: number): void {
  t.scratch.reset();
  const at = t.scratch.put(Buffer.from(new Int32Array([pgrp]).buffer));
  t.remote.call(NR.ioctl, [fd, TIOC.TIOCSPGRP, at], `ioctl(fd ${fd}, TIOCSPGRP ${pgrp})`);
}

/**
 * After the fds are installed: the controlling terminal, then every /dev/tty
 * fd (a placeholder until now) reopened by the process itself, so that it
 * names its controlling terminal as it did.
 */
export function restoreTtys(t: RestoreTarget, fds: SavedFd[]): void {
  const ctty = fds.find((f) => f.ctty);
  if (ctty) restoreControllingTty(t, ctty.fields.fd);
  for (const f of fds) {
    if (f.fields.kind !== FdKind.DEVTTY || f.fields.same_as >= 0) continue;
    t.scratch.reset();
    const path = t.scratch.put(Buffer.from('/dev/tty\0'));
    const flags = (f.fields.flags & ~(O.CREAT | O.EXCL | O.TRUNC)) | O.CLOEXEC;
    const tmp = t.remote.call(NR.openat, [AT_FDCWD, path, flags], `openat(/dev/tty) for fd ${f.fields.fd}`);
    for (const g of fds.filter((x) => x === f || x.fields.same_as === f.fields.fd)) {
      t.remote.call(NR.dup3, [tmp, g.fields.fd, g.fields.cloexec ? O.CLOEXEC : 0], `dup3(${tmp}, ${g.fields.fd})`);
    }
    t.remote.call(NR.close, [tmp]);
  }
}

/**
 * A slave whose master is in another process of the image shares that
 * master's pty (one pair, made once at restore).
 */
export function linkPtys(fdSets: SavedFd[][]): void {
  const byIndex = new Map<number, PtyState>();
  for (const f of fdSets.flat()) if (f.fields.kind === FdKind.PTMX && f.pty) byIndex.set(f.pty.fields.index, f.pty);
  for (const f of fdSets.flat()) if (f.fields.kind === FdKind.PTS && !f.pty) f.pty = byIndex.get(ptsIndex(f.fields.rdev) ?? -1);
}
