/**
 * ckpt mem: search the saved memory of a process (string or regular
 * expression), or read bytes at an address. pages.img is streamed in chunks,
 * never loaded whole.
 */
import fs from 'node:fs';
import { CkptError } from '../errors.js';
import { openInspect, processOf, vmaAt, hex, vmaLabel, type InspectVma } from './model.js';
import { SavedMemory, hexdumpLines, asciiOf } from './memory.js';

/** Bytes scanned per step; each step also reads the overlap that follows. */
export const SCAN_CHUNK = 4 * 1024 * 1024;
/** How far past its chunk a regular-expression match may reach. */
export const REGEX_OVERLAP = 64 * 1024;
/** Largest --len printed to stdout (hexdump or JSON); -o FILE has no limit. */
export const MAX_PRINT = 16 * 1024 * 1024;

export interface VmaJson { start: string; end: string; prot: string; kind: string; path: string }
export const vmaJson = (v: InspectVma): VmaJson => ({ start: hex(v.start), end: hex(v.end), prot: v.prot, kind: v.kind, path: v.path });

export interface MemMatch {
  addr: string;
  length: number;
  vma: VmaJson;
  vma_offset: number;
  hex: string;
  text: string;
  context: { addr: string; hex: string; ascii: string; lines: string[] };
}
export interface MemSearchResult {
  pid: number;
  pattern: string;
  mode: 'string' | 'regex';
  scanned_bytes: number;
  matches: MemMatch[];
  truncated: boolean;
}

export interface SearchOptions { search?: string; regex?: string; ignoreCase?: boolean; context?: number; max?: number; chunk?: number }

export function memSearch(dir: string, pid: number, o: SearchOptions): MemSearchResult {
  const img = openInspect(dir);
  const proc = processOf(img, pid, 'mem');
  const context = o.context ?? 32;
  const max = o.max ?? 1000;
  const chunk = o.chunk ?? SCAN_CHUNK;
  let find: (buf: Buffer, limit: number) => [number, number][];
  let overlap: number;
  let pattern: string;
  if (o.search !== undefined) {
    const needle = Buffer.from(o.search, 'utf8');
    if (needle.length === 0) throw new CkptError('USAGE', 'mem: --search needs a non-empty string');
    pattern = o.search;
    overlap = needle.length - 1;
    find = (buf, limit) => {
      const out: [number, number][] = [];
      for (let i = buf.indexOf(needle); i >= 0 && i < limit; i = buf.indexOf(needle, i + 1)) out.push([i, needle.length]);
      return out;
    };
  } else if (o.regex !== undefined) {
    let re: RegExp;
    try {
      re = new RegExp(o.regex, o.ignoreCase ? 'gis' : 'gs');
    } catch (e) {
      throw new CkptError('USAGE', `mem: bad --regex: ${(e as Error).message}`);
    }
    pattern = o.regex;
    overlap = REGEX_OVERLAP;
    find = (buf, limit) => {
      const text = buf.toString('latin1');
      const out: [number, number][] = [];
      re.lastIndex = 0;
      for (let m = re.exec(text); m && m.index < limit; m = re.exec(text)) {
        if (m[0].length === 0) { re.lastIndex++; continue; }
        out.push([m.index, m[0].length]);
      }
      return out;
    };
  } else {
    throw new CkptError('USAGE', 'mem: give --search STRING, --regex RE or --addr A --len N (see ckpt help mem)');
  }

  const mem = SavedMemory.open(img, proc);
  try {
    const matches: MemMatch[] = [];
    let scanned = 0;
    let truncated = false;
    outer: for (const { addr, buf, limit } of mem.scan(chunk, overlap)) {
      scanned += limit;
      for (const [i, len] of find(buf, limit)) {
        if (matches.length >= max) { truncated = true; break outer; }
        const at = addr + i;
        const v = vmaAt(proc, at)!;
        const bytes = Buffer.from(buf.subarray(i, i + len));
        const cStart = Math.max(v.start, at - context);
        const cEnd = Math.min(v.end, at + len + context);
        const ctx = mem.read(cStart, cEnd - cStart);
        matches.push({
          addr: hex(at), length: len, vma: vmaJson(v), vma_offset: at - v.start,
          hex: bytes.toString('hex'), text: asciiOf(bytes),
          context: { addr: hex(cStart), hex: ctx.toString('hex'), ascii: asciiOf(ctx), lines: hexdumpLines(cStart, ctx) },
        });
      }
    }
    return { pid, pattern, mode: o.search !== undefined ? 'string' : 'regex', scanned_bytes: scanned, matches, truncated };
  } finally {
    mem.close();
  }
}

