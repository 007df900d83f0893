import { readProcLink } from './read.js';

export const readExe = (pid: number): string => readProcLink(pid, 'exe');
export const readCwd = (pid: number): string => readProcLink(pid, 'cwd');
export const readRoot = (pid: number): string => readProcLink(pid, 'root');
