/**
 * Copies the saved pages out of a frozen process into pages.img.
 *
 * Small dumps: one native buffer, a ring of 512 KiB batches: process_vm_readv
 * into one, its write queued on glibc's AIO thread, its CRC taken here while
 * the AIO thread writes the batches before it.
 * Large dumps use both cores: this (tracer) thread moves pages into pages.img,
 * 8 MiB slot by slot, while a helper thread (src/helper-thread.ts) takes each
 * slot's CRC. Where the process can splice its pages (dump/page-splice.ts: a
 * process killed after the dump, a snapshot child), each VMA streams from it
 * to the file with the kernel's one copy, and the helper maps each 8 MiB that
 * landed from the file for the CRC; otherwise this thread reads them with
 * process_vm_readv into the slot and the helper writes the slot. (1 GiB on tmpfs, page step: ~1.2 s
 * read-and-write, ~0.65 s spliced.) JavaScript never touches pages one by one.
 */
import { crc32 } from '../sys/crc32.js';
import { checkAbort } from '../fault.js';
import { startHelperJob } from '../helper-thread.js';
import { waitWritten } from './page-writer.js';
import { CkptError } from '../errors.js';
import type { PagesWriter } from '../image/index.js';
import { BACKGROUND_SLOTS, mapNative, unmapNative, sharedNative, writeInBackground, type BackgroundWrite, type NativeMemory } from '../sys/libc.js';
import { processVmIo } from '../sys/syscalls.js';
import { PAGE_SIZE, PROT } from '../sys/constants.js';
import type { TraceeMemory } from '../ptrace/memory.js';
import { pagesIn, type Run } from '../kinds/pages.js';
import type { PageSplicer } from './page-splice.js';

export const SLOT_SIZE = 8 * 1024 * 1024;
const MIB = 1024 * 1024;
/**
 * Slots handed to the writer and not yet done: a ring of SLOTS. Only slots
 * read here hold bytes, in one of BUFFERS buffers of SLOT_SIZE (slot k in
 * buffer k % BUFFERS); spliced ones are in pages.img already and carry only
 * where, for their CRC. So until the helper has done its first slot, the copy
 * runs up to SLOTS slots (128 MiB spliced) ahead of it: a dump whose helper is
 * still starting (~55 ms) does not wait for it. After that, BUFFERS.
 */
const SLOTS = 16;
const BUFFERS = 4;
/**
 * The writer's CRC of copy k is in crcs[k % CRC_RING] once it wrote that
 * copy's last slot. A copy fills at least one slot and at most SLOTS are in
 * flight, so copy k is done before copy k + CRC_RING takes its first slot:
 * its CRC is collected (collectCrcs) before it can be overwritten.
 */
const CRC_RING = 1024;

/** Where a VMA's pages went: the offset now, the CRC once the pump's finish() returned. */
export interface Copied { offset: number; crc(): number }
/** Below this many bytes a worker's start-up costs more than it saves. */
export const PIPELINE_MIN_BYTES = 48 * 1024 * 1024;
/**
 * A small dump's batch. The ring of BACKGROUND_SLOTS of them is its buffer
 * (2 MiB): a CLI dump's buffer is fresh memory, whose page faults a larger
 * ring would pay for (the 16 MiB of a sparse dump copied no faster through 8 MiB).
 */
const PART_SIZE = 512 * 1024;

/**
 * The small dump's buffer (huge pages where the kernel gives them), kept for
 * the next dump of this thread: fresh memory costs its page faults every time.
 */
let spare: NativeMemory | undefined;

function takeBuffer(size: number): NativeMemory {
  if (spare && spare.size >= size) {
    const b = spare;
    spare = undefined;
    return b;
  }
  return mapNative(size);
}

function giveBack(mem: NativeMemory): void {
  if (spare && spare.size >= mem.size) { unmapNative(mem); return; }
  if (spare) unmapNative(spare);
  spare = mem;
}

