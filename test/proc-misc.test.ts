import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  parseAuxv, parseLimits, parseChildren, RLIM_INFINITY, AT_PAGESZ, AT_SYSINFO_EHDR, AT_NULL,
} from '../src/proc/index.js';

const FIXTURES = new URL('../../test/fixtures/proc/', import.meta.url);
const fixture = (name: string): Buffer => readFileSync(new URL(name, FIXTURES));

test('auxv: captured from cat', () => {
  const auxv = parseAuxv(fixture('auxv-cat.bin'));
  assert.equal(auxv.length, 22);
  assert.deepEqual(auxv[0], [AT_SYSINFO_EHDR, 0x7f99d8ab2000n]);
  assert.deepEqual(auxv[1], [51n, 0xd30n]);
  assert.deepEqual(auxv.find(([t]) => t === AT_PAGESZ), [AT_PAGESZ, 4096n]);
  assert.deepEqual(auxv.find(([t]) => t === 9n), [9n, 0x560362eb9130n], 'AT_ENTRY');
  assert.ok(!auxv.some(([t]) => t === AT_NULL));
});

test('auxv: stops at AT_NULL; no AT_NULL or a short buffer throws', () => {
  const b = Buffer.alloc(48);
  b.writeBigUInt64LE(6n, 0);
  b.writeBigUInt64LE(4096n, 8);
  b.writeBigUInt64LE(99n, 32); // after AT_NULL: ignored
  assert.deepEqual(parseAuxv(b), [[6n, 4096n]]);
  assert.throws(() => parseAuxv(b.subarray(0, 16)), { code: 'INTERNAL' });
  assert.throws(() => parseAuxv(Buffer.alloc(8)), { code: 'INTERNAL' });
});

test('limits: every RLIMIT in order, unlimited is RLIM_INFINITY', () => {
  const U = RLIM_INFINITY;
  const want: Array<[name: string, soft: bigint, hard: bigint]> = [
    ['Max cpu time', U, U], ['Max file size', U, U], ['Max data size', U, U],
    ['Max stack size', 8388608n, U], ['Max core file size', 0n, U], ['Max resident set', U, U],
    ['Max processes', 96364n, 96364n], ['Max open files', 20000n, 20000n],
    ['Max locked memory', 8388608n, 8388608n], ['Max address space', U, U], ['Max file locks', U, U],
    ['Max pending signals', 96364n, 96364n], ['Max msgqueue size', 819200n, 819200n],
    ['Max nice priority', 0n, 0n], ['Max realtime priority', 0n, 0n], ['Max realtime timeout', U, U],
  ];
  const limits = parseLimits(fixture('limits-cat.txt').toString());
  assert.deepEqual(limits, want.map(([name, soft, hard], resource) => ({ name, resource, soft, hard })));
  assert.equal(RLIM_INFINITY, 18446744073709551615n);
  assert.equal(parseLimits(fixture('limits-python.txt').toString()).length, 16);
});

test('limits: an unknown name or value throws', () => {
  assert.throws(() => parseLimits('Max widgets   1   1   widgets\n'), { code: 'INTERNAL' });
  assert.throws(() => parseLimits('Max open files   lots   1   files\n'), { code: 'INTERNAL' });
});

test('children: space-separated pids', () => {
  const cases: Array<[string, number[]]> = [['', []], ['3359 ', [3359]], ['12 7 40000 ', [12, 7, 40000]]];
  for (const [text, want] of cases) assert.deepEqual(parseChildren(text), want, JSON.stringify(text));
});
