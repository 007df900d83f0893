/**
 * Compressed page data. With `ckpt dump --compress zstd|lz4`, pages.img holds
 * a sequence of compressed chunks (each one 8 MiB of the page stream at most,
 * padded to 4096 bytes in the file) instead of the pages themselves. The
 * PAGE_CHUNKS record in ckpt.img maps the uncompressed page stream (where
 * VMA.pages_off and nr_pages still point) to the chunks in the file.
 *
 * The codecs are native addons loaded only when an image uses them:
 *   zstd: @toondepauw/node-zstd (libzstd 1.5.7, napi-rs, prebuilt per platform)
 *   lz4:  lz4-napi (lz4_flex block format with the size prepended, napi-rs, prebuilt)
 */
import { createRequire } from 'node:module';
import { CkptError } from '../errors.js';
import { Content, defineRecord } from '../image/index.js';
import { T } from './ids.js';

export const PAGE_CHUNKS = defineRecord({
  type: T.PAGE_CHUNKS, name: 'page_chunks', content: Content.DATA, fields: { codec: 'u32', count: 'u32' },
});

export enum Codec { NONE = 0, ZSTD = 1, LZ4 = 2 }
export type CodecName = 'none' | 'zstd' | 'lz4';
export const CODEC_NAMES: Record<CodecName, Codec> = { none: Codec.NONE, zstd: Codec.ZSTD, lz4: Codec.LZ4 };

export function parseCodec(name: string): Codec {
  if (!(name in CODEC_NAMES)) throw new CkptError('USAGE', `--compress ${name}: expected zstd, lz4 or none`);
  return CODEC_NAMES[name as CodecName];
}

export function codecName(c: number): string {
  return (Object.keys(CODEC_NAMES) as CodecName[]).find((k) => CODEC_NAMES[k] === c) ?? `codec ${c}`;
}

/** The most page data one chunk holds (the dump's slot size). */
export const MAX_CHUNK_RAW = 8 * 1024 * 1024;
/** The most a chunk of raw_len bytes may take once compressed (above both codecs' worst case). */
export const maxPacked = (rawLen: number) => rawLen + (rawLen >>> 7) + 65536;
/** zstd level: 1 is the fastest standard level; page data gains little from higher ones. */
export const ZSTD_LEVEL = 1;

export interface Chunk { raw_offset: number; raw_len: number; file_offset: number; packed_len: number }
export const CHUNK_ENTRY_SIZE = 24;

export function encodeChunks(chunks: Chunk[]): Buffer {
  const buf = Buffer.alloc(chunks.length * CHUNK_ENTRY_SIZE);
  chunks.forEach((c, i) => {
    const at = i * CHUNK_ENTRY_SIZE;
    buf.writeBigUInt64LE(BigInt(c.raw_offset), at);
    buf.writeUInt32LE(c.raw_len, at + 8);
    buf.writeBigUInt64LE(BigInt(c.file_offset), at + 12);
    buf.writeUInt32LE(c.packed_len, at + 20);
  });
  return buf;
}

export interface ChunkTable { codec: Codec; chunks: Chunk[]; rawStart: number; rawEnd: number }

/**
 * The chunk table, checked against itself and the file: chunks follow each
 * other in the page stream from `rawStart` without gaps, each holds 1 to
 * 8 MiB of whole pages, lies in the file in order without overlap, and its
 * packed length fits both its file space and the codec's worst case.
 */
export function decodeChunks(codec: number, count: number, data: Buffer, file: { path: string; size: number; start: number }): ChunkTable {
  const bad = (offset: number, what: string) =>
    new CkptError('BAD_IMAGE', `bad image ${file.path}: ${what}`, { offset, path: file.path });
  if (codec !== Codec.ZSTD && codec !== Codec.LZ4) throw bad(0, `page data compressed with unknown ${codecName(codec)}`);
  if (data.length !== count * CHUNK_ENTRY_SIZE) throw bad(0, `chunk table of ${data.length} bytes for ${count} chunks`);
  const chunks: Chunk[] = [];
  let raw = file.start;
  let fileAt = file.start;
  for (let i = 0; i < count; i++) {
    const at = i * CHUNK_ENTRY_SIZE;
    const c: Chunk = {
      raw_offset: Number(data.readBigUInt64LE(at)), raw_len: data.readUInt32LE(at + 8),
      file_offset: Number(data.readBigUInt64LE(at + 12)), packed_len: data.readUInt32LE(at + 20),
    };
    const where = `chunk ${i} at offset ${c.file_offset}`;
    if (c.raw_offset !== raw) throw bad(c.file_offset, `${where} starts at ${c.raw_offset} of the page stream, expected ${raw}`);
    if (c.raw_len === 0 || c.raw_len > MAX_CHUNK_RAW || c.raw_len % 4096) throw bad(c.file_offset, `${where} holds ${c.raw_len} bytes of pages (whole pages, at most ${MAX_CHUNK_RAW})`);
    if (!Number.isSafeInteger(c.file_offset) || c.file_offset < fileAt || c.file_offset % 4096) throw bad(c.file_offset, `${where} is out of order or not page-aligned`);
    const next = i + 1 < count ? Number(data.readBigUInt64LE(at + CHUNK_ENTRY_SIZE + 12)) : file.size;
    const space = Math.min(next, file.size) - c.file_offset;
    if (c.packed_len === 0 || c.packed_len > space || c.packed_len > maxPacked(c.raw_len)) {
      throw bad(c.file_offset, `${where}: ${c.packed_len} packed bytes do not fit its ${Math.max(0, space)} bytes of file`);
    }
    chunks.push(c);
    raw += c.raw_len;
    fileAt = c.file_offset + c.packed_len;
  }
  return { codec, chunks, rawStart: file.start, rawEnd: raw };
}

