import { readProcDir, readProcText } from './read.js';

/** /proc/PID/task/TID/children: the children this thread created, space-separated. */
export function parseChildren(text: string): number[] {
  return text.split(/\s+/).filter(Boolean).map(Number);
}

/** Directory entries that are numbers (pids, tids, fds), sorted ascending. */
export function numericEntries(names: string[]): number[] {
  return names.filter((n) => /^\d+$/.test(n)).map(Number).sort((a, b) => a - b);
}

export const readChildren = (pid: number, tid: number = pid): number[] =>
  parseChildren(readProcText(pid, `task/${tid}/children`));

export const readTids = (pid: number): number[] => numericEntries(readProcDir(pid, 'task'));
