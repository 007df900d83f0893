/**
 * The second stage of the page pump, on a helper thread (src/helper-thread.ts)
 * on the second core: writes each filled slot of the shared buffer to
 * pages.img at its offset, then frees the slot, until it finds a stop.
 * Protocol (Int32Array `ctl` over a SharedArrayBuffer):
 *   ctl[2i] = slot i state: 0 free, 1 full, 2 stop;  ctl[2i+1] = bytes in slot i
 *   ctl[STATUS] = 0 running, 1 failed (the message, utf-8, in `error`)
 *   ctl[DONE] = slots written so far
 * offsets: Float64Array, file offset of slot i. Slot i's bytes, when it has
 * any, are in buffer i % B of `data` (B buffers of slotSize: fewer than the
 * slots, as a spliced slot has none).
 * With `crc` (no codec), the writer also computes the CRC of each copy (a
 * VMA's pages, one or more slots): slotCopy[3i] = the copy slot i belongs to,
 * slotCopy[3i+1] = 1 if it is that copy's first slot, slotCopy[3i+2] = 1 if
 * its bytes were spliced into the file already (dump/page-splice.ts): then the
 * writer maps them from there for the CRC instead of writing them. The
 * running CRC goes to crcs[copy % ring] after each slot (final once the copy's
 * last slot is written: page-pump.ts collects it).
 * With `codec` (dump --compress), the worker compresses each slot into one
 * chunk and appends it at its own file position (from `start`, padded to
 * 4096 bytes), then puts [file offset, packed length] in results[2i, 2i+1].
 */
import fs from 'node:fs';
import { crc32, crc32OfFile } from '../sys/crc32.js';
import { compressor } from '../kinds/page-chunks.js';

export interface PageWriterJob {
  fd: number; slots: number; slotSize: number; data: SharedArrayBuffer; ctl: SharedArrayBuffer; offsets: SharedArrayBuffer; error: SharedArrayBuffer;
  codec?: number; results?: SharedArrayBuffer; start?: number;
  crc?: { slotCopy: SharedArrayBuffer; crcs: SharedArrayBuffer; ring: number };
}

/**
 * The producer's wait until slot `i` is no longer full, or the writer failed.
 * A failing writer sets the status, frees every slot and stops: a slot handed
 * over after that is never freed, and waiting for it would hang the engine
 * (ENOSPC). Looks again every 100 ms, so that a missed wake-up costs no more.
 */
export function waitWritten(ctl: Int32Array, slots: number, i: number): void {
  while (Atomics.load(ctl, 2 * i) === 1 && Atomics.load(ctl, 2 * slots) !== 1) Atomics.wait(ctl, 2 * i, 1, 100);
}

function writeAt(fd: number, buf: Uint8Array, len: number, at: number): void {
  let done = 0;
  while (done < len) done += fs.writeSync(fd, buf, done, len - done, at + done);
}

/**
 * The CRC of the file's bytes [at, at + len) after `crc`: folded straight
 * from a mapping of them (no copy, and no JavaScript view: V8 counts each as
 * external memory, and 1 GiB of them made this thread collect garbage), or
 * read into `view` where the file cannot be mapped.
 */
function crcInFile(fd: number, view: Uint8Array, len: number, at: number, crc: number): number {
  try {
    return crc32OfFile(fd, at, len, crc, len);
  } catch {
    let done = 0;
    while (done < len) {
      const n = fs.readSync(fd, view, done, len - done, at + done);
      if (n === 0) throw new Error(`EIO: pages.img is ${len - done} bytes short at ${at + done}, read`);
      done += n;
    }
    return crc32(view.subarray(0, len), crc);
  }
}

/** Runs until the producer puts a stop in the next slot, or a write fails (then every slot is freed). */
export function writePages(d: PageWriterJob): void {
  const ctl = new Int32Array(d.ctl);
  const offsets = new Float64Array(d.offsets);
  const STATUS = 2 * d.slots;
  const DONE = STATUS + 1;
  const slotCopy = d.crc && new Int32Array(d.crc.slotCopy);
  const crcs = d.crc && new Int32Array(d.crc.crcs);
  let crc = 0;
  let slot = 0;
  const buffers = d.data.byteLength / d.slotSize;
  try {
    const squeeze = d.codec ? compressor(d.codec) : undefined;
    const results = d.results ? new Float64Array(d.results) : undefined;
    const zeros = new Uint8Array(4096);
    let pos = d.start ?? 0;
    for (;;) {
      Atomics.wait(ctl, 2 * slot, 0);
      const state = Atomics.load(ctl, 2 * slot);
      if (state === 2) break;
      const len = ctl[2 * slot + 1];
      // Slot i's bytes (if any) are in buffer i % buffers (page-pump.ts).
      const view = new Uint8Array(d.data, (slot % buffers) * d.slotSize, len);
      if (squeeze && results) {
        const packed = squeeze.compress(view);
        writeAt(d.fd, packed, packed.length, pos);
        const pad = (4096 - (packed.length % 4096)) % 4096;
        if (pad) writeAt(d.fd, zeros, pad, pos + packed.length);
        results[2 * slot] = pos;
        results[2 * slot + 1] = packed.length;
        pos += packed.length + pad;
      } else {
        const inFile = slotCopy !== undefined && slotCopy[3 * slot + 2] === 1;
        if (slotCopy && crcs) {
          // Spliced bytes are read where they landed.
          const from = slotCopy[3 * slot + 1] ? 0 : crc;
          crc = inFile ? crcInFile(d.fd, view, len, offsets[slot], from) : crc32(view, from);
          crcs[slotCopy[3 * slot] % d.crc!.ring] = crc | 0;
        }
        if (!inFile) writeAt(d.fd, view, len, offsets[slot]);
      }
      Atomics.add(ctl, DONE, 1);
      Atomics.store(ctl, 2 * slot, 0);
      Atomics.notify(ctl, 2 * slot);
      slot = (slot + 1) % d.slots;
    }
  } catch (e) {
    // Node's message already starts with the errno name ("ENOSPC: no space left on device, write").
    const msg = Buffer.from((e instanceof Error ? e.message : String(e)).slice(0, 1000));
    msg.copy(Buffer.from(d.error), 0);
    Atomics.store(ctl, STATUS, 1);
    // Free every slot so that the producer never waits forever.
    for (let i = 0; i < d.slots; i++) { Atomics.store(ctl, 2 * i, 0); Atomics.notify(ctl, 2 * i); }
  }
}
