/**
 * Page contents. Dump: pagemap says which pages hold data worth saving
 * (the copy itself is dump/page-pump.ts). Restore: the target itself preadv()s
 * its pages straight from pages.img into place (one remote syscall per batch
 * of up to 1024 runs; the kernel copies from the page cache, ckpt touches none).
 */
import { crc32OfFile } from '../sys/crc32.js';
import { CkptError } from '../errors.js';
import { Content, defineRecord } from '../image/index.js';
import { Pagemap, PM_FILE, PM_PRESENT, PM_SWAPPED } from '../proc/index.js';
import { PAGE_SIZE } from '../sys/constants.js';
import { IOVEC_SIZE, encodeIovec } from '../sys/structs.js';
import { NR } from '../sys/nr.js';
import { PAGE_IS, pagemapScan } from '../sys/syscalls.js';
import { T } from './ids.js';
import { VmaKind, type VmaPlan, type VmaFields } from './vma.js';
import { callAll, throwIfFailed, BATCH_TABLE_BYTES, type RestoreTarget, type TargetCall } from './target.js';

/** Runs of saved pages: [address, number of pages] pairs, u64 each. */
export const PAGE_RUNS = defineRecord({ type: T.PAGE_RUNS, name: 'page_runs', content: Content.DATA, fields: {} });

export type Run = [addr: number, pages: number];

/** The pages that `runs` hold. */
export function pagesIn(runs: readonly Run[]): number {
  return runs.reduce((n, [, k]) => n + k, 0);
}

/**
 * Runs of pages a child still shared copy-on-write with its parent at dump
 * time (same page frame at the same address): not saved again; restore forks
 * the child after its parent's memory is in, so it inherits them as they were.
 */
export const COW_RUNS = defineRecord({ type: T.COW_RUNS, name: 'cow_runs', content: Content.DATA, fields: {} });

export function encodeRuns(runs: Run[]): Buffer {
  const buf = Buffer.alloc(runs.length * 16);
  runs.forEach(([a, n], i) => { buf.writeBigUInt64LE(BigInt(a), i * 16); buf.writeBigUInt64LE(BigInt(n), i * 16 + 8); });
  return buf;
}

export function decodeRuns(buf: Buffer, v: VmaFields, expect = v.nr_pages): Run[] {
  const runs: Run[] = [];
  let total = 0;
  for (let i = 0; i + 16 <= buf.length; i += 16) {
    const a = Number(buf.readBigUInt64LE(i));
    const n = Number(buf.readBigUInt64LE(i + 8));
    if (a < v.start || n < 1 || a + n * PAGE_SIZE > v.end || a % PAGE_SIZE !== 0) {
      throw new CkptError('BAD_IMAGE', `bad image: page run 0x${a.toString(16)}+${n} lies outside its VMA 0x${v.start.toString(16)}-0x${v.end.toString(16)}`);
    }
    runs.push([a, n]);
    total += n;
  }
  if (expect >= 0 && total !== expect) throw new CkptError('BAD_IMAGE', `bad image: VMA 0x${v.start.toString(16)} says ${expect} pages, its runs hold ${total}`);
  return runs;
}

/** The CRC of `len` bytes of a pages.img at `offset`, read through mappings of it (`pages_crc`). */
export function pagesCrc(fd: number, offset: number, len: number): number {
  return crc32OfFile(fd, offset, len);
}

const PAGEMAP_CHUNK = 64 * 1024; // pages per pagemap read

/**
 * Whether a page (the high word of its pagemap entry) holds data worth saving:
 * present or swapped; in a private file mapping (`anonOnly`) only an
 * anonymous, copied-on-write page differs from the file.
 */
function holdsData(hi: number, anonOnly: boolean): boolean {
  return anonOnly ? ((hi & PM_PRESENT) !== 0 && (hi & PM_FILE) === 0) || (hi & PM_SWAPPED) !== 0 : (hi & (PM_PRESENT | PM_SWAPPED)) !== 0;
}

