/**
 * The page pump of `dump --compress zstd|lz4`: like PagePump, this (tracer)
 * thread reads pages with process_vm_readv into 8 MiB slots of a shared
 * buffer and computes each VMA's CRC over the uncompressed data; a slot is
 * one chunk. Unlike PagePump, a slot fills across VMAs (small VMAs would
 * make small chunks that compress badly) and is handed over only when full
 * or at the end. The worker, on the second core, compresses each chunk and
 * appends it to pages.img, padded to 4096 bytes. Small dumps compress inline.
 *
 * Offsets returned by copy() are in the uncompressed page stream, which
 * starts at 4096 as in an uncompressed pages.img; finish() returns the chunk
 * table that maps that stream to the file.
 */
import { crc32 } from '../sys/crc32.js';
import { checkAbort } from '../fault.js';
import { startHelperJob } from '../helper-thread.js';
import { waitWritten } from './page-writer.js';
import { CkptError } from '../errors.js';
import { PAGES_HDR_SIZE, type PagesWriter } from '../image/index.js';
import { allocNative, freeNative, sharedNative, type NativeMemory } from '../sys/libc.js';
import { processVmIo } from '../sys/syscalls.js';
import type { Copied } from './page-pump.js';
import { PAGE_SIZE, PROT } from '../sys/constants.js';
import type { TraceeMemory } from '../ptrace/memory.js';
import type { Run } from '../kinds/pages.js';
import { compressor, MAX_CHUNK_RAW, type Chunk, type Codec, type Compressor } from '../kinds/page-chunks.js';

const SLOTS = 4;
/** Below this many bytes compressing inline beats starting a worker. */
export const COMPRESS_WORKER_MIN_BYTES = 16 * 1024 * 1024;

export class ChunkPump {
  private slots: NativeMemory[];
  private ctl?: Int32Array;
  private results?: Float64Array;
  private error?: Buffer;
  private own?: NativeMemory;
  private inline?: Compressor;
  /** The slot being filled, and how full it is. */
  private cur = 0;
  private fill = 0;
  /** Page-stream offset of the current slot's first byte. */
  private rawStart = PAGES_HDR_SIZE;
  private chunks: Chunk[] = [];
  /** Index in `chunks` of the chunk each slot holds while the worker has it. */
  private inSlot: number[] = new Array(SLOTS).fill(-1);
  private copied = 0;
  private get slotSize(): number { return this.slots[0].size; }

  constructor(private writer: PagesWriter, codec: Codec, totalBytes: number, private onCopied?: (bytes: number) => void) {
    if (totalBytes >= COMPRESS_WORKER_MIN_BYTES) {
      const data = new SharedArrayBuffer(SLOTS * MAX_CHUNK_RAW);
      // The writer's protocol (page-writer.ts): two words per slot, its status, slots done.
      const ctl = new SharedArrayBuffer(4 * (2 * SLOTS + 2));
      const results = new SharedArrayBuffer(8 * 2 * SLOTS);
      const error = new SharedArrayBuffer(1024);
      this.slots = Array.from({ length: SLOTS }, (_, i) => sharedNative(data, i * MAX_CHUNK_RAW, MAX_CHUNK_RAW));
      this.ctl = new Int32Array(ctl);
      this.results = new Float64Array(results);
      this.error = Buffer.from(error);
      startHelperJob({
        kind: 'write-pages',
        data: {
          fd: writer.fd, slots: SLOTS, slotSize: MAX_CHUNK_RAW, data, ctl, error,
          codec, results, start: writer.offset,
        },
      });
    } else {
      this.inline = compressor(codec);
      this.own = allocNative(Math.max(PAGE_SIZE, Math.min(MAX_CHUNK_RAW, Math.ceil(totalBytes / PAGE_SIZE) * PAGE_SIZE)));
      this.slots = [this.own];
    }
  }

