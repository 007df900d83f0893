/**
 * The page copy (dump/page-pump.ts): batches go round a ring of buffer parts
 * whose writes are queued on glibc's AIO thread. Copied from
 * this process's own memory (process_vm_readv of itself) into a pages.img on
 * tmpfs, each copy must land whole at its offset with its CRC, after the ring
 * went round several times, and a second pump that takes the first one's
 * buffer must not write what the first left in it.
 */
import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import zlib from 'node:zlib';
import { test } from 'node:test';
import { PagePump, type Copied } from '../src/dump/page-pump.js';
import { PagesWriter } from '../src/image/index.js';
import { TraceeMemory } from '../src/ptrace/memory.js';
import { mapNative, unmapNative } from '../src/sys/libc.js';
import { PAGE_SIZE, PROT } from '../src/sys/constants.js';
import type { Run } from '../src/kinds/pages.js';

const MIB = 1024 * 1024;

/** Copy `copies` (each a list of runs of this process's memory) through one pump; returns pages.img and each copy's place. */
function pump(dir: string, copies: Run[][]): { image: Buffer; copied: Copied[] } {
  const bytes = copies.flat().reduce((n, [, pages]) => n + pages * PAGE_SIZE, 0);
  mkdirSync(dir);
  const writer = PagesWriter.create(dir);
  const mem = new TraceeMemory(process.pid);
  const p = new PagePump(writer, bytes);
  try {
    const copied = copies.map((runs) => p.copy(process.pid, mem, runs, PROT.READ | PROT.WRITE));
    p.finish();
    return { image: readFileSync(writer.path), copied };
  } finally {
    p.close();
    writer.close();
    mem.close();
  }
}

/** The bytes of `runs` in `src`, in order. */
function bytesOf(src: ReturnType<typeof mapNative>, runs: Run[]): Buffer {
  const base = Number(src.addr);
  return Buffer.concat(runs.map(([addr, pages]) => src.buf.subarray(addr - base, addr - base + pages * PAGE_SIZE)));
}

function assertLanded(src: ReturnType<typeof mapNative>, copies: Run[][], r: { image: Buffer; copied: Copied[] }): void {
  copies.forEach((runs, i) => {
    const want = bytesOf(src, runs);
    const got = r.image.subarray(r.copied[i].offset, r.copied[i].offset + want.length);
    assert.ok(got.equals(want), `copy ${i} (${want.length} bytes at ${r.copied[i].offset}) differs in pages.img`);
    assert.equal(r.copied[i].crc(), zlib.crc32(want), `copy ${i}: CRC`);
  });
  const total = copies.flat().reduce((n, [, pages]) => n + pages * PAGE_SIZE, 0);
  assert.equal(r.image.length, 4096 + total, 'pages.img is its header and the pages copied, no more');
}

test('copies of one page to 5 MiB land at their offsets with their CRCs, the ring going round', () => {
  const dir = mkdtempSync(join('/dev/shm', 'ckpt-pump-'));
  const src = mapNative(8 * MIB);
  try {
    randomFillSync(src.buf);
    const at = (mib: number) => Number(src.addr) + Math.round(mib * MIB);
    const copies: Run[][] = [
      [[at(0), 3]],
      // Several runs with gaps, across part boundaries (a part is 512 KiB).
      [[at(0.25), 100], [at(1), 200], [at(1.75), 1]],
      [[at(2), (5 * MIB) / PAGE_SIZE]],
      [[at(7.5), 1]],
      [[at(7.75), 64]],
    ];
    const first = pump(join(dir, 'a'), copies);
    assertLanded(src, copies, first);
    // The next pump takes the spare buffer, which still holds the last batches.
    randomFillSync(src.buf);
    const second = pump(join(dir, 'b'), copies.slice().reverse());
    assertLanded(src, copies.slice().reverse(), second);
  } finally {
    unmapNative(src);
    rmSync(dir, { recursive: true, force: true });
  }
});
