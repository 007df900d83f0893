/**
 * CRC-32 of page data (zlib's CRC: polynomial 0x04C11DB7, bit-reflected) at
 * memory speed. zlib's, which node has, does ~2.4 GB/s here; folding with the
 * carry-less multiply (PCLMULQDQ) ~10 GB/s. A 1 GiB dump's CRC then takes
 * ~0.1 s of its engine thread instead of ~0.45 s, while glibc's AIO thread
 * writes the pages on the other core (dump/page-pump.ts).
 *
 * The folding is machine code of ours (foldCode below): four 128-bit lanes
 * take the first 64 bytes, the CRC so far XORed into their first four; then for
 * each further 64 bytes each lane L becomes lo(L)·K1 ^ hi(L)·K2 ^ its next 16
 * bytes, which is L·x^512 modulo P; at the end the lanes fold into one the
 * same way, 128 bits apart. What is left is 128 bits with the same CRC as
 * everything folded, so zlib finishes it and the tail under 64 bytes.
 * Without PCLMULQDQ, or for a short buffer, zlib does it all.
 */
import fs from 'node:fs';
import zlib from 'node:zlib';
import { codeFunctions, mapFile, type FileMapping } from './libc.js';

/** Below this, the call into native code costs more than it saves. */
const FOLD_MIN_BYTES = 1024;

/** x^n modulo P (P = x^32 + 0x04C11DB7), coefficients of x^0..x^31 in bits 0..31. */
function xPowModP(n: number): number {
  let r = 1;
  for (let i = 0; i < n; i++) r = r & 0x80000000 ? ((r << 1) ^ 0x04c11db7) >>> 0 : (r << 1) >>> 0;
  return r;
}

/**
 * A fold multiplier x^d mod P as PCLMULQDQ takes it in the reflected order:
 * x^k in bit 63-k. The product of two reflected 64-bit values lands one bit
 * low in the 128-bit result, hence x^(d-1) for a shift of d bits.
 */
function multiplier(d: number): bigint {
  const k = xPowModP(d - 1);
  let reflected = 0n;
  for (let i = 0; i < 32; i++) if (k & (1 << i)) reflected |= 1n << BigInt(63 - i);
  return reflected;
}

/** K1, K2 for a shift of 512 bits (the lanes' loop), then for 128 (lanes into one). */
function multipliers(): Buffer {
  const k = Buffer.alloc(32);
  [512 + 64, 512, 128 + 64, 128].forEach((d, i) => k.writeBigUInt64LE(multiplier(d), 8 * i));
  return k;
}

/**
 * void fold(const void *buf, uint64_t blocks, uint32_t state, void *out, const void *k):
 * folds `blocks` (>= 1) 64-byte blocks from raw CRC state `state` into 16 bytes at
 * `out`, with the multipliers at `k`. Uses xmm0-6 only (all caller-saved).
 */
function foldCode(): Buffer {
  const pclmul = (dst: number, src: number, imm: number) => [0x66, 0x0f, 0x3a, 0x44, 0xc0 | (dst << 3) | src, imm];
  const pxor = (dst: number, src: number) => [0x66, 0x0f, 0xef, 0xc0 | (dst << 3) | src];
  // xmm<r> = lo(xmm<r>)·lo(xmm4) ^ hi(xmm<r>)·hi(xmm4), through xmm5.
  const fold = (r: number) => [0x66, 0x0f, 0x6f, 0xe8 | r, ...pclmul(r, 4, 0x00), ...pclmul(5, 4, 0x11), ...pxor(r, 5)];
  const lanes = [0, 1, 2, 3];
  const start = [
    ...lanes.flatMap((r) => [0xf3, 0x0f, 0x6f, 0x47 | (r << 3), 16 * r]), // movdqu xmm<r>, [rdi+16r]
    0x66, 0x0f, 0x6e, 0xe2, //                    movd xmm4, edx
    ...pxor(0, 4), //                             pxor xmm0, xmm4
    0xf3, 0x41, 0x0f, 0x6f, 0x20, //              movdqu xmm4, [r8]   (K1, K2 for 512)
    0x48, 0x83, 0xc7, 0x40, //                    add rdi, 64
    0x48, 0xff, 0xce, //                          dec rsi
  ];
  const loop = [
    // xmm<r> = fold(xmm<r>) ^ [rdi+16r], the next 16 bytes loaded into xmm6
    ...lanes.flatMap((r) => [...fold(r), 0xf3, 0x0f, 0x6f, 0x77, 16 * r, ...pxor(r, 6)]),
    0x48, 0x83, 0xc7, 0x40, //                    add rdi, 64
    0x48, 0xff, 0xce, //                          dec rsi
  ];
  const jnzBack = [0x75, (-(loop.length + 2)) & 0xff]; // jnz loop
  const end = [
    0xf3, 0x41, 0x0f, 0x6f, 0x60, 0x10, //        movdqu xmm4, [r8+16] (K1, K2 for 128)
    ...[1, 2, 3].flatMap((r) => [...fold(0), ...pxor(0, r)]), // xmm0 = fold(xmm0) ^ xmm<r>
    0xf3, 0x0f, 0x7f, 0x01, //                    movdqu [rcx], xmm0
    0xc3, //                                      ret
  ];
  const jzEnd = [0x74, loop.length + jnzBack.length]; // jz end
  return Buffer.from([...start, ...jzEnd, ...loop, ...jnzBack, ...end]);
}

