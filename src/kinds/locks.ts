/**
 * File locks held by the process: flock and OFD locks belong to an open file
 * description, so ckpt takes them on the description it makes before the
 * target takes it; POSIX record locks belong to the process, so the restored
 * process takes them itself (remote fcntl F_SETLK) once its fds are back.
 * Read from the "lock:" lines of /proc/PID/fdinfo.
 */
import { CkptError } from '../errors.js';
import { Content, defineRecord, type FieldsOf } from '../image/index.js';
import { readFdinfo } from '../proc/index.js';
import { encodeFlock, flock, ofdSetlk } from '../sys/syscalls.js';
import { NR } from '../sys/nr.js';
import { T } from './ids.js';
import type { RestoreTarget } from './target.js';

export enum LockKind { FLOCK = 1, POSIX = 2, OFD = 3 }

/** len 0: to the end of the file. */
export const LOCK = defineRecord({
  type: T.LOCK, name: 'lock', content: Content.VOID,
  fields: { fd: 'u32', kind: 'u32', write: 'u32', start: 'addr', len: 'addr' },
});
export type LockFields = FieldsOf<typeof LOCK>;

const KINDS: Record<string, LockKind> = { FLOCK: LockKind.FLOCK, POSIX: LockKind.POSIX, OFDLCK: LockKind.OFD };

/** 'lock:\t1: POSIX  ADVISORY  WRITE 1234 fe:00:5678 10 29' */
export function parseLockLine(fd: number, line: string): LockFields | undefined {
  const m = /^lock:\s*\d+:\s+(\w+)\s+(\w+)\s+(READ|WRITE)\s+\S+\s+(\S+)\s+(\d+)\s+(\d+|EOF)/.exec(line);
  if (!m) return undefined;
  const kind = KINDS[m[1]];
  if (!kind || m[2] !== 'ADVISORY') throw new CkptError('UNSUPPORTED_FD', `not supported yet: fd ${fd} holds a ${m[2].toLowerCase()} ${m[1]} lock`, { resource: `fd ${fd}` });
  const start = Number(m[5]);
  return { fd, kind, write: m[3] === 'WRITE' ? 1 : 0, start, len: m[6] === 'EOF' ? 0 : Number(m[6]) - start + 1 };
}

/**
 * The locks of a process, once each: a description's locks show in every fd
 * sharing it (`descriptionOwners` lists one fd per description), a POSIX lock
 * in every fd of its file.
 */
export function dumpLocks(pid: number, descriptionOwners: number[]): LockFields[] {
  const seen = new Set<string>();
  const out: LockFields[] = [];
  for (const fd of descriptionOwners) {
    for (const line of readFdinfo(pid, fd).lines) {
      const l = parseLockLine(fd, line);
      if (!l) continue;
      const key = l.kind === LockKind.POSIX ? `${line.split(/\s+/)[6]} ${l.start} ${l.len} ${l.write}` : `${fd} ${line}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(l);
    }
  }
  return out;
}

/** flock and OFD locks, on ckpt's description before the target takes it. */
export function lockDescription(local: number, l: LockFields): void {
  if (l.kind === LockKind.FLOCK) flock(local, l.write ? 2 /* LOCK_EX */ : 1 /* LOCK_SH */);
  else if (l.kind === LockKind.OFD) ofdSetlk(local, l.write === 1, l.start, l.len);
}

/** POSIX locks, taken by the restored process itself. */
export function restorePosixLocks(t: RestoreTarget, locks: LockFields[]): void {
  for (const l of locks) {
    if (l.kind !== LockKind.POSIX) continue;
    t.scratch.reset();
    t.remote.call(NR.fcntl, [l.fd, 6 /* F_SETLK */, t.scratch.put(encodeFlock(l.write === 1, l.start, l.len))], `fcntl(fd ${l.fd}, F_SETLK)`);
  }
}
