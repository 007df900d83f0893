/**
 * The page CRC (sys/crc32.ts): its folding with PCLMULQDQ must give zlib's
 * CRC-32 for every length, start value and alignment, and on a CPU that has
 * the instruction (this machine class does) it must be the one in use.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import fs, { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { crc32, crc32At, crc32Folds, crc32OfFile } from '../src/sys/crc32.js';
import { mapFile } from '../src/sys/libc.js';

test('large buffers are folded with PCLMULQDQ where the CPU has it', (t) => {
  const cpuHasIt = /^flags\s*:.*\bpclmulqdq\b/m.test(cpuinfo());
  if (!cpuHasIt) t.skip('this CPU has no PCLMULQDQ: zlib does every CRC');
  assert.equal(crc32Folds(), cpuHasIt);
});

test('crc32 equals zlib.crc32 for every length, start value and alignment', () => {
  const data = crypto.randomBytes(1 << 20);
  const lengths = [0, 1, 63, 64, 65, 127, 128, 1023, 1024, 1025, 4095, 4096, 4097, 65536 + 17, 1 << 19];
  for (const len of lengths) {
    for (const offset of [0, 1, 7, 16, 4096 - 3]) {
      const b = data.subarray(offset, offset + len);
      for (const start of [0, 1, 0xffffffff, 0x12345678, zlib.crc32(data.subarray(0, 100))]) {
        assert.equal(crc32(b, start), zlib.crc32(b, start), `len ${len} offset ${offset} start ${start.toString(16)}`);
      }
    }
  }
});

test('crc32 of memory shared between threads and of all-zero and all-one pages', () => {
  const shared = new Uint8Array(new SharedArrayBuffer(3 << 16));
  shared.set(crypto.randomBytes(shared.length));
  assert.equal(crc32(shared), zlib.crc32(shared));
  for (const fill of [0, 0xff]) {
    const page = Buffer.alloc(1 << 16, fill);
    assert.equal(crc32(page), zlib.crc32(page));
  }
  // Chained over pieces as a dump does (each slot continues the last one's CRC).
  const whole = crypto.randomBytes(5 * 4096 + 100);
  let c = 0;
  for (let at = 0; at < whole.length; at += 4096) c = crc32(whole.subarray(at, at + 4096), c);
  assert.equal(c, zlib.crc32(whole));
});

test('crc32OfFile reads a file through mappings, folded at their address', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-crc-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'pages');
  const data = crypto.randomBytes(3 * 1024 * 1024 + 3 * 4096);
  fs.writeFileSync(file, data);
  const fd = fs.openSync(file, 'r');
  t.after(() => fs.closeSync(fd));
  // Whole, from a page offset, in windows smaller than the range, and continuing a CRC so far.
  assert.equal(crc32OfFile(fd, 0, data.length), zlib.crc32(data));
  assert.equal(crc32OfFile(fd, 8192, 1 << 20), zlib.crc32(data.subarray(8192, 8192 + (1 << 20))));
  assert.equal(crc32OfFile(fd, 4096, data.length - 4096, 0, 1 << 20), zlib.crc32(data.subarray(4096)));
  const head = zlib.crc32(data.subarray(0, 4096));
  assert.equal(crc32OfFile(fd, 4096, 2 * 4096, head), zlib.crc32(data.subarray(0, 3 * 4096)));
  // A length the folding does not take whole still gets zlib's value.
  assert.equal(crc32OfFile(fd, 0, 100), zlib.crc32(data.subarray(0, 100)));
  assert.throws(() => crc32OfFile(-1, 0, 4096), /mmap/);
});

test('mapFile maps for one sequential read: no page it maps is marked accessed when it is unmapped', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-crc-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'pages');
  fs.writeFileSync(file, crypto.randomBytes(64 * 1024));
  const fd = fs.openSync(file, 'r');
  t.after(() => fs.closeSync(fd));
  const m = mapFile(fd, 0, 64 * 1024);
  try {
    // MADV_SEQUENTIAL: VmFlags "sr". Unmapping a VM_SEQ_READ mapping skips folio_mark_accessed,
    // which took the LRU lock every write of a new page needs (a 1 GiB image's CRC windows).
    const start = m.addr.toString(16);
    const smaps = readFileSync('/proc/self/smaps', 'utf8');
    const at = smaps.indexOf(`${start}-`);
    assert.ok(at >= 0, `mapping at 0x${start} not in /proc/self/smaps`);
    const flags = /^VmFlags:(.*)$/m.exec(smaps.slice(at))?.[1].trim().split(/\s+/) ?? [];
    assert.ok(flags.includes('sr'), `VmFlags of the mapping: ${flags.join(' ')}`);
  } finally {
    m.unmap();
  }
});

test('crc32At folds only what it can do whole', () => {
  // No mapping needed for the refusals: they come before any memory is read.
  assert.equal(crc32At(0n, 100), undefined, 'under 1 KiB');
  assert.equal(crc32At(0n, 4096 + 8), undefined, 'not a multiple of 64');
});

function cpuinfo(): string {
  return readFileSync('/proc/cpuinfo', 'latin1');
}
