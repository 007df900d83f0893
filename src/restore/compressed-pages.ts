/**
 * Pages of a compressed image (dump --compress). The target cannot preadv
 * compressed data, so ckpt reads each chunk of pages.img, decompresses it
 * into one native buffer, checks the CRC of every VMA whose data it holds
 * (inline: the data is read once), and process_vm_writev's it into the
 * target's VMAs, already mapped writable (architecture.md §5.4).
 */
import { crc32 } from '../sys/crc32.js';
import { CkptError } from '../errors.js';
import type { PagesReader } from '../image/index.js';
import { allocNative, freeNative } from '../sys/libc.js';
import { processVmIo } from '../sys/syscalls.js';
import { PAGE_SIZE } from '../sys/constants.js';
import { decompressChunk, codecName, maxPacked, type ChunkTable } from '../kinds/page-chunks.js';
import type { VmaFields } from '../kinds/vma.js';
import type { Run } from '../kinds/pages.js';

/** A run of pages: where it is in the page stream and where it goes in the target. */
interface Segment { raw: number; addr: number; len: number; vma: number }
interface VmaCrc { crc: number; end: number; expect: number; start: number }

export function restoreChunkedPages(pid: number, reader: PagesReader, table: ChunkTable, vmas: { fields: VmaFields; runs: Run[] }[]): void {
  const segs: Segment[] = [];
  const crcs: VmaCrc[] = [];
  vmas.forEach(({ fields: v, runs }, i) => {
    crcs.push({ crc: 0, end: v.pages_off + v.nr_pages * PAGE_SIZE, expect: v.pages_crc, start: v.start });
    let raw = v.pages_off;
    for (const [addr, n] of runs) {
      segs.push({ raw, addr, len: n * PAGE_SIZE, vma: i });
      raw += n * PAGE_SIZE;
    }
  });
  segs.sort((a, b) => a.raw - b.raw);
  if (segs.length === 0) return;
  const maxRaw = table.chunks.reduce((m, c) => Math.max(m, c.raw_len), 0);
  const maxPack = table.chunks.reduce((m, c) => Math.max(m, c.packed_len), 0);
  const native = allocNative(Math.max(PAGE_SIZE, maxRaw));
  const packed = Buffer.allocUnsafe(Math.min(maxPack, maxPacked(maxRaw)));
  try {
    let si = 0;
    for (const c of table.chunks) {
      const end = c.raw_offset + c.raw_len;
      if (si >= segs.length) break;
      if (segs[si].raw >= end) continue;
      reader.read(packed, c.packed_len, c.file_offset);
      let raw: Buffer;
      try {
        raw = decompressChunk(table.codec, packed.subarray(0, c.packed_len), c.raw_len);
      } catch (e) {
        throw new CkptError('BAD_IMAGE', `bad image ${reader.path}: ${codecName(table.codec)} chunk at offset ${c.file_offset} (pages ${c.raw_offset}+${c.raw_len}) is corrupt: ${(e as Error).message}`, { offset: c.file_offset, path: reader.path });
      }
      native.buf.set(raw);
      // Runs of the page stream that follow each other in the chunk go in one process_vm_writev.
      let iov: [number, number][] = [];
      let iovFrom = -1;
      let iovTo = -1;
      const flush = () => {
        if (iov.length === 0) return;
        const got = processVmIo(true, pid, native, iovFrom, iov);
        if (got !== iovTo - iovFrom) {
          throw new CkptError('SYSCALL', `process_vm_writev into pid ${pid} wrote ${got} of ${iovTo - iovFrom} bytes at 0x${iov[0][0].toString(16)}`, { pid, syscall: 'process_vm_writev' });
        }
        iov = [];
      };
      while (si < segs.length && segs[si].raw < end) {
        const s = segs[si];
        const lo = Math.max(s.raw, c.raw_offset);
        const hi = Math.min(s.raw + s.len, end);
        const from = lo - c.raw_offset;
        const to = hi - c.raw_offset;
        const v = crcs[s.vma];
        v.crc = crc32(native.buf.subarray(from, to), v.crc);
        if (hi === v.end && v.crc !== v.expect) {
          const at = vmas[s.vma].fields.pages_off;
          throw new CkptError('BAD_IMAGE', `bad image ${reader.path}: page data at offset ${at} (VMA 0x${v.start.toString(16)} of pid ${pid}) fails its CRC`, { offset: at, path: reader.path });
        }
        if (from !== iovTo) { flush(); iovFrom = from; }
        iov.push([s.addr + (lo - s.raw), hi - lo]);
        iovTo = to;
        if (s.raw + s.len <= end) si++;
        else break;
      }
      flush();
    }
    if (si < segs.length) {
      throw new CkptError('BAD_IMAGE', `bad image ${reader.path}: page data at ${segs[si].raw} is in no chunk`, { offset: segs[si].raw, path: reader.path });
    }
  } finally {
    freeNative(native);
  }
}
