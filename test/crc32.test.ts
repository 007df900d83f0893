/**
 * The page CRC (sys/crc32.ts): its folding with PCLMULQDQ must give zlib's
 * CRC-32 for every length, start value and alignment, and on a CPU that has
 * the instruction (this machine class does) it must be the one in use.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { crc32, crc32Folds } from '../src/sys/crc32.js';

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

function cpuinfo(): string {
  return readFileSync('/proc/cpuinfo', 'latin1');
}
