/**
 * The saved memory of one process, addressed as the process saw it. Each VMA's
 * saved pages lie contiguously in pages.img at pages_off, run after run in
 * PAGE_RUNS order (docs/image-format.md section 6). A page of a VMA that is
 * not saved reads as zeros; an address outside every VMA is an error.
 */
import fs from 'node:fs';
import { CkptError } from '../errors.js';
import { PagesReader, PAGES_HDR_SIZE } from '../image/index.js';
import { decodeChunks, decompressChunk, type Chunk, type ChunkTable } from '../kinds/page-chunks.js';
import { fsError } from '../image/fserror.js';
import { PAGE_SIZE } from '../sys/constants.js';
import { hex, vmaAt, type InspectImage, type InspectProcess, type InspectVma } from './model.js';

/** One run of saved pages: [addr, addr + len) is at fileOff in pages.img. */
export interface Piece { addr: number; len: number; fileOff: number; vma: InspectVma }

export class SavedMemory {
  private readonly byVma = new Map<InspectVma, Piece[]>();

  /** A compressed image: page-stream offsets are found through the chunk table. */
  private cached?: { chunk: Chunk; raw: Buffer };

  private constructor(readonly proc: InspectProcess, readonly reader: PagesReader, private readonly chunks?: ChunkTable) {
    for (const v of proc.vmas) {
      const pieces: Piece[] = [];
      let off = v.fields.pages_off;
      for (const [addr, n] of v.runs) {
        pieces.push({ addr, len: n * PAGE_SIZE, fileOff: off, vma: v });
        off += n * PAGE_SIZE;
      }
      if (pieces.length && !chunks) reader.check(v.fields.pages_off, off - v.fields.pages_off);
      pieces.sort((a, b) => a.addr - b.addr);
      this.byVma.set(v, pieces);
    }
  }

  static open(img: InspectImage, proc: InspectProcess): SavedMemory {
    const reader = PagesReader.open(img.pagesPath);
    try {
      const c = img.pageChunks;
      const chunks = c && decodeChunks(c.codec, c.count, c.data, { path: img.pagesPath, size: reader.size, start: PAGES_HDR_SIZE });
      return new SavedMemory(proc, reader, chunks);
    } catch (e) {
      reader.close();
      throw e;
    }
  }

  close(): void {
    this.reader.close();
  }

  /** The saved runs of one VMA, by address. */
  piecesOf(v: InspectVma): Piece[] {
    return this.byVma.get(v) ?? [];
  }

  /** The piece holding addr, if that page was saved. */
  pieceAt(addr: number): Piece | undefined {
    const v = vmaAt(this.proc, addr);
    if (!v) return undefined;
    return this.piecesOf(v).find((p) => addr >= p.addr && addr < p.addr + p.len);
  }

  /** Exactly len bytes of the page stream at fileOff into buf[at...]. */
  pread(buf: Buffer, at: number, len: number, fileOff: number): void {
    if (this.chunks) this.readChunked(buf, at, len, fileOff);
    else this.preadFile(buf.subarray(at, at + len), fileOff);
  }

  /** The same from a compressed page stream, a chunk at a time (the last one is kept). */
  private readChunked(buf: Buffer, at: number, len: number, off: number): void {
    const table = this.chunks!;
    let done = 0;
    while (done < len) {
      const pos = off + done;
      const chunk = table.chunks.find((c) => pos >= c.raw_offset && pos < c.raw_offset + c.raw_len);
      if (!chunk) throw new CkptError('BAD_IMAGE', `bad image ${this.reader.path}: no chunk holds page-stream offset ${pos}`, { offset: pos });
      if (this.cached?.chunk !== chunk) {
        const packed = Buffer.alloc(chunk.packed_len);
        this.preadFile(packed, chunk.file_offset);
        this.cached = { chunk, raw: decompressChunk(table.codec, packed, chunk.raw_len) };
      }
      const from = pos - chunk.raw_offset;
      const n = Math.min(len - done, chunk.raw_len - from);
      this.cached.raw.copy(buf, at + done, from, from + n);
      done += n;
    }
  }

  private preadFile(buf: Buffer, fileOff: number): void {
    let done = 0;
    try {
      while (done < buf.length) {
        const n = fs.readSync(this.reader.fd, buf, done, buf.length - done, fileOff + done);
        if (n === 0) throw new CkptError('BAD_IMAGE', `bad image ${this.reader.path}: truncated at offset ${fileOff + done}`, { offset: fileOff + done });
        done += n;
      }
    } catch (err) {
      throw err instanceof CkptError ? err : fsError(err, 'read', this.reader.path);
    }
  }

