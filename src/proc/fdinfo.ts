import { readProcText } from './read.js';
import { badProc, lines } from './text.js';

/** /proc/PID/fdinfo/FD */
export interface Fdinfo {
  pos: number;
  /** the open flags (O_*), printed in octal */
  flags: number;
  mntId: number;
  ino?: number;
  /** the kind's single lines by key: 'eventfd-count', 'sigmask', 'clockid', 'it_value'... */
  extra: Record<string, string>;
  /** the kind's per-object lines, verbatim: 'tfd: ...', 'inotify wd:...', 'lock:...' */
  lines: string[];
}

// keys printed once per watch, mark or lock; any key seen twice is treated the same way
const PER_OBJECT = new Set(['tfd', 'inotify wd', 'fanotify ino', 'fanotify mnt_id', 'fanotify sdev', 'lock']);

export function parseFdinfo(text: string): Fdinfo {
  const all = lines(text);
  const keys = all.map((line) => {
    const colon = line.indexOf(':');
    if (colon <= 0) throw badProc('fdinfo', `line ${JSON.stringify(line)}`);
    return line.slice(0, colon);
  });
  const seen = new Map<string, number>();
  for (const k of keys) seen.set(k, (seen.get(k) ?? 0) + 1);

  const common: Record<string, string> = {};
  const extra: Record<string, string> = {};
  const perObject: string[] = [];
  all.forEach((line, i) => {
    const key = keys[i]!;
    const value = line.slice(key.length + 1).trim();
    if (key === 'pos' || key === 'flags' || key === 'mnt_id' || key === 'ino') common[key] = value;
    else if (PER_OBJECT.has(key) || seen.get(key)! > 1) perObject.push(line);
    else extra[key] = value;
  });

  const num = (key: string, radix: number): number => {
    const v = common[key];
    if (v === undefined) throw badProc('fdinfo', `missing ${key}`);
    if (!(radix === 8 ? /^[0-7]+$/ : /^\d+$/).test(v)) throw badProc('fdinfo', `${key} ${JSON.stringify(v)}`);
    return parseInt(v, radix);
  };
  return {
    pos: num('pos', 10),
    flags: num('flags', 8),
    mntId: num('mnt_id', 10),
    ino: common['ino'] === undefined ? undefined : num('ino', 10),
    extra,
    lines: perObject,
  };
}

/**
 * The 'key:value' pairs of one per-object line, e.g. 'inotify wd:2 ino:13 sdev:fe00000 ...'
 * → { wd: '2', ino: '13', sdev: 'fe00000', ... }; 'tfd:  3 events: 19 data: 3  pos:0'
 * → { tfd: '3', events: '19', data: '3', pos: '0' }. Values stay text: their radix is the kind's.
 */
export function parseFdinfoPairs(line: string): Record<string, string> {
  const pairs: Record<string, string> = {};
  for (const m of line.matchAll(/([^\s:]+):\s*(\S+)/g)) pairs[m[1]!] = m[2]!;
  return pairs;
}

export const readFdinfo = (pid: number, fd: number): Fdinfo => parseFdinfo(readProcText(pid, `fdinfo/${fd}`));
