import { readProcText } from './read.js';
import { badProc, lines } from './text.js';

export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const PROT_EXEC = 4;

/** One line of /proc/PID/maps. */
export interface Vma {
  start: number;
  end: number;
  /** PROT_READ | PROT_WRITE | PROT_EXEC */
  prot: number;
  /** 's' (MAP_SHARED) rather than 'p' */
  shared: boolean;
  /** file offset in bytes */
  pgoff: number;
  major: number;
  minor: number;
  ino: number;
  /** '' when anonymous; '[heap]', '[stack]', '[vdso]', '[anon:name]'... as printed */
  path: string;
  /** the path ended with ' (deleted)', which is stripped from `path` */
  deleted: boolean;
}

// The kernel pads after the inode to a fixed column, so the path starts at the first
// non-space after it. A newline in a file name is printed as \012 and kept as such; a file
// really named 'x (deleted)' is indistinguishable from a deleted 'x' (check map_files/).
const VMA_LINE =
  /^([0-9a-f]+)-([0-9a-f]+) ([r-])([w-])([x-])([ps]) ([0-9a-f]+) ([0-9a-f]+):([0-9a-f]+) (\d+) ?(.*)$/;
const DELETED = ' (deleted)';

/** One maps (or smaps header) line; undefined when the line is not one. */
export function parseVmaLine(line: string): Vma | undefined {
  const m = VMA_LINE.exec(line);
  if (!m) return undefined;
  let path = m[11]!.replace(/^ +/, '');
  const deleted = path.endsWith(DELETED);
  if (deleted) path = path.slice(0, -DELETED.length);
  return {
    // [vsyscall] at ffffffffff600000 loses precision here; callers skip it by name
    start: parseInt(m[1]!, 16),
    end: parseInt(m[2]!, 16),
    prot: (m[3] === 'r' ? PROT_READ : 0) | (m[4] === 'w' ? PROT_WRITE : 0) | (m[5] === 'x' ? PROT_EXEC : 0),
    shared: m[6] === 's',
    pgoff: parseInt(m[7]!, 16),
    major: parseInt(m[8]!, 16),
    minor: parseInt(m[9]!, 16),
    ino: Number(m[10]),
    path,
    deleted,
  };
}

export function parseMaps(text: string): Vma[] {
  const vmas: Vma[] = [];
  for (const line of lines(text)) {
    const vma = parseVmaLine(line);
    if (!vma) throw badProc('maps', `line ${JSON.stringify(line)}`);
    vmas.push(vma);
  }
  return vmas;
}

export const readMaps = (pid: number): Vma[] => parseMaps(readProcText(pid, 'maps'));
