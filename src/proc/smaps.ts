import { readProcText } from './read.js';
import { badProc, lines } from './text.js';
import { parseVmaLine, type Vma } from './maps.js';

/** One VMA of /proc/PID/smaps. */
export interface SmapsVma extends Vma {
  /** Size, Rss, Pss, Anonymous, Swap, ... as numbers (kB where the kernel says kB) */
  fields: Record<string, number>;
  /** the two-letter VmFlags mnemonics: rd wr ex sh mr mw me ms gd ac nr dc de ... */
  vmFlags: string[];
}

const FIELD = /^(\w+):\s+(\d+)(?: kB)?$/;

/** The bytes of a VMA in memory or in swap (smaps says kB). */
export function residentBytes(v: SmapsVma): number {
  return ((v.fields.Rss ?? 0) + (v.fields.Swap ?? 0)) * 1024;
}

export function parseSmaps(text: string): SmapsVma[] {
  const vmas: SmapsVma[] = [];
  let cur: SmapsVma | undefined;
  for (const line of lines(text)) {
    const vma = parseVmaLine(line);
    if (vma) {
      cur = { ...vma, fields: {}, vmFlags: [] };
      vmas.push(cur);
      continue;
    }
    if (!cur) throw badProc('smaps', `line before the first VMA ${JSON.stringify(line)}`);
    if (line.startsWith('VmFlags:')) {
      cur.vmFlags = line.slice('VmFlags:'.length).trim().split(/\s+/).filter(Boolean);
      continue;
    }
    const m = FIELD.exec(line);
    if (m) cur.fields[m[1]!] = Number(m[2]);
    // a newer kernel's non-numeric 'Key: value' line is skipped, anything else is wrong
    else if (!/^\w+:/.test(line)) throw badProc('smaps', `line ${JSON.stringify(line)}`);
  }
  return vmas;
}

export const readSmaps = (pid: number): SmapsVma[] => parseSmaps(readProcText(pid, 'smaps'));