  /**
   * The len bytes at addr into buf[at...] (a new buffer by default). Unsaved
   * pages read as zeros; USAGE naming the first address that no VMA holds.
   */
  read(addr: number, len: number, buf = Buffer.alloc(len), at = 0): Buffer {
    const end = addr + len;
    let cur = addr;
    while (cur < end) {
      const v = vmaAt(this.proc, cur);
      if (!v) throw new CkptError('USAGE', `address ${hex(cur)} is not in any VMA of process ${this.proc.pid}`, { pid: this.proc.pid });
      const stop = Math.min(end, v.end);
      for (const p of this.piecesOf(v)) {
        const a = Math.max(cur, p.addr), b = Math.min(stop, p.addr + p.len);
        if (a < b) this.pread(buf, at + (a - addr), b - a, p.fileOff + (a - p.addr));
      }
      const saved = this.piecesOf(v).filter((p) => p.addr < stop && p.addr + p.len > cur);
      // zero what no piece covered (buf may be reused)
      let z = cur;
      for (const p of saved) {
        if (p.addr > z) buf.fill(0, at + (z - addr), at + (Math.min(p.addr, stop) - addr));
        z = Math.max(z, p.addr + p.len);
      }
      if (z < stop) buf.fill(0, at + (z - addr), at + (stop - addr));
      cur = stop;
    }
    return buf;
  }

  /**
   * Address-contiguous groups of saved pieces (runs of adjacent VMAs that
   * touch form one group), so that a scan finds matches across run and VMA
   * boundaries when no unsaved page lies between.
   */
  groups(): Piece[][] {
    const all = this.proc.vmas.flatMap((v) => this.piecesOf(v));
    const out: Piece[][] = [];
    for (const p of all) {
      const g = out[out.length - 1];
      const last = g?.[g.length - 1];
      if (last && last.addr + last.len === p.addr) g.push(p);
      else out.push([p]);
    }
    return out;
  }

  /** Bytes of one group [addr, addr + len) into buf. */
  private readGroup(group: Piece[], addr: number, len: number, buf: Buffer): void {
    const end = addr + len;
    for (const p of group) {
      const a = Math.max(addr, p.addr), b = Math.min(end, p.addr + p.len);
      if (a < b) this.pread(buf, a - addr, b - a, p.fileOff + (a - p.addr));
    }
  }

  /**
   * Stream the saved memory in chunks of `chunk` bytes, each followed by up
   * to `overlap` bytes of what comes next: a match that starts in the chunk
   * (index < limit) and is at most overlap + 1 bytes long is wholly in buf.
   * buf is reused: copy what you keep.
   */
  *scan(chunk: number, overlap: number): Generator<{ addr: number; buf: Buffer; limit: number }> {
    const buffer = Buffer.alloc(chunk + overlap);
    for (const group of this.groups()) {
      const gStart = group[0].addr;
      const gEnd = group[group.length - 1].addr + group[group.length - 1].len;
      for (let pos = gStart; pos < gEnd; pos += chunk) {
        const limit = Math.min(chunk, gEnd - pos);
        const len = Math.min(chunk + overlap, gEnd - pos);
        this.readGroup(group, pos, len, buffer);
        yield { addr: pos, buf: buffer.subarray(0, len), limit };
      }
    }
  }
}

/** Classic hexdump lines (16 bytes each) of buf, which starts at addr. */
export function hexdumpLines(addr: number, buf: Buffer, width = 16): string[] {
  const lines: string[] = [];
  const first = addr - (addr % width);
  for (let line = first; line < addr + buf.length; line += width) {
    const hexes: string[] = [];
    let ascii = '';
    for (let i = 0; i < width; i++) {
      const a = line + i;
      if (a < addr || a >= addr + buf.length) { hexes.push('  '); ascii += ' '; continue; }
      const b = buf[a - addr];
      hexes.push(b.toString(16).padStart(2, '0'));
      ascii += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.';
    }
    lines.push(`${line.toString(16).padStart(12, '0')}  ${hexes.slice(0, 8).join(' ')}  ${hexes.slice(8).join(' ')}  |${ascii}|`);
  }
  return lines;
}

export const asciiOf = (buf: Buffer) => Array.from(buf, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
