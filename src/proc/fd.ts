import { readProcDir, readProcLink } from './read.js';
import { numericEntries } from './tasks.js';

export { readFdinfo } from './fdinfo.js';

export const readFdList = (pid: number): number[] => numericEntries(readProcDir(pid, 'fd'));

/** What the fd points at: a path, or 'pipe:[123]', 'socket:[456]', 'anon_inode:[eventfd]'... */
export const readFdLink = (pid: number, fd: number): string => readProcLink(pid, `fd/${fd}`);