/** The pages of a VMA worth saving, as runs. */
export function selectPages(pagemap: Pagemap, plan: VmaPlan, scratch: Buffer): Run[] {
  const { vma, kind } = plan;
  if (kind === VmaKind.FILE_SHARED || kind === VmaKind.SYSV_SHM || kind === VmaKind.VDSO || kind === VmaKind.VVAR || kind === VmaKind.VVAR_VCLOCK) return [];
  // In a private file mapping only anonymous (copied-on-write) pages differ from the file.
  const anonOnly = kind === VmaKind.FILE_PRIVATE;
  // The kernel's walk returns the runs themselves (a 1 GiB VMA in well under a millisecond).
  const scanned = pagemapScan(pagemap.fd, vma.start, vma.end, anonOnly
    ? { inverted: PAGE_IS.FILE, all: PAGE_IS.FILE, any: PAGE_IS.PRESENT | PAGE_IS.SWAPPED }
    : { inverted: 0, all: 0, any: PAGE_IS.PRESENT | PAGE_IS.SWAPPED });
  if (scanned) return scanned.map(([addr, bytes]): Run => [addr, bytes / PAGE_SIZE]);
  return selectPagesByRead(pagemap, plan, scratch);
}

/** selectPages without PAGEMAP_SCAN (before Linux 6.7): read the pagemap and look at each entry. */
export function selectPagesByRead(pagemap: Pagemap, plan: VmaPlan, scratch: Buffer): Run[] {
  const { vma, kind } = plan;
  const anonOnly = kind === VmaKind.FILE_PRIVATE;
  const runs: Run[] = [];
  const first = vma.start / PAGE_SIZE;
  const count = (vma.end - vma.start) / PAGE_SIZE;
  let runStart = -1;
  for (let done = 0; done < count; done += PAGEMAP_CHUNK) {
    const n = Math.min(PAGEMAP_CHUNK, count - done);
    const words = pagemap.read(first + done, n, scratch);
    for (let i = 0; i < n; i++) {
      const hi = words[i * 2 + 1];
      const keep = holdsData(hi, anonOnly);
      const page = done + i;
      if (keep) { if (runStart < 0) runStart = page; }
      else if (runStart >= 0) { runs.push([vma.start + runStart * PAGE_SIZE, page - runStart]); runStart = -1; }
    }
  }
  if (runStart >= 0) runs.push([vma.start + runStart * PAGE_SIZE, count - runStart]);
  return runs;
}

/** Pagemap entry → page frame number (0 when not present or not visible to us). */
function pfn(words: Uint32Array, i: number): number {
  const hi = words[i * 2 + 1];
  if ((hi & PM_PRESENT) === 0 || (hi & PM_SWAPPED) !== 0) return 0;
  return (hi & 0x7fffff) * 0x100000000 + words[i * 2];
}

/**
 * The pages of a child's VMA that its parent maps at the same address: those
 * on the same page frame are shared copy-on-write (`cow`), the rest that hold
 * data are the child's own (`own`).
 */
export function selectPagesCow(child: Pagemap, parent: Pagemap, plan: VmaPlan, bufChild: Buffer, bufParent: Buffer): { own: Run[]; cow: Run[] } {
  const { vma, kind } = plan;
  const anonOnly = kind === VmaKind.FILE_PRIVATE;
  const own: Run[] = [];
  const cow: Run[] = [];
  const first = vma.start / PAGE_SIZE;
  const count = (vma.end - vma.start) / PAGE_SIZE;
  let ownStart = -1;
  let cowStart = -1;
  const close = (page: number, keepOwn: boolean, keepCow: boolean) => {
    if (keepOwn) { if (ownStart < 0) ownStart = page; } else if (ownStart >= 0) { own.push([vma.start + ownStart * PAGE_SIZE, page - ownStart]); ownStart = -1; }
    if (keepCow) { if (cowStart < 0) cowStart = page; } else if (cowStart >= 0) { cow.push([vma.start + cowStart * PAGE_SIZE, page - cowStart]); cowStart = -1; }
  };
  for (let done = 0; done < count; done += PAGEMAP_CHUNK) {
    const n = Math.min(PAGEMAP_CHUNK, count - done);
    const mine = child.read(first + done, n, bufChild);
    const theirs = parent.read(first + done, n, bufParent);
    for (let i = 0; i < n; i++) {
      const hi = mine[i * 2 + 1];
      const data = holdsData(hi, anonOnly);
      const frame = pfn(mine, i);
      const shared = frame !== 0 && frame === pfn(theirs, i);
      close(done + i, data && !shared, data && shared);
    }
  }
  close(count, false, false);
  return { own, cow };
}

