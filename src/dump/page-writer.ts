/**
 * The second stage of a compressed dump's page copy (dump/compress-pump.ts),
 * on a helper thread (src/helper-thread.ts) on the second core: compresses
 * each filled slot of the shared buffer into one chunk, appends it at its own
 * file position (from `start`, padded to 4096 bytes), puts [file offset,
 * packed length] in results[2i, 2i+1], then frees the slot, until it finds a
 * stop.
 * Protocol (Int32Array `ctl` over a SharedArrayBuffer):
 *   ctl[2i] = slot i state: 0 free, 1 full, 2 stop;  ctl[2i+1] = bytes in slot i
 *   ctl[STATUS] = 0 running, 1 failed (the message, utf-8, in `error`)
 *   ctl[DONE] = slots written so far
 * Slot i's bytes are in buffer i % B of `data` (B buffers of slotSize).
 */
import fs from 'node:fs';
import { compressor } from '../kinds/page-chunks.js';

export interface PageWriterJob {
  fd: number; slots: number; slotSize: number; data: SharedArrayBuffer; ctl: SharedArrayBuffer; error: SharedArrayBuffer;
  codec: number; results: SharedArrayBuffer; start: number;
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

/** Runs until the producer puts a stop in the next slot, or a write fails (then every slot is freed). */
export function writePages(d: PageWriterJob): void {
  const ctl = new Int32Array(d.ctl);
  const STATUS = 2 * d.slots;
  const DONE = STATUS + 1;
  let slot = 0;
  const buffers = d.data.byteLength / d.slotSize;
  try {
    const squeeze = compressor(d.codec);
    const results = new Float64Array(d.results);
    const zeros = new Uint8Array(4096);
    let pos = d.start;
    for (;;) {
      Atomics.wait(ctl, 2 * slot, 0);
      const state = Atomics.load(ctl, 2 * slot);
      if (state === 2) break;
      const len = ctl[2 * slot + 1];
      const view = new Uint8Array(d.data, (slot % buffers) * d.slotSize, len);
      const packed = squeeze.compress(view);
      writeAt(d.fd, packed, packed.length, pos);
      const pad = (4096 - (packed.length % 4096)) % 4096;
      if (pad) writeAt(d.fd, zeros, pad, pos + packed.length);
      results[2 * slot] = pos;
      results[2 * slot + 1] = packed.length;
      pos += packed.length + pad;
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
