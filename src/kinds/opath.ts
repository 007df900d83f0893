/**
 * O_PATH descriptors: a place in the file tree, not an open file. Any kind of
 * file can be held so (a directory, a FIFO, a socket, a symlink with
 * O_NOFOLLOW); it is reopened by path with its saved flags (files.ts
 * openLocally), and nothing is read or written through it.
 */
import fs from 'node:fs';
import { CkptError } from '../errors.js';

const S_IFMT = 0o170000, S_IFLNK = 0o120000;

/** Before anything is created: the path still names a file of the same type. */
export function checkPathFd(fd: number, path: string, mode: number): void {
  let st: fs.Stats;
  try {
    st = (mode & S_IFMT) === S_IFLNK ? fs.lstatSync(path) : fs.statSync(path);
  } catch (e) {
    throw new CkptError('FILE_CHANGED', `O_PATH fd ${fd}: ${path} is gone since the dump (${(e as NodeJS.ErrnoException).code})`, { path });
  }
  if ((st.mode & S_IFMT) !== (mode & S_IFMT)) {
    throw new CkptError('FILE_CHANGED', `O_PATH fd ${fd}: ${path} is another type of file than at the dump (mode 0${(mode & S_IFMT).toString(8)} → 0${(st.mode & S_IFMT).toString(8)})`, { path });
  }
}