  /** Copy the runs of one VMA; returns its offset in the page stream and the CRC of its data (`shared`: as PagePump.copy). */
  copy(pid: number, mem: TraceeMemory, runs: Run[], prot: number, shared = false): Copied {
    const offset = this.rawStart + this.fill;
    let crc = 0;
    let batch: [number, number][] = [];
    let from = this.fill;
    const read = () => {
      if (batch.length === 0) return;
      checkAbort();
      const buf = this.slots[this.cur];
      const want = this.fill - from;
      const got = (prot & PROT.READ) && !shared ? processVmIo(false, pid, buf, from, batch) : 0;
      if (got !== want) readForced(mem, buf, from, batch, got);
      crc = crc32(buf.buf.subarray(from, this.fill), crc);
      this.copied += want;
      this.onCopied?.(this.copied);
      batch = [];
    };
    for (const [addr, pages] of runs) {
      let a = addr;
      let left = pages * PAGE_SIZE;
      while (left > 0) {
        if (this.fill === this.slotSize) {
          read();
          this.emit();
          from = 0;
        }
        const take = Math.min(left, this.slotSize - this.fill);
        batch.push([a, take]);
        this.fill += take;
        a += take;
        left -= take;
      }
    }
    read();
    return { offset, crc: () => crc };
  }

  /** Hand over the last chunk, wait until every chunk is written; the chunk table. */
  finish(): Chunk[] {
    if (this.fill > 0) this.emit();
    if (this.ctl) {
      for (let i = 0; i < SLOTS; i++) waitWritten(this.ctl, SLOTS, i);
      this.checkWriter();
      for (let i = 0; i < SLOTS; i++) this.collect(i);
    }
    return this.chunks;
  }

  /** Stop the writer: after a failure too, it writes nothing more once this returns. */
  close(): void {
    if (this.ctl) {
      for (let i = 0; i < SLOTS; i++) waitWritten(this.ctl, SLOTS, i);
      const slot = this.cur;
      Atomics.store(this.ctl, 2 * slot, 2);
      Atomics.notify(this.ctl, 2 * slot);
    }
    if (this.own) freeNative(this.own);
  }

  /** The current slot is one chunk: compress and write it (or have the worker do it), then take the next slot. */
  private emit(): void {
    const len = this.fill;
    const chunk: Chunk = { raw_offset: this.rawStart, raw_len: len, file_offset: 0, packed_len: 0 };
    this.chunks.push(chunk);
    this.rawStart += len;
    this.fill = 0;
    if (!this.ctl) {
      const packed = this.inline!.compress(this.slots[0].buf.subarray(0, len));
      const padded = Buffer.alloc(Math.ceil(packed.length / PAGE_SIZE) * PAGE_SIZE);
      packed.copy(padded);
      chunk.file_offset = this.writer.append(padded, padded.length);
      chunk.packed_len = packed.length;
      return;
    }
    const slot = this.cur;
    this.inSlot[slot] = this.chunks.length - 1;
    this.ctl[2 * slot + 1] = len;
    Atomics.store(this.ctl, 2 * slot, 1);
    Atomics.notify(this.ctl, 2 * slot);
    this.cur = (slot + 1) % SLOTS;
    waitWritten(this.ctl, SLOTS, this.cur);
    this.checkWriter();
    this.collect(this.cur);
  }

  /** Where the worker wrote the chunk a free slot held. */
  private collect(slot: number): void {
    const i = this.inSlot[slot];
    if (i < 0) return;
    this.chunks[i].file_offset = this.results![2 * slot];
    this.chunks[i].packed_len = this.results![2 * slot + 1];
    this.inSlot[slot] = -1;
  }

  private checkWriter(): void {
    if (this.ctl && Atomics.load(this.ctl, 2 * SLOTS) === 1) {
      const msg = this.error!.toString('utf8').replace(/\0+$/, '');
      throw new CkptError('SYSCALL', `writing ${this.writer.path} failed: ${msg}`, { path: this.writer.path, syscall: 'write' });
    }
  }
}

/** Pages process_vm_readv cannot read (no PROT_READ): /proc/PID/mem can. `at` is where the batch starts in buf. */
function readForced(mem: TraceeMemory, buf: NativeMemory, at: number, batch: [number, number][], skip: number): void {
  let done = 0;
  for (const [addr, len] of batch) {
    const from = Math.max(0, skip - done);
    if (from < len) mem.read(addr + from, len - from, buf.buf, at + done + from);
    done += len;
  }
}