export class PagePump {
  private slots: NativeMemory[];
  private ctl?: Int32Array;
  private offsets?: Float64Array;
  /** Per slot: the copy it belongs to, whether it is that copy's first slot, whether its bytes are in the file already. */
  private slotCopy?: Int32Array;
  private crcs?: Int32Array;
  /** Slots handed to the writer so far; ctl[DONE] counts those it has written. */
  private slotsIssued = 0;
  private copies = 0;
  /** Copies handed over whose CRC is not collected yet: [copy, its last slot's number]. */
  private pendingCrcs: [number, number][] = [];
  private finalCrcs = new Map<number, number>();
  private error?: Buffer;
  private next = 0;
  private own?: NativeMemory;
  /**
   * Small dumps: batches of `chunk` bytes go round a ring of `chunks` parts of
   * the buffer. The writes of those before are queued meanwhile (`writing`,
   * oldest first): a write that waits (a tmpfs write allocates and zeroes each
   * page under the file's lock) holds up neither the reads nor the CRC until
   * the ring comes round to its part.
   */
  private chunk = 0;
  private chunks = 1;
  private part = 0;
  private writing: { write: BackgroundWrite; part: number; from: number; len: number; at: number }[] = [];
  private get slotSize(): number { return this.ctl ? this.slots[0].size : this.chunk; }
  /** A large dump's: slots handed to a helper thread started already (no thread is started later). */
  get pipelined(): boolean { return this.ctl !== undefined; }

  private copied = 0;
  /** A small dump's write that failed. */
  private failed?: { error: unknown };
  /** Bytes that went from the process into pages.img by splice (the rest was read and written). */
  spliced = 0;
  /** Whether some of them moved with the process's thread on ckpt's CPU (ptrace/cpu-pin.ts). */
  pinned = false;

  /** `totalBytes`: what the process has resident, which decides how pages are copied. */
  constructor(private writer: PagesWriter, totalBytes: number, private onCopied?: (bytes: number) => void) {
    if (totalBytes >= PIPELINE_MIN_BYTES) {
      const data = new SharedArrayBuffer(BUFFERS * SLOT_SIZE);
      const ctl = new SharedArrayBuffer(4 * (2 * SLOTS + 2));
      const offsets = new SharedArrayBuffer(8 * SLOTS);
      const error = new SharedArrayBuffer(1024);
      const slotCopy = new SharedArrayBuffer(4 * 3 * SLOTS);
      const crcs = new SharedArrayBuffer(4 * CRC_RING);
      this.slots = Array.from({ length: BUFFERS }, (_, i) => sharedNative(data, i * SLOT_SIZE, SLOT_SIZE));
      this.ctl = new Int32Array(ctl);
      this.offsets = new Float64Array(offsets);
      this.error = Buffer.from(error);
      this.slotCopy = new Int32Array(slotCopy);
      this.crcs = new Int32Array(crcs);
      startHelperJob({ kind: 'write-pages', data: { fd: writer.fd, slots: SLOTS, slotSize: SLOT_SIZE, data, ctl, offsets, error, crc: { slotCopy, crcs, ring: CRC_RING } } });
    } else {
      // Fresh memory costs its page faults: no bigger than the dump needs, in whole MiB
      // so that the next dump of about the same size takes the spare.
      this.own = takeBuffer(Math.min(BACKGROUND_SLOTS * PART_SIZE, Math.ceil(Math.max(1, totalBytes) / MIB) * MIB));
      this.slots = [this.own];
      this.chunk = Math.min(PART_SIZE, this.own.size);
      this.chunks = Math.min(BACKGROUND_SLOTS, Math.floor(this.own.size / this.chunk));
    }
  }

