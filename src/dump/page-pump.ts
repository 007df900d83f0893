/**
 * Copies the saved pages out of a process into pages.img, at any size, with
 * both cores: this (tracer) thread reads a batch of 512 KiB with
 * process_vm_readv into a part of a ring of four, queues its write on glibc's
 * AIO thread, and takes its CRC while that thread writes the batches before
 * it. The copy is two copies of each page but runs on two cores, as fast as
 * the AIO thread writes (interleaved CLI dumps to tmpfs, against the helper
 * thread and the process's own vmsplice this replaced: 64 MiB 208 -> 175 ms,
 * 256 MiB 427 -> 328 ms, 1 GiB 1102 -> 826 ms). JavaScript never touches
 * pages one by one.
 */
import { crc32 } from '../sys/crc32.js';
import { checkAbort } from '../fault.js';
import { CkptError } from '../errors.js';
import type { PagesWriter } from '../image/index.js';
import { BACKGROUND_SLOTS, mapNative, unmapNative, writeInBackground, type BackgroundWrite, type NativeMemory } from '../sys/libc.js';
import { processVmIo } from '../sys/syscalls.js';
import { PAGE_SIZE, PROT } from '../sys/constants.js';
import type { TraceeMemory } from '../ptrace/memory.js';
import type { Run } from '../kinds/pages.js';

const MIB = 1024 * 1024;

/** Where a VMA's pages went in pages.img, and the CRC of their data (to be asked once the pump's finish() returned). */
export interface Copied { offset: number; crc(): number }
/**
 * A batch. The ring of BACKGROUND_SLOTS of them is the pump's buffer (2 MiB):
 * a CLI dump's buffer is fresh memory, whose page faults a larger ring would
 * pay for (the 16 MiB of a sparse dump copied no faster through 8 MiB).
 */
const PART_SIZE = 512 * 1024;

/**
 * The buffer (huge pages where the kernel gives them), kept for the next dump
 * of this thread: fresh memory costs its page faults every time.
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
  private own?: NativeMemory;
  /**
   * Batches of `chunk` bytes go round a ring of `chunks` parts of the buffer.
   * The writes of those before are queued meanwhile (`writing`, oldest first):
   * a write that waits (a tmpfs write allocates and zeroes each page under the
   * file's lock) holds up neither the reads nor the CRC until the ring comes
   * round to its part.
   */
  private chunk: number;
  private chunks: number;
  private part = 0;
  private writing: { write: BackgroundWrite; part: number; from: number; len: number; at: number }[] = [];
  private copied = 0;
  /** A write that failed. */
  private failed?: { error: unknown };

  /** `totalBytes`: what the process has resident, which sizes the buffer. */
  constructor(private writer: PagesWriter, totalBytes: number, private onCopied?: (bytes: number) => void) {
    // Fresh memory costs its page faults: no bigger than the dump needs, in whole MiB
    // so that the next dump of about the same size takes the spare.
    this.own = takeBuffer(Math.min(BACKGROUND_SLOTS * PART_SIZE, Math.ceil(Math.max(1, totalBytes) / MIB) * MIB));
    this.chunk = Math.min(PART_SIZE, this.own.size);
    this.chunks = Math.min(BACKGROUND_SLOTS, Math.floor(this.own.size / this.chunk));
  }

  /**
   * Copy the runs of one VMA; returns its offset in pages.img and (after
   * finish()) the CRC of its data. Pages another process maps too (`shared`: a
   * snapshot's, which the running process shares copy-on-write; a fork's
   * copy-on-write; KSM's) are read through /proc/PID/mem: process_vm_readv
   * pins each page it reads, and pinning a shared anonymous page makes the
   * kernel unshare it first, a copy of the page in the process read. That is
   * memory the tree did not use before (a process that runs on keeps it), and
   * slow: 64 MiB shared with a child, 35 ms against 14 for pread here
   * (process_vm_readv is the faster of the two on pages of one process only).
   */
  copy(pid: number, mem: TraceeMemory, runs: Run[], prot: number, shared = false): Copied {
    const buf = this.own;
    if (!buf) throw new CkptError('INTERNAL', 'a page copy after the pump was closed');
    const offset = this.writer.offset;
    let crc = 0;
    let batch: [number, number][] = [];
    let filled = 0;
    const flush = () => {
      if (filled === 0) return;
      checkAbort();
      // The ring's next part, once its last write is done.
      this.settle(this.part);
      const base = this.part * this.chunk;
      const got = (prot & PROT.READ) && !shared ? processVmIo(false, pid, buf, base, batch) : 0;
      if (got !== filled) readForced(mem, buf, base, batch, got);
      // Written on glibc's AIO thread, in the order queued, while this thread takes
      // the CRC of the same bytes and reads the next batches into the ring's next parts.
      const pos = this.writer.reserve(filled);
      const write = this.chunks > 1 ? writeInBackground(this.writer.fd, buf, base, filled, pos, this.part) : undefined;
      if (write) this.writing.push({ write, part: this.part, from: base, len: filled, at: pos });
      else this.write(buf.buf, base, filled, pos);
      crc = crc32(buf.buf.subarray(base, base + filled), crc);
      this.part = (this.part + 1) % this.chunks;
      this.copied += filled;
      this.onCopied?.(this.copied);
      batch = [];
      filled = 0;
    };
    for (const [addr, pages] of runs) {
      let a = addr;
      let left = pages * PAGE_SIZE;
      while (left > 0) {
        const take = Math.min(left, this.chunk - filled);
        batch.push([a, take]);
        filled += take;
        a += take;
        left -= take;
        if (filled === this.chunk) flush();
      }
    }
    flush();
    return { offset, crc: () => crc };
  }

  /** Wait until every page is written; throws what a write hit (ENOSPC, EIO...). */
  finish(): void {
    if (this.failed) throw this.failed.error;
    this.settle();
  }

  /**
   * Wait for the queued writes, oldest first: all of them, or up to the last
   * one from ring part `part`. What one did not write (none of it, on an
   * error) is written here, and an error thrown as from write(2).
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

  /** A write in place; a failure stays, and finish() throws it again. */
  private write(buf: Buffer, from: number, len: number, at: number): void {
    try {
      this.writer.writeAt(buf, from, len, at);
    } catch (e) {
      this.failed ??= { error: e };
      throw e;
    }
  }

  /** Stop: after a failure too, nothing more is written once this returns. */
  close(): void {
    // The buffer is reused: no write of it may still be running.
    for (const w of this.writing.splice(0)) w.write.wait();
    if (this.own) giveBack(this.own);
    this.own = undefined;
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