// ---- the codecs -------------------------------------------------------------------

interface ZstdModule {
  Encoder: new (level: number) => { encodeSync(data: Uint8Array): Buffer };
  Decoder: new () => { decodeSync(data: Uint8Array): Buffer };
}
interface Lz4Module {
  compressSync(data: Uint8Array): Buffer;
  uncompressSync(data: Uint8Array): Buffer;
}

const load = createRequire(import.meta.url);
let zstd: ZstdModule | undefined;
let lz4: Lz4Module | undefined;

function zstdModule(): ZstdModule {
  zstd ??= load('@toondepauw/node-zstd') as ZstdModule;
  return zstd;
}
function lz4Module(): Lz4Module {
  lz4 ??= load('lz4-napi') as Lz4Module;
  return lz4;
}

export interface Compressor { compress(data: Uint8Array): Buffer }

/** A compressor for the dump (loads the native codec once). */
export function compressor(codec: Codec): Compressor {
  if (codec === Codec.ZSTD) {
    const enc = new (zstdModule().Encoder)(ZSTD_LEVEL);
    return { compress: (d) => enc.encodeSync(d) };
  }
  if (codec === Codec.LZ4) {
    const m = lz4Module();
    return { compress: (d) => m.compressSync(d) };
  }
  throw new CkptError('INTERNAL', `no compressor for ${codecName(codec)}`);
}

/**
 * Decompress one chunk; returns exactly rawLen bytes or throws a plain Error
 * saying why (the caller adds the file and offset). The output is bounded
 * by rawLen before the codec allocates anything: lz4's prepended size must
 * equal it, and a zstd chunk must be one frame whose content size is it.
 */
export function decompressChunk(codec: Codec, packed: Buffer, rawLen: number): Buffer {
  let out: Buffer;
  if (codec === Codec.LZ4) {
    if (packed.length < 4) throw new Error('too short');
    const size = packed.readUInt32LE(0);
    if (size !== rawLen) throw new Error(`it says it holds ${size} bytes, the table says ${rawLen}`);
    out = lz4Module().uncompressSync(packed);
  } else if (codec === Codec.ZSTD) {
    out = new (zstdModule().Decoder)().decodeSync(zstdBounded(packed, rawLen));
  } else {
    throw new Error(`unknown ${codecName(codec)}`);
  }
  if (out.length !== rawLen) throw new Error(`it holds ${out.length} bytes, the table says ${rawLen}`);
  return out;
}

const ZSTD_MAGIC = 0xfd2fb528;
const ZSTD_BLOCK_MAX = 128 * 1024;

/**
 * The frame with its content size set to rawLen (inserted when the encoder
 * left it out), so that libzstd itself refuses to produce more; and checked
 * to be one frame that ends exactly at the end of the chunk.
 */
function zstdBounded(p: Buffer, rawLen: number): Buffer {
  if (p.length < 6 || p.readUInt32LE(0) !== ZSTD_MAGIC) throw new Error('not a zstd frame');
  const fhd = p[4];
  const fcsFlag = fhd >> 6;
  const single = (fhd >> 5) & 1;
  const hasChecksum = (fhd >> 2) & 1;
  const dictIdSize = [0, 1, 2, 4][fhd & 3];
  if ((fhd >> 3) & 1) throw new Error('reserved bit set in the frame header');
  if (dictIdSize) throw new Error('the frame needs a dictionary');
  const fcsSize = [single ? 1 : 0, 2, 4, 8][fcsFlag];
  const hdrLen = 5 + (single ? 0 : 1) + fcsSize;
  if (p.length < hdrLen) throw new Error('truncated frame header');
  let at = hdrLen;
  for (;;) {
    if (at + 3 > p.length) throw new Error('truncated block header');
    const h = p[at] | (p[at + 1] << 8) | (p[at + 2] << 16);
    const last = h & 1;
    const type = (h >> 1) & 3;
    const size = h >>> 3;
    if (type === 3) throw new Error('reserved block type');
    if (size > ZSTD_BLOCK_MAX) throw new Error('block larger than 128 KiB');
    at += 3 + (type === 1 ? 1 : size);
    if (last) break;
  }
  at += hasChecksum ? 4 : 0;
  if (at !== p.length) throw new Error(at > p.length ? 'truncated frame' : `${p.length - at} bytes after the frame`);
  if (fcsSize) {
    const base = fcsSize === 2 ? 256 : 0;
    const o = 5 + (single ? 0 : 1);
    const fcs = fcsSize === 1 ? p[o] : fcsSize === 2 ? p.readUInt16LE(o) : fcsSize === 4 ? p.readUInt32LE(o) : Number(p.readBigUInt64LE(o));
    if (fcs + base !== rawLen) throw new Error(`it says it holds ${fcs + base} bytes, the table says ${rawLen}`);
    return p;
  }
  // Insert a 4-byte content size after the window descriptor.
  const q = Buffer.allocUnsafe(p.length + 4);
  p.copy(q, 0, 0, 6);
  q[4] = fhd | (2 << 6);
  q.writeUInt32LE(rawLen, 6);
  p.copy(q, 10, 6);
  return q;
}
