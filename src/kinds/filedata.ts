/**
 * Files whose content lives nowhere but in the process: memfd (with its name
 * and seals) and regular files deleted while open. Their content is saved;
 * restore makes a memfd again, or a file beside the old path that is
 * unlinked as soon as it is open, so the process holds an open, unlinked file
 * as it did.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CkptError } from '../errors.js';
import { Content, defineRecord, type FieldsOf } from '../image/index.js';
import { F, O, SEEK_SET } from '../sys/constants.js';
import { fcntl, lseek, memfdCreate } from '../sys/syscalls.js';
import { T } from './ids.js';

/** content: the file's bytes. */
export const FILE_DATA = defineRecord({ type: T.FILE_DATA, name: 'file_data', content: Content.DATA, fields: { fd: 'u32', seals: 'u32', size: 'addr' } });
export type FileData = { fields: FieldsOf<typeof FILE_DATA>; data: Buffer };

/** fd's file is the file of fd `of` (opened twice, not dup'ed): its content is saved once, on `of`. */
export const FILE_SAME = defineRecord({ type: T.FILE_SAME, name: 'file_same', content: Content.VOID, fields: { fd: 'u32', of: 'u32' } });

/** Saved in ckpt.img: bigger contents are refused rather than bloating the metadata. */
export const MAX_FILE_DATA = 16 * 1024 * 1024;

export function dumpFileData(pid: number, fd: number, what: string, memfd: boolean): FileData {
  const local = fs.openSync(`/proc/${pid}/fd/${fd}`, 'r');
  try {
    const size = fs.fstatSync(local).size;
    if (size > MAX_FILE_DATA) {
      throw new CkptError('UNSUPPORTED_FD', `not supported yet: fd ${fd} of pid ${pid} is ${what} of ${size} bytes (at most ${MAX_FILE_DATA} are saved)`, { pid, resource: `fd ${fd}` });
    }
    const data = Buffer.alloc(size);
    let got = 0;
    while (got < size) {
      const n = fs.readSync(local, data, got, size - got, got);
      if (n === 0) break;
      got += n;
    }
    const seals = memfd ? fcntl(local, F.GET_SEALS) : 0;
    return { fields: { fd, seals, size: got }, data: data.subarray(0, got) };
  } finally {
    fs.closeSync(local);
  }
}

const MFD_CLOEXEC = 1, MFD_ALLOW_SEALING = 2;

/** A memfd named as it was (the link reads '/memfd:NAME (deleted)'), with its content and seals. */
export function createMemfd(link: string, d: FileData): number {
  const fd = memfdCreate(memfdName(link), MFD_CLOEXEC | MFD_ALLOW_SEALING);
  fillMemfd(fd, d);
  return fd;
}

/** The name a memfd was created with, from its /proc link or maps path. */
export function memfdName(link: string): string {
  return /^\/memfd:(.*?)(?: \(deleted\))?$/.exec(link)?.[1] ?? 'ckpt';
}

/** A memfd made already (one that is also mapped): its saved contents, then its seals. */
export function fillMemfd(fd: number, d: FileData): void {
  writeAll(fd, d.data);
  if (d.fields.seals) fcntl(fd, F.ADD_SEALS, d.fields.seals);
}

/** A file beside the deleted one (or in /tmp if its directory is gone), unlinked once open. */
export function createGhost(link: string, flags: number, d: FileData): number {
  const original = link.replace(/ \(deleted\)$/, '');
  const dir = fs.existsSync(path.dirname(original)) ? path.dirname(original) : '/tmp';
  const ghost = path.join(dir, `.${path.basename(original)}.ckpt-ghost-${process.pid}-${Date.now()}`);
  const w = fs.openSync(ghost, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
  try { writeAll(w, d.data); } finally { fs.closeSync(w); }
  try {
    return fs.openSync(ghost, flags);
  } finally {
    fs.unlinkSync(ghost);
  }
}

function writeAll(fd: number, data: Buffer): void {
  let done = 0;
  while (done < data.length) done += fs.writeSync(fd, data, done, data.length - done, done);
}

/** What the functions below need of an fd (a SavedFd). */
interface DataFd { fields: { fd: number; flags: number; pos: number; dev: bigint; ino: bigint; same_as: number }; data?: FileData; sameFileAs?: number }

/**
 * memfds and deleted files opened more than once (through /proc/PID/fd, not
 * dup): the later opens point to the first and drop their copy of the
 * content, so that restore makes one file and opens it again for them.
 * `fds`: the memfd and deleted-file fds.
 */
export function linkSameFiles(fds: DataFd[]): void {
  const first = new Map<string, number>();
  for (const f of fds) {
    if (f.fields.same_as >= 0) continue;
    const key = `${f.fields.dev}:${f.fields.ino}`;
    const of = first.get(key);
    if (of === undefined) { first.set(key, f.fields.fd); continue; }
    f.sameFileAs = of;
    f.data = undefined;
  }
}

/** Another open of ckpt's `local` file (through /proc/self/fd) with the saved flags and offset. */
export function reopenFile(f: DataFd, local: number | undefined): number {
  const v = f.fields;
  if (local === undefined) throw new CkptError('BAD_IMAGE', `bad image: fd ${v.fd} is another open of the file of fd ${f.sameFileAs}, which the image does not hold`);
  const fd = fs.openSync(`/proc/self/fd/${local}`, (v.flags & ~(O.CREAT | O.EXCL | O.TRUNC)) | O.CLOEXEC);
  if (v.pos > 0) lseek(fd, v.pos, SEEK_SET);
  return fd;
}
