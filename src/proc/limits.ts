import { readProcText } from './read.js';
import { badProc, lines } from './text.js';

export const RLIM_INFINITY = 2n ** 64n - 1n;

/** /proc/PID/limits names, in RLIMIT_* order on x86_64 (RLIMIT_CPU 0 ... RLIMIT_RTTIME 15). */
export const RLIMIT_NAMES: readonly string[] = [
  'Max cpu time', 'Max file size', 'Max data size', 'Max stack size', 'Max core file size',
  'Max resident set', 'Max processes', 'Max open files', 'Max locked memory',
  'Max address space', 'Max file locks', 'Max pending signals', 'Max msgqueue size',
  'Max nice priority', 'Max realtime priority', 'Max realtime timeout',
];

export interface Rlimit {
  name: string;
  /** the RLIMIT_* number */
  resource: number;
  /** RLIM_INFINITY for 'unlimited' */
  soft: bigint;
  hard: bigint;
}

export function parseLimits(text: string): Rlimit[] {
  const limits: Rlimit[] = [];
  for (const line of lines(text)) {
    if (line.startsWith('Limit ')) continue;
    const resource = RLIMIT_NAMES.findIndex((n) => line.startsWith(n + ' '));
    if (resource < 0) throw badProc('limits', `line ${JSON.stringify(line)}`);
    const name = RLIMIT_NAMES[resource]!;
    const [soft, hard] = line.slice(name.length).trim().split(/\s+/);
    limits.push({ name, resource, soft: toLimit(soft, name), hard: toLimit(hard, name) });
  }
  return limits;
}

function toLimit(s: string | undefined, name: string): bigint {
  if (s === 'unlimited') return RLIM_INFINITY;
  if (s === undefined || !/^\d+$/.test(s)) throw badProc('limits', `${name} ${JSON.stringify(s)}`);
  return BigInt(s);
}

export const readLimits = (pid: number): Rlimit[] => parseLimits(readProcText(pid, 'limits'));
