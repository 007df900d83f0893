/**
 * DIR/pages.img: page data, 4096-aligned so that it can be read straight into place.
 *
 * The first 4096 bytes are a header page:
 *   0  magic "CKPTPAGE"   8  version_major u16   10 version_minor u16
 *  12  page_size u32      16 header size u32 (4096)
 *  20  crc u32 (zlib.crc32 of the whole header page with this field as 0), zeros to 4096.
 * Then page data, appended in whole pages by the caller, who records the offsets it got
 * in its own (metadata) records.
 */
import * as fs from 'node:fs';
import { crc32 } from 'node:zlib';
import { CkptError } from '../errors.js';
import { errnoOf, fsError } from './fserror.js';
import { FORMAT_VERSION_MAJOR, FORMAT_VERSION_MINOR, PAGE_SIZE } from './header.js';
import { PAGES_FILE, createImageFile, writeAll } from './writer.js';

export const PAGES_MAGIC = Buffer.from('CKPTPAGE', 'latin1');
export const PAGES_HDR_SIZE = 4096;
const OFF_MAJOR = 8;
const OFF_MINOR = 10;
const OFF_PAGE_SIZE = 12;
const OFF_HDR_SIZE = 16;
const OFF_CRC = 20;

function headerCrc(page: Buffer): number {
  const c = crc32(page.subarray(0, OFF_CRC));
  return crc32(page.subarray(OFF_CRC + 4, PAGES_HDR_SIZE), crc32(Buffer.alloc(4), c));
}

export function encodePagesHeader(pageSize = PAGE_SIZE): Buffer {
  const page = Buffer.alloc(PAGES_HDR_SIZE);
  PAGES_MAGIC.copy(page, 0);
  page.writeUInt16LE(FORMAT_VERSION_MAJOR, OFF_MAJOR);
  page.writeUInt16LE(FORMAT_VERSION_MINOR, OFF_MINOR);
  page.writeUInt32LE(pageSize, OFF_PAGE_SIZE);
  page.writeUInt32LE(PAGES_HDR_SIZE, OFF_HDR_SIZE);
  page.writeUInt32LE(headerCrc(page), OFF_CRC);
  return page;
}

export class PagesWriter {
  private pos = PAGES_HDR_SIZE;
  private closed = false;

  private constructor(readonly fd: number, readonly path: string) {}