export function formatSearch(r: MemSearchResult): string {
  const lines: string[] = [];
  for (const m of r.matches) {
    const v = m.vma;
    lines.push(`${m.addr}  ${v.path || '(' + v.kind + ')'}  ${v.start}-${v.end} ${v.prot} ${v.kind} +0x${m.vma_offset.toString(16)}  ${m.length} bytes`);
    for (const l of m.context.lines) lines.push(`  ${l}`);
  }
  const mib = (r.scanned_bytes / 1048576).toFixed(1);
  lines.push(`${r.matches.length}${r.truncated ? '+' : ''} match${r.matches.length === 1 ? '' : 'es'} of ${r.mode} ${JSON.stringify(r.pattern)} in ${mib} MiB of saved memory of process ${r.pid}${r.truncated ? ' (stopped at --max)' : ''}`);
  return lines.join('\n') + '\n';
}

export interface MemReadResult { pid: number; addr: string; len: number; vmas: VmaJson[]; unsaved_pages: number; hex: string }

/** Check [addr, addr + len) lies in VMAs (USAGE naming the first address outside) and return them. */
function spanVmas(proc: ReturnType<typeof processOf>, addr: number, len: number): InspectVma[] {
  const out: InspectVma[] = [];
  for (let cur = addr; cur < addr + len;) {
    const v = vmaAt(proc, cur);
    if (!v) throw new CkptError('USAGE', `mem: address ${hex(cur)} is not in any VMA of process ${proc.pid}`, { pid: proc.pid });
    out.push(v);
    cur = v.end;
  }
  return out;
}

/**
 * The len bytes at addr. With `out`, streams them into that file (any size);
 * otherwise returns them (at most MAX_PRINT bytes).
 */
export function memRead(dir: string, pid: number, addr: number, len: number, out?: string): { result: MemReadResult; bytes?: Buffer } {
  if (!Number.isSafeInteger(addr) || addr < 0 || !Number.isSafeInteger(len) || len < 1) throw new CkptError('USAGE', 'mem: --addr and --len must be a non-negative address and a positive length');
  const img = openInspect(dir);
  const proc = processOf(img, pid, 'mem');
  const vmas = spanVmas(proc, addr, len);
  if (!out && len > MAX_PRINT) throw new CkptError('USAGE', `mem: --len ${len} is more than ${MAX_PRINT} bytes to print; write them with -o FILE`);
  const mem = SavedMemory.open(img, proc);
  try {
    let unsaved = 0;
    const first = addr - (addr % 4096);
    for (let pg = first; pg < addr + len; pg += 4096) if (!mem.pieceAt(pg)) unsaved++;
    const result: MemReadResult = { pid, addr: hex(addr), len, vmas: vmas.map(vmaJson), unsaved_pages: unsaved, hex: '' };
    if (out) {
      let fd: number;
      try { fd = fs.openSync(out, 'w', 0o600); } catch (e) { throw new CkptError('USAGE', `mem: cannot write ${out}: ${(e as Error).message}`, { path: out }); }
      try {
        const buf = Buffer.alloc(Math.min(len, SCAN_CHUNK));
        for (let done = 0; done < len;) {
          const n = Math.min(buf.length, len - done);
          mem.read(addr + done, n, buf);
          for (let w = 0; w < n;) w += fs.writeSync(fd, buf, w, n - w);
          done += n;
        }
      } finally {
        fs.closeSync(fd);
      }
      return { result };
    }
    const bytes = mem.read(addr, len);
    result.hex = bytes.toString('hex');
    return { result, bytes };
  } finally {
    mem.close();
  }
}

export function formatRead(r: MemReadResult, bytes: Buffer): string {
  const head = `${r.len} bytes at ${r.addr} of process ${r.pid} (${r.vmas.map((v) => `${v.start}-${v.end} ${v.prot} ${v.kind}${v.path ? ' ' + v.path : ''}`).join('; ')})${r.unsaved_pages ? `; ${r.unsaved_pages} page(s) not saved, read as zeros` : ''}`;
  return [head, ...hexdumpLines(Number(BigInt(r.addr)), bytes)].join('\n') + '\n';
}

export { vmaLabel };