  /**
   * Copy the runs of one VMA; returns its offset in pages.img and (after
   * finish()) the CRC of its data. From a `snapshot` (dump -R) pages are read
   * through /proc/PID/mem: they are shared copy-on-write with the running process,
   * and process_vm_readv pins each one, which makes the kernel unshare it
   * first (a copy of every page: 650 MiB/s against 870-1080 for pread here).
   * The same holds for a process that runs on and shares pages with a child.
   */
  copy(pid: number, mem: TraceeMemory, runs: Run[], prot: number, snapshot = false, splicerOf?: () => PageSplicer | undefined): Copied {
    // Splicing pays for its pipe from a few MiB on, and its CRC is the writer thread's work.
    const splicer = this.ctl && (prot & PROT.READ) ? splicerOf?.() : undefined;
    const offset = this.writer.offset;
    const copy = this.copies++;
    let first = true;
    let crc = 0;
    const handOn = (slot: number, len: number, inFile: boolean, at?: number) => {
      if (this.slotCopy) {
        this.slotCopy[3 * slot] = copy;
        this.slotCopy[3 * slot + 1] = first ? 1 : 0;
        this.slotCopy[3 * slot + 2] = inFile ? 1 : 0;
      }
      this.emit(slot, len, at);
      first = false;
      this.copied += len;
      this.onCopied?.(this.copied);
    };
    // Spliced, the whole VMA streams through the process's pipes; each slot's
    // worth that landed goes to the writer thread for its CRC, and what did not
    // splice is read and written below, after it.
    let skip = 0;
    let at: number | undefined;
    if (splicer) {
      const total = pagesIn(runs) * PAGE_SIZE;
      at = this.writer.reserve(total);
      const start = at;
      let handed = 0;
      const landed = (upTo: number, last: boolean) => {
        while (upTo - handed >= this.slotSize || (last && upTo > handed)) {
          checkAbort();
          const len = Math.min(this.slotSize, upTo - handed);
          handOn(this.takeSlot(false), len, true, start + handed);
          handed += len;
        }
      };
      skip = splicer.move(runs.map(([a, k]) => [a, k * PAGE_SIZE] as const), this.writer.fd, start, (upTo) => landed(upTo, false));
      landed(skip, true);
      this.spliced += skip;
      if (splicer.pinned) this.pinned = true;
      at += skip;
    }
    let batch: [number, number][] = [];
    let filled = 0;
    const flush = () => {
      if (filled === 0) return;
      checkAbort();
      const slot = this.takeSlot(true);
      const buf = this.slots[slot % this.slots.length];
      // Small dumps: the ring's next part, once its last write is done.
      if (!this.ctl) this.settle(this.part);
      const base = this.ctl ? 0 : this.part * this.chunk;
      const got = (prot & PROT.READ) && !snapshot ? processVmIo(false, pid, buf, base, batch) : 0;
      if (got !== filled) readForced(mem, buf, base, batch, got);
      if (this.slotCopy) {
        handOn(slot, filled, false, at);
        if (at !== undefined) at += filled;
      } else {
        // Written on glibc's AIO thread, in the order queued, while this thread takes
        // the CRC of the same bytes and reads the next batches into the ring's next parts.
        const pos = this.writer.reserve(filled);
        const write = this.chunks > 1 ? writeInBackground(this.writer.fd, buf, base, filled, pos, this.part) : undefined;
        if (write) this.writing.push({ write, part: this.part, from: base, len: filled, at: pos });
        else this.write(buf.buf, base, filled, pos);
        crc = crc32(buf.buf.subarray(base, base + filled), crc);
        this.part = (this.part + 1) % this.chunks;
        first = false;
        this.copied += filled;
        this.onCopied?.(this.copied);
      }
      batch = [];
      filled = 0;
    };
    for (const [addr, pages] of runs) {
      let a = addr;
      let left = pages * PAGE_SIZE;
      // What the splice moved already.
      const over = Math.min(skip, left);
      skip -= over;
      a += over;
      left -= over;
      while (left > 0) {
        const take = Math.min(left, this.slotSize - filled);
        batch.push([a, take]);
        filled += take;
        a += take;
        left -= take;
        if (filled === this.slotSize) flush();
      }
    }
    flush();
    if (!this.slotCopy) return { offset, crc: () => crc };
    this.pendingCrcs.push([copy, this.slotsIssued - 1]);
    return {
      offset,
      crc: () => {
        const v = this.finalCrcs.get(copy);
        if (v === undefined) throw new CkptError('INTERNAL', `the CRC of page copy ${copy} was asked before the pump finished`);
        return v;
      },
    };
  }

  /** Wait until every slot is written; throws what the writer hit (ENOSPC, EIO...). */
  finish(): void {
    if (this.failed) throw this.failed.error;
    if (!this.ctl) {
      this.settle();
      return;
    }
    for (let i = 0; i < SLOTS; i++) waitWritten(this.ctl, SLOTS, i);
    this.checkWriter();
    this.collectCrcs();
  }

