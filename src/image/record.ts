/**
 * The wire format of one record. Every record is 8-byte aligned, little-endian:
 *
 *   0  len          u64  whole record including padding; a multiple of 8
 *   8  hdrlen       u32  24 + size of the fixed fields, rounded up to 8
 *  12  type         u16
 *  14  content      u16  Content kind of what follows hdrlen
 *  16  crc          u32  zlib.crc32 of the whole record with this field taken as 0
 *  20  content_len  u32  exact byte length of the content
 *  24  fixed fields, zero pad to hdrlen
 *  hdrlen  content (content_len bytes), zero pad to len
 *
 * This module knows framing only: no schema, no kind.
 */
import { crc32 } from 'node:zlib';
import { CkptError } from '../errors.js';

export const RECORD_ALIGN = 8;
export const RECORD_HDR_LEN = 24;

export const OFF_LEN = 0;
export const OFF_HDRLEN = 8;
export const OFF_TYPE = 12;
export const OFF_CONTENT = 14;
export const OFF_CRC = 16;
export const OFF_CONTENT_LEN = 20;

export enum Content {
  VOID = 0,
  ARRAY = 1, // nested records
  DATA = 2,  // raw bytes
  NAME = 3,  // a utf-8 string
}

export const CONTENT_MAX = Content.NAME;

export function align8(n: number): number {
  return (n + RECORD_ALIGN - 1) & ~(RECORD_ALIGN - 1);
}

/** The header of one record as found on disk; offsets are absolute in the buffer. */
export interface RecordHeader {
  offset: number;
  len: number;
  hdrlen: number;
  type: number;
  content: Content;
  crc: number;
  contentLen: number;
}

/** What is wrong with a record, before anyone has given it a name and a file. */
export class RecordFault {
  constructor(
    readonly offset: number,
    readonly type: number | undefined,
    readonly what: string,
    /** The record runs past the end of what holds it: at top level, a cut-short file. */
    readonly truncated = false,
  ) {}
}

const ZERO4 = Buffer.alloc(4);

/** CRC of rec[0..len) with the crc field taken as 0; rec must hold the whole record. */
export function recordCrc(buf: Buffer, at: number, len: number): number {
  let c = crc32(buf.subarray(at, at + OFF_CRC));
  c = crc32(ZERO4, c);
  return crc32(buf.subarray(at + OFF_CRC + 4, at + len), c);
}

/**
 * Build one record. `fixed` is the fixed-field area (padded here to 8), `body` the content.
 * Throws INTERNAL if something does not fit its field.
 */
export function encodeRecord(type: number, content: Content, fixed: Buffer, body: Buffer): Buffer {
  if (!Number.isInteger(type) || type < 0 || type > 0xffff) {
    throw new CkptError('INTERNAL', `record type ${type} is not a u16`);
  }
  if (!(content in Content)) throw new CkptError('INTERNAL', `unknown content kind ${content}`);
  if (content === Content.VOID && body.length !== 0) {
    throw new CkptError('INTERNAL', `record type 0x${hex4(type)}: VOID record with content`);
  }
  const hdrlen = RECORD_HDR_LEN + align8(fixed.length);
  if (hdrlen > 0xffffffff || body.length > 0xffffffff) {
    throw new CkptError('INTERNAL', `record type 0x${hex4(type)} too large`);
  }
  const len = align8(hdrlen + body.length);
  const out = Buffer.alloc(len);
  // The u64 as two u32: Buffer's BigInt writes allocate, in cold code, at every record.
  out.writeUInt32LE(len % 0x100000000, OFF_LEN);
  out.writeUInt32LE(Math.floor(len / 0x100000000), OFF_LEN + 4);
  out.writeUInt32LE(hdrlen, OFF_HDRLEN);
  out.writeUInt16LE(type, OFF_TYPE);
  out.writeUInt16LE(content, OFF_CONTENT);
  out.writeUInt32LE(body.length, OFF_CONTENT_LEN);
  fixed.copy(out, RECORD_HDR_LEN);
  body.copy(out, hdrlen);
  out.writeUInt32LE(recordCrc(out, 0, len), OFF_CRC);
  return out;
}

/** Recompute and store the CRC of a record in place (tests and tools that patch records). */
export function resealRecord(buf: Buffer, at = 0): void {
  const len = Number(buf.readBigUInt64LE(at + OFF_LEN));
  buf.writeUInt32LE(recordCrc(buf, at, len), at + OFF_CRC);
}

/**
 * Check and decode the header of the record at `at`, which must fit in [at, end).
 * Returns a RecordFault instead of throwing so that the caller can name the file and type.
 * Order: size, len, CRC (covers everything after), then hdrlen, content kind, content_len.
 */
export function decodeRecordHeader(buf: Buffer, at: number, end: number): RecordHeader | RecordFault {
  const left = end - at;
  const type = left >= OFF_TYPE + 2 ? buf.readUInt16LE(at + OFF_TYPE) : undefined;
  if (left < RECORD_HDR_LEN) {
    return new RecordFault(at, type, `${left} bytes left, a record header is ${RECORD_HDR_LEN}`, true);
  }
  const len64 = buf.readBigUInt64LE(at + OFF_LEN);
  if (len64 < BigInt(RECORD_HDR_LEN)) return new RecordFault(at, type, `len ${len64} is below ${RECORD_HDR_LEN}`);
  if (len64 % BigInt(RECORD_ALIGN) !== 0n) return new RecordFault(at, type, `len ${len64} is not a multiple of 8`);
  if (len64 > BigInt(left)) return new RecordFault(at, type, `len ${len64} exceeds the ${left} bytes left`, true);
  const len = Number(len64);
  const crc = buf.readUInt32LE(at + OFF_CRC);
  const want = recordCrc(buf, at, len);
  if (crc !== want) return new RecordFault(at, type, `CRC mismatch (stored 0x${hex8(crc)}, computed 0x${hex8(want)})`);
  const hdrlen = buf.readUInt32LE(at + OFF_HDRLEN);
  if (hdrlen < RECORD_HDR_LEN || hdrlen % RECORD_ALIGN !== 0 || hdrlen > len) {
    return new RecordFault(at, type, `bad hdrlen ${hdrlen} (len ${len})`);
  }
  const content = buf.readUInt16LE(at + OFF_CONTENT);
  if (content > CONTENT_MAX) return new RecordFault(at, type, `unknown content kind ${content}`);
  const contentLen = buf.readUInt32LE(at + OFF_CONTENT_LEN);
  if (contentLen > len - hdrlen) {
    return new RecordFault(at, type, `content_len ${contentLen} exceeds the ${len - hdrlen} bytes after hdrlen`);
  }
  if (content === Content.VOID && contentLen !== 0) {
    return new RecordFault(at, type, `VOID record with content_len ${contentLen}`);
  }
  return { offset: at, len, hdrlen, type: type!, content, crc, contentLen };
}

/** The one error for a bad record: names the file, the absolute offset, the type and what. */
export function faultError(fault: RecordFault, label: string | undefined, file?: string): CkptError {
  const where = file === undefined ? 'bad image' : `bad image ${file}`;
  const kind = label === undefined ? '' : ` (${label})`;
  return new CkptError('BAD_IMAGE', `${where}: record at offset ${fault.offset}${kind}: ${fault.what}`, {
    offset: fault.offset,
    ...(file === undefined ? {} : { path: file }),
  });
}

export function hex4(n: number): string {
  return n.toString(16).padStart(4, '0');
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}