const MAX_IOV = 1024;
const MADV_POPULATE_WRITE = 23;
/**
 * Runs this long are faulted in by one madvise before the preadv: the kernel
 * then takes one call for the run instead of a fault per page. preadv of 1 GiB
 * into fresh memory here took 1236 ms, and 736 after MADV_POPULATE_WRITE;
 * 0.2-0.5 ms less per MiB, for a remote call of 0.1-0.2 ms.
 */
const POPULATE_MIN_BYTES = 1 << 20;

/**
 * In the target: preadv(pagesFd, runs) for every VMA's pages. Runs of a VMA
 * are consecutive in pages.img, so one preadv covers up to 1024 of them.
 * `meanwhile` runs on ckpt's thread while the target works on the largest
 * batch (its first madvise or its preadv): on another core, at the same time.
 */
export function restorePages(t: RestoreTarget, pagesFd: number, vmas: { fields: VmaFields; runs: Run[] }[], meanwhile?: () => void): void {
  // Every madvise and preadv, in as few batches (ptrace/batch.ts) as the scratch area holds their iovecs.
  let calls: TargetCall[] = [];
  let reads: { call: number; batch: Run[]; off: number; total: number }[] = [];
  t.scratch.reset();
  const run = () => {
    const got = callAll(t, calls, { meanwhile });
    meanwhile = undefined;
    for (const r of reads) {
      throwIfFailed(t, calls[r.call], got[r.call]);
      let done = Number(got[r.call]);
      while (done < r.total) {
        // A short read (over 2 GiB, or a signal) continues where it stopped.
        if (done === 0) throw new CkptError('BAD_IMAGE', `bad image: pages.img ends early at offset ${r.off}`);
        const more = resumeShort(t, pagesFd, r.batch, done, r.off);
        if (more === 0) throw new CkptError('BAD_IMAGE', `bad image: pages.img ends early at offset ${r.off + done}`);
        done += more;
      }
    }
    calls = [];
    reads = [];
    t.scratch.reset();
  };
  for (const { fields: v, runs } of vmas) {
    if (runs.length === 0) continue;
    let off = v.pages_off;
    // Private memory only, the kinds whose pages come back this way.
    const populate = v.kind === VmaKind.ANON || v.kind === VmaKind.FILE_PRIVATE;
    for (let i = 0; i < runs.length; i += MAX_IOV) {
      const batch = runs.slice(i, i + MAX_IOV);
      const total = batchBytes(runs, i);
      const iov = Buffer.alloc(batch.length * IOVEC_SIZE);
      batch.forEach(([a, n], j) => encodeIovec(iov, j, a, n * PAGE_SIZE));
      // Room for these iovecs and a batch's table after them.
      if (calls.length && t.scratch.left() < iov.length + BATCH_TABLE_BYTES) run();
      // Exactly the pages preadv writes next: nothing the process did not have. A kernel
      // before 5.14 says EINVAL and the preadv faults them in as it goes.
      if (populate) {
        for (const [a, n] of batch) {
          if (n * PAGE_SIZE >= POPULATE_MIN_BYTES) calls.push({ nr: NR.madvise, args: [a, n * PAGE_SIZE, MADV_POPULATE_WRITE], what: 'madvise(MADV_POPULATE_WRITE)' });
        }
      }
      reads.push({ call: calls.length, batch, off, total });
      calls.push({ nr: NR.preadv, args: [pagesFd, t.scratch.put(iov), batch.length, off, 0], what: 'preadv(pages.img)' });
      off += total;
    }
  }
  if (calls.length) run();
}

function batchBytes(runs: Run[], from: number): number {
  let n = 0;
  for (let i = from; i < Math.min(runs.length, from + MAX_IOV); i++) n += runs[i][1] * PAGE_SIZE;
  return n;
}

function resumeShort(t: RestoreTarget, fd: number, batch: Run[], done: number, off: number): number {
  let skip = done;
  const rest: [number, number][] = [];
  for (const [a, n] of batch) {
    const len = n * PAGE_SIZE;
    if (skip >= len) { skip -= len; continue; }
    rest.push([a + skip, len - skip]);
    skip = 0;
  }
  const iov = Buffer.alloc(rest.length * IOVEC_SIZE);
  rest.forEach(([a, len], j) => encodeIovec(iov, j, a, len));
  t.scratch.reset();
  return t.remote.call(NR.preadv, [fd, t.scratch.put(iov), rest.length, off + done, 0], 'preadv(pages.img)');
}