function hasPclmul(): boolean {
  if (process.arch !== 'x64') return false;
  try {
    const flags = /^flags\s*:(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'latin1'))?.[1] ?? '';
    return flags.split(' ').includes('pclmulqdq');
  } catch {
    return false;
  }
}

interface Folder {
  fold: (buf: Uint8Array, blocks: number, state: number, out: Buffer, k: Buffer) => void;
  /** The same code, given an address (mapped memory) instead of a buffer. */
  foldAt: (addr: bigint, blocks: number, state: number, out: Buffer, k: Buffer) => void;
  out: Buffer;
  k: Buffer;
}
/** This thread's folder; null where the CPU or the mapping of code says no. */
let folder: Folder | null | undefined;

function getFolder(): Folder | null {
  if (folder !== undefined) return folder;
  folder = null;
  if (hasPclmul()) {
    try {
      const [fold, foldAt] = codeFunctions(foldCode(),
        'void ckpt_crc32_fold(const void *buf, uint64_t blocks, uint32_t state, void *out, const void *k)',
        'void ckpt_crc32_fold_at(uint64_t addr, uint64_t blocks, uint32_t state, void *out, const void *k)');
      folder = { fold, foldAt, out: Buffer.alloc(16), k: multipliers() };
    } catch { /* no executable mapping here: zlib's */ }
  }
  return folder;
}

/** zlib.crc32(buf, crc), the same value, faster on large buffers. */
export function crc32(buf: Uint8Array, crc = 0): number {
  const blocks = Math.floor(buf.length / 64);
  const f = buf.length >= FOLD_MIN_BYTES ? getFolder() : null;
  if (!f) return zlib.crc32(buf, crc);
  f.fold(buf, blocks, ~crc >>> 0, f.out, f.k);
  return zlib.crc32(buf.subarray(blocks * 64), zlib.crc32(f.out, 0xffffffff));
}

/**
 * The CRC of `len` bytes at `addr`, memory this thread may read (a mapping of
 * ckpt's), with no JavaScript view of them; undefined unless the folding does
 * it all (PCLMULQDQ, and `len` a multiple of 64 from 1 KiB up, as page data is).
 */
export function crc32At(addr: bigint, len: number, crc = 0): number | undefined {
  if (len < FOLD_MIN_BYTES || len % 64 !== 0) return undefined;
  const f = getFolder();
  if (!f) return undefined;
  f.foldAt(addr, len / 64, ~crc >>> 0, f.out, f.k);
  return zlib.crc32(f.out, 0xffffffff);
}

/** The CRC of a mapping's bytes [from, from + len): folded at its address where it can be, else through a view. */
function crc32OfMapping(m: FileMapping, from: number, len: number, crc = 0): number {
  return crc32At(m.addr + BigInt(from), len, crc) ?? crc32(m.view().subarray(from, from + len), crc);
}

/**
 * The CRC of `len` bytes of file `fd` from `offset` (page-aligned), `crc` the
 * CRC so far, read through mappings of `window` bytes at most. Throws what
 * mmap throws (a file that cannot be mapped).
 */
export function crc32OfFile(fd: number, offset: number, len: number, crc = 0, window = 16 * 1024 * 1024): number {
  for (let done = 0; done < len; done += window) {
    const n = Math.min(window, len - done);
    const m = mapFile(fd, offset + done, n);
    try { crc = crc32OfMapping(m, 0, n, crc); } finally { m.unmap(); }
  }
  return crc;
}

/** Whether large buffers go through the folding here (for the tests: this machine has PCLMULQDQ). */
export function crc32Folds(): boolean {
  return getFolder() !== null;
}
