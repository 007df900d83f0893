import { readProcBuffer, readProcText } from './read.js';

/** NUL-separated argv, as bytes (arguments need not be UTF-8). */
export const readCmdline = (pid: number): Buffer => readProcBuffer(pid, 'cmdline');

/** NUL-separated environment, as bytes. */
export const readEnviron = (pid: number): Buffer => readProcBuffer(pid, 'environ');

/** comm, without the trailing newline. */
export const readComm = (pid: number): string => readProcText(pid, 'comm').replace(/\n$/, '');
export const readThreadComm = (pid: number, tid: number): string => readProcText(pid, `task/${tid}/comm`).replace(/\n$/, '');
