/**
 * ImageWriter: DIR/ckpt.img, written front to back: HEADER, the records added, END.
 * Records are written as they come (nothing is held back); close() makes the file durable.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CkptError } from '../errors.js';
import { fsError } from './fserror.js';
import {
  END, EM_X86_64, FORMAT_VERSION_MAJOR, FORMAT_VERSION_MINOR, HEADER, IMAGE_MAGIC, PAGE_SIZE, TOOL, UTS_RELEASE,
} from './header.js';
import { RECORD_HDR_LEN, type Content } from './record.js';
import { encode, type AnySchema, type ContentArg, type FieldsOf } from './schema.js';

export const IMAGE_FILE = 'ckpt.img';
export const PAGES_FILE = 'pages.img';

/** Create a new file in `dir`: 0600, never over an existing file, never through a symlink. */
export function createImageFile(dir: string, name: string, opts: { readable?: boolean } = {}): { fd: number; path: string } {
  const p = path.join(dir, name);
  const c = fs.constants;
  let fd: number; // libuv adds O_CLOEXEC to every open
  try {
    fd = fs.openSync(p, (opts.readable ? c.O_RDWR : c.O_WRONLY) | c.O_CREAT | c.O_EXCL | c.O_NOFOLLOW, 0o600);
  } catch (err) {
    throw fsError(err, 'open', p);
  }
  try {
    fs.fchmodSync(fd, 0o600); // whatever the umask
  } catch (err) {
    fs.closeSync(fd);
    throw fsError(err, 'fchmod', p);
  }
  return { fd, path: p };
}

/** Write all of buf[0, len) at the file position, or at `at`; writeSync may write less than asked. */
export function writeAll(fd: number, buf: Uint8Array, len: number, file: string, at?: number): void {
  let done = 0;
  try {
    while (done < len) done += fs.writeSync(fd, buf, done, len - done, at === undefined ? null : at + done);
  } catch (err) {
    throw fsError(err, 'write', file);
  }
}

export interface ImageHeaderInput {
  /** The kernel release (uname -r). */
  utsRelease: string;
  /** The tool that writes, e.g. "ckpt 0.1.0". */
  tool: string;
  /** Unix time in ns; default now. */
  createdNs?: bigint;
  arch?: number;
  pageSize?: number;
}

export function encodeHeader(h: ImageHeaderInput): Buffer {
  return encode(HEADER, {
    magic: IMAGE_MAGIC,
    version_major: FORMAT_VERSION_MAJOR,
    version_minor: FORMAT_VERSION_MINOR,
    arch: h.arch ?? EM_X86_64,
    page_size: h.pageSize ?? PAGE_SIZE,
    created_ns: h.createdNs ?? BigInt(Date.now()) * 1_000_000n,
  }, [encode(UTS_RELEASE, {}, h.utsRelease), encode(TOOL, {}, h.tool)]);
}

export class ImageWriter {
  /** Top-level records written so far, HEADER included. */
  private count = 0;
  private bytes = 0;
  private closed = false;
  private ended = false;

  private constructor(readonly fd: number, readonly path: string) {}

  /** Create DIR/ckpt.img and write its header. */
  static create(dir: string, header: ImageHeaderInput): ImageWriter {
    const hdr = encodeHeader(header);
    const { fd, path: p } = createImageFile(dir, IMAGE_FILE);
    const w = new ImageWriter(fd, p);
    try {
      w.add(hdr);
    } catch (err) {
      w.discard();
      throw err;
    }
    return w;
  }

  /** Bytes written so far: the offset the next record will have. */
  get offset(): number {
    return this.bytes;
  }

  /** Append one encoded top-level record; returns its offset. */
  add(rec: Buffer): number {
    if (this.closed || this.ended) throw new CkptError('INTERNAL', `${this.path}: add after ${this.closed ? 'close' : 'END'}`);
    if (rec.length < RECORD_HDR_LEN || rec.length % 8 !== 0 || rec.readUInt32LE(0) + rec.readUInt32LE(4) * 0x100000000 !== rec.length) {
      throw new CkptError('INTERNAL', `${this.path}: add of something that is not one encoded record`);
    }
    const at = this.bytes;
    writeAll(this.fd, rec, rec.length, this.path);
    this.bytes += rec.length;
    this.count++;
    return at;
  }

  /** encode() and add() in one. */
  put<S extends AnySchema>(
    schema: S,
    fields: FieldsOf<S>,
    ...content: S['content'] extends Content.VOID ? [] | [undefined] : [ContentArg<S['content']>]
  ): number {
    return this.add(encode(schema, fields, ...content));
  }

  /** Write END: nothing more goes in (close() writes it if this did not). */
  end(): void {
    if (this.ended) return;
    this.add(encode(END, { records: this.count }));
    this.ended = true;
  }

  /** Write END, fsync, close. */
  close(): void {
    if (this.closed) return;
    this.end();
    this.closed = true;
    try {
      fs.fsyncSync(this.fd);
    } catch (err) {
      fs.closeSync(this.fd);
      throw fsError(err, 'fsync', this.path);
    }
    fs.closeSync(this.fd);
  }

  /** Close without END (after a failure): the file stays incomplete and reads as truncated. */
  discard(): void {
    if (this.closed) return;
    this.closed = true;
    fs.closeSync(this.fd);
  }
}