  /** Create DIR/pages.img and write its header page. */
  static create(dir: string, pageSize = PAGE_SIZE): PagesWriter {
    // Readable too: a dump -R that copied ahead takes the CRC of pages it wrote again from the file.
    const { fd, path } = createImageFile(dir, PAGES_FILE, { readable: true });
    try {
      writeAll(fd, encodePagesHeader(pageSize), PAGES_HDR_SIZE, path);
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
    return new PagesWriter(fd, path);
  }

  /** Where the next append lands; a multiple of 4096. */
  get offset(): number {
    return this.pos;
  }

  /** Write buf[0, len) (whole pages) at the end; returns the file offset it was written at. */
  append(buf: Uint8Array, len: number): number {
    if (this.closed) throw new CkptError('INTERNAL', `${this.path}: append after close`);
    if (!Number.isInteger(len) || len < 0 || len % PAGES_HDR_SIZE !== 0 || len > buf.length) {
      throw new CkptError('INTERNAL', `${this.path}: append of ${len} bytes (buffer ${buf.length}): not whole pages`);
    }
    const at = this.pos;
    this.writeAt(buf, 0, len, at);
    this.pos += len;
    return at;
  }

  /** Write buf[from, from + len) at file offset `at` (in a range append or reserve gave). */
  writeAt(buf: Uint8Array, from: number, len: number, at: number): void {
    writeAll(this.fd, buf.subarray(from), len, this.path, at);
  }

  /**
   * Claim the next len bytes (whole pages) for a writer that fills them
   * itself with positional writes (another thread); returns their offset.
   */
  reserve(len: number): number {
    if (this.closed) throw new CkptError('INTERNAL', `${this.path}: reserve after close`);
    if (!Number.isInteger(len) || len < 0 || len % PAGES_HDR_SIZE !== 0) {
      throw new CkptError('INTERNAL', `${this.path}: reserve of ${len} bytes: not whole pages`);
    }
    const at = this.pos;
    this.pos += len;
    return at;
  }

  /** fsync and close. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      fs.fsyncSync(this.fd);
    } catch (err) {
      throw fsError(err, 'fsync', this.path);
    } finally {
      fs.closeSync(this.fd);
    }
  }

  discard(): void {
    if (this.closed) return;
    this.closed = true;
    fs.closeSync(this.fd);
  }
}

export class PagesReader {
  private closed = false;

  private constructor(readonly fd: number, readonly path: string, readonly size: number, readonly pageSize: number) {}

  /** Open a pages.img and check its header page; BAD_IMAGE with the offset on any problem. */
  static open(path: string, expectPageSize = PAGE_SIZE): PagesReader {
    let fd: number;
    try {
      // O_NONBLOCK: a FIFO planted in an image directory must not block the open.
      fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') throw bad(path, 0, 'missing');
      if (errnoOf(err) === 'ELOOP') throw bad(path, 0, 'is a symbolic link');
      throw fsError(err, 'open', path);
    }
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile()) throw bad(path, 0, 'not a regular file');
      if (st.size < PAGES_HDR_SIZE) throw bad(path, 0, `truncated: ${st.size} bytes, the header page is ${PAGES_HDR_SIZE}`);
      const page = Buffer.alloc(PAGES_HDR_SIZE);
      if (fs.readSync(fd, page, 0, PAGES_HDR_SIZE, 0) !== PAGES_HDR_SIZE) throw bad(path, 0, 'short read of the header page');
      const magic = page.subarray(0, PAGES_MAGIC.length);
      if (!magic.equals(PAGES_MAGIC)) throw bad(path, 0, `not a ckpt pages file (magic ${magic.toString('hex')})`);
      if (page.readUInt32LE(OFF_CRC) !== headerCrc(page)) throw bad(path, 0, 'header page CRC mismatch');
      const major = page.readUInt16LE(OFF_MAJOR);
      const minor = page.readUInt16LE(OFF_MINOR);
      if (major !== FORMAT_VERSION_MAJOR || minor > FORMAT_VERSION_MINOR) {
        throw bad(path, 0, `format ${major}.${minor} is not one this ckpt reads (${FORMAT_VERSION_MAJOR}.0-${FORMAT_VERSION_MAJOR}.${FORMAT_VERSION_MINOR})`);
      }
      const hdrSize = page.readUInt32LE(OFF_HDR_SIZE);
      if (hdrSize !== PAGES_HDR_SIZE) throw bad(path, 0, `header size ${hdrSize}, expected ${PAGES_HDR_SIZE}`);
      const pageSize = page.readUInt32LE(OFF_PAGE_SIZE);
      if (pageSize !== expectPageSize) throw bad(path, 0, `page size is ${pageSize}, this machine's is ${expectPageSize}`);
      if (st.size % PAGES_HDR_SIZE !== 0) {
        throw bad(path, st.size - (st.size % PAGES_HDR_SIZE), `truncated: size ${st.size} is not whole pages`);
      }
      return new PagesReader(fd, path, st.size, pageSize);
    } catch (err) {
      fs.closeSync(fd);
      throw err instanceof CkptError ? err : fsError(err, 'read', path);
    }
  }

  /** BAD_IMAGE unless [offset, offset + len) is page data inside the file. */
  check(offset: number, len: number): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(len) || len < 0 ||
        offset < PAGES_HDR_SIZE || offset % PAGES_HDR_SIZE !== 0 || offset + len > this.size) {
      throw bad(this.path, offset, `page data [${offset}, +${len}) is not inside the ${this.size}-byte file`);
    }
  }

  /** Read exactly len bytes of page data at offset into buf. */
  read(buf: Uint8Array, len: number, offset: number): void {
    this.check(offset, len);
    if (len > buf.length) throw new CkptError('INTERNAL', `${this.path}: read of ${len} bytes into ${buf.length}`);
    let done = 0;
    try {
      while (done < len) {
        const n = fs.readSync(this.fd, buf, done, len - done, offset + done);
        if (n === 0) throw bad(this.path, offset + done, 'truncated while reading');
        done += n;
      }
    } catch (err) {
      throw err instanceof CkptError ? err : fsError(err, 'read', this.path);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    fs.closeSync(this.fd);
  }
}

function bad(path: string, offset: number, what: string): CkptError {
  return new CkptError('BAD_IMAGE', `bad image ${path}: ${what}`, { offset, path });
}
