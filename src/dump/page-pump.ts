/**
 * Copies the saved pages out of a frozen process into pages.img.
 *
 * Small dumps: one native buffer, process_vm_readv then write, inline.
 * Large dumps use both cores: this (tracer) thread reads pages with
 * process_vm_readv into slots of a shared buffer and computes their CRC,
 * while a helper thread (src/helper-thread.ts) writes filled slots to
 * pages.img at their offsets.
 * JavaScript never touches pages one by one; each slot is 8 MiB.
 */
import zlib from 'node:zlib';
import { checkAbort } from '../fault.js';
import { startHelperJob } from '../helper-thread.js';
import { waitWritten } from './page-writer.js';
import { CkptError } from '../errors.js';
import type { PagesWriter } from '../image/index.js';
import { allocNative, freeNative, sharedNative, type NativeMemory } from '../sys/libc.js';
import { processVmIo } from '../sys/syscalls.js';
import { PAGE_SIZE, PROT } from '../sys/constants.js';
import type { TraceeMemory } from '../ptrace/memory.js';
import type { Run } from '../kinds/pages.js';

export const SLOT_SIZE = 8 * 1024 * 1024;
const SLOTS = 4;
/** Below this many bytes a worker's start-up costs more than it saves. */
export const PIPELINE_MIN_BYTES = 48 * 1024 * 1024;

export class PagePump {
  private slots: NativeMemory[];
  private ctl?: Int32Array;
  private offsets?: Float64Array;
  private error?: Buffer;
  private next = 0;
  private own?: NativeMemory;
  private get slotSize(): number { return this.slots[0].size; }

  private copied = 0;

  constructor(private writer: PagesWriter, totalBytes: number, private onCopied?: (bytes: number) => void) {
    if (totalBytes >= PIPELINE_MIN_BYTES) {
      const data = new SharedArrayBuffer(SLOTS * SLOT_SIZE);
      const ctl = new SharedArrayBuffer(4 * (2 * SLOTS + 1));
      const offsets = new SharedArrayBuffer(8 * SLOTS);
      const error = new SharedArrayBuffer(1024);
      this.slots = Array.from({ length: SLOTS }, (_, i) => sharedNative(data, i * SLOT_SIZE, SLOT_SIZE));
      this.ctl = new Int32Array(ctl);
      this.offsets = new Float64Array(offsets);
      this.error = Buffer.from(error);
      startHelperJob({ kind: 'write-pages', data: { fd: writer.fd, slots: SLOTS, slotSize: SLOT_SIZE, data, ctl, offsets, error } });
    } else {
      // Fresh memory costs its page faults: no bigger than the dump needs.
      this.own = allocNative(Math.max(4096, Math.min(SLOT_SIZE, totalBytes)));
      this.slots = [this.own];
    }
  }

  /** Copy the runs of one VMA; returns its offset in pages.img and the CRC of its data. */
  copy(pid: number, mem: TraceeMemory, runs: Run[], prot: number): { offset: number; crc: number } {
    const offset = this.writer.offset;
    let crc = 0;
    let batch: [number, number][] = [];
    let filled = 0;
    const flush = () => {
      if (filled === 0) return;
      checkAbort();
      const slot = this.takeSlot();
      const buf = this.slots[slot];
      const got = (prot & PROT.READ) ? processVmIo(false, pid, buf, 0, batch) : 0;
      if (got !== filled) readForced(mem, buf, batch, got);
      crc = zlib.crc32(buf.buf.subarray(0, filled), crc);
      this.emit(slot, filled);
      this.copied += filled;
      this.onCopied?.(this.copied);
      batch = [];
      filled = 0;
    };
    for (const [addr, pages] of runs) {
      let a = addr;
      let left = pages * PAGE_SIZE;
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
    return { offset, crc };
  }

  /** Wait until every slot is written; throws what the writer hit (ENOSPC, EIO...). */
  finish(): void {
    if (!this.ctl) return;
    for (let i = 0; i < SLOTS; i++) waitWritten(this.ctl, SLOTS, i);
    this.checkWriter();
  }

  /** Stop the writer: after a failure too, it writes nothing more once this returns. */
  close(): void {
    if (this.ctl) {
      for (let i = 0; i < SLOTS; i++) waitWritten(this.ctl, SLOTS, i);
      const slot = this.next;
      Atomics.store(this.ctl, 2 * slot, 2);
      Atomics.notify(this.ctl, 2 * slot);
    }
    if (this.own) freeNative(this.own);
  }

  private takeSlot(): number {
    if (!this.ctl) return 0;
    const slot = this.next;
    waitWritten(this.ctl, SLOTS, slot);
    this.checkWriter();
    return slot;
  }

  private emit(slot: number, len: number): void {
    if (!this.ctl || !this.offsets) {
      this.writer.append(this.slots[0].buf, len);
      return;
    }
    this.offsets[slot] = this.writer.reserve(len);
    this.ctl[2 * slot + 1] = len;
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

/** Pages process_vm_readv cannot read (no PROT_READ): /proc/PID/mem can. */
function readForced(mem: TraceeMemory, buf: NativeMemory, batch: [number, number][], skip: number): void {
  let at = 0;
  for (const [addr, len] of batch) {
    const from = Math.max(0, skip - at);
    if (from < len) mem.read(addr + from, len - from, buf.buf, at + from);
    at += len;
  }
}