  /** Keep the CRC of every copy whose last slot the writer has written. */
  private collectCrcs(): void {
    const done = Atomics.load(this.ctl!, 2 * SLOTS + 1);
    while (this.pendingCrcs.length && this.pendingCrcs[0][1] < done) {
      const [copy] = this.pendingCrcs.shift()!;
      this.finalCrcs.set(copy, this.crcs![copy % CRC_RING] >>> 0);
    }
  }

  /**
   * Wait for the small dump's queued writes, oldest first: all of them, or up
   * to the last one from ring part `part`. What one did not write (none of it,
   * on an error) is written here, and an error thrown as from write(2).
   */
  private settle(part?: number): void {
    let left = 0;
    this.writing.forEach((w, i) => { if (part === undefined || w.part === part) left = i + 1; });
    // One at a time: after a throw, close() still waits for the rest.
    for (; left > 0; left--) {
      const w = this.writing.shift()!;
      const done = Math.max(0, w.write.wait());
      this.write(this.own!.buf, w.from + done, w.len - done, w.at + done);
    }
  }

  /** A small dump's write; a failure stays, and finish() throws it again (the pipelined writer's stays in its status). */
  private write(buf: Buffer, from: number, len: number, at: number): void {
    try {
      this.writer.writeAt(buf, from, len, at);
    } catch (e) {
      this.failed ??= { error: e };
      throw e;
    }
  }

  /** Stop the writer: after a failure too, it writes nothing more once this returns. */
  close(): void {
    // The buffer is reused: no write of it may still be running.
    for (const w of this.writing.splice(0)) w.write.wait();
    if (this.ctl) {
      for (let i = 0; i < SLOTS; i++) waitWritten(this.ctl, SLOTS, i);
      const slot = this.next;
      Atomics.store(this.ctl, 2 * slot, 2);
      Atomics.notify(this.ctl, 2 * slot);
    }
    if (this.own) giveBack(this.own);
    this.own = undefined;
  }

  /** The next slot of the ring, once free; `buffered`: its buffer too (the slot BUFFERS before it is done). */
  private takeSlot(buffered: boolean): number {
    if (!this.ctl) return 0;
    const slot = this.next;
    waitWritten(this.ctl, SLOTS, slot);
    // The slot BUFFERS back: its buffer, for a slot read here; and once the helper works
    // (it has done a slot), BUFFERS in flight are enough to keep it busy. That slot, in the
    // ring still (SLOTS - BUFFERS slots are handed on before it is reused), is done or not yet.
    if (buffered || Atomics.load(this.ctl, 2 * SLOTS + 1) > 0) waitWritten(this.ctl, SLOTS, (slot + SLOTS - BUFFERS) % SLOTS);
    this.checkWriter();
    this.collectCrcs();
    return slot;
  }

  /** Hand slot's `len` bytes on to the writer thread (at `at` if reserved already); slotCopy says if they are in the file already. */
  private emit(slot: number, len: number, at?: number): void {
    if (!this.ctl || !this.offsets) throw new CkptError('INTERNAL', 'a slot handed on without a writer thread');
    this.offsets[slot] = at ?? this.writer.reserve(len);
    this.ctl[2 * slot + 1] = len;
    this.slotsIssued++;
    Atomics.store(this.ctl, 2 * slot, 1);
    Atomics.notify(this.ctl, 2 * slot);
    this.next = (slot + 1) % SLOTS;
  }

  private checkWriter(): void {
    if (this.ctl && Atomics.load(this.ctl, 2 * SLOTS) === 1) {
      const msg = this.error!.toString('utf8').replace(/\0+$/, '');
      throw new CkptError('SYSCALL', `writing ${this.writer.path} failed: ${msg}`, { path: this.writer.path, syscall: 'write' });
    }
  }

}

/** Pages process_vm_readv cannot read (no PROT_READ): /proc/PID/mem can. Into buf from `base`. */
export function readForced(mem: TraceeMemory, buf: NativeMemory, base: number, batch: [number, number][], skip: number): void {
  let at = 0;
  for (const [addr, len] of batch) {
    const from = Math.max(0, skip - at);
    if (from < len) mem.read(addr + from, len - from, buf.buf, base + at + from);
    at += len;
  }
}
