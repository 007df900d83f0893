/**
 * Hostile images the fuzzer's hand-written cases found ckpt does not bound yet (reported,
 * not fixed): each builder gives the smallest input that shows the problem at a chosen size.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { Content, encodePagesHeader, encodeRecord, parseImage, resealRecord } from '../../src/image/index.js';
import { registry } from '../../src/kinds/index.js';
import { PROCESS } from '../../src/kinds/process.js';
import { VMA } from '../../src/kinds/vma.js';
import { PAGE_RUNS, encodeRuns } from '../../src/kinds/pages.js';
import { PAGE, buildImage, rec, wrapImage, type Input } from './fuzz-synth.js';

/**
 * A valid ckpt.img of n minimal (24-byte, unknown type) records: parseImage keeps an object,
 * a view and a children array per record, about 10x the file in heap (256 MiB, the most
 * readImage takes, is ~11M records: ~2.7 GB of heap and ~40 s).
 */
export function tinyRecordsImage(n: number): Buffer {
  const one = encodeRecord(0x0999, Content.VOID, Buffer.alloc(0), Buffer.alloc(0));
  const body = Buffer.alloc(one.length * n);
  for (let i = 0; i < n; i++) one.copy(body, i * one.length);
  const img = wrapImage([body]);
  // wrapImage counted one record: the END count is n + 1
  img.writeUInt32LE(n + 1, img.length - 8);
  resealRecord(img, img.length - 32);
  return img;
}

/**
 * One valid process whose n VMAs (disjoint in memory) all take their page data from the
 * same `pages` pages of pages.img: the pages.img checks CRC n x pages x 4096 bytes, and a
 * restore would write as much into the process, from a pages.img of `pages` pages.
 */
export function sharedPagesImage(n: number, pages: number): Input & { img: Buffer; pages: Buffer } {
  const base = buildImage([{ pid: 4242, vmas: [] }]);
  const proc = parseImage(base.img, registry).records[0];
  const data = Buffer.alloc(pages * PAGE, 0x5a);
  const crc = crc32(data);
  const vmas: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const start = 0x10000000 + i * (pages + 1) * PAGE;
    vmas.push(rec(VMA, { start, end: start + pages * PAGE, prot: 3, kind: 0, pages_off: PAGE, nr_pages: pages, pages_crc: crc },
      [rec(PAGE_RUNS, {}, encodeRuns([[start, pages]]))]));
  }
  const img = wrapImage([rec(PROCESS, { pid: 4242 }, [...(proc.children ?? []).map((c) => c.raw), ...vmas])]);
  return { img, pages: Buffer.concat([encodePagesHeader(), data]) };
}

/** An image directory whose `which` file is a FIFO (open() of it blocks until a writer comes). */
export function fifoImageDir(dir: string, which: 'ckpt.img' | 'pages.img'): void {
  const b = buildImage([{ pid: 4242, vmas: [{ start: 0x400000, end: 0x401000, prot: 3, kind: 0, saved: [0] }] }]);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'ckpt.img'), b.img);
  fs.writeFileSync(path.join(dir, 'pages.img'), b.pages);
  fs.rmSync(path.join(dir, which));
  const r = spawnSync('mkfifo', [path.join(dir, which)]);
  if (r.status !== 0) throw new Error(`mkfifo failed: ${r.stderr}`);
}
