/**
 * The single-file form of an image: a stream of framed entries (image-format.md §9).
 *
 *   stream header  "CKPTSTRM" | u16 major | u16 minor | u32 flags          16 bytes
 *   FILE entry     u32 kind=1 | u32 name_len | u64 size | name | size bytes
 *   ...            (ckpt.img, pages.img, then any other file by name)
 *   END entry      u32 kind=2 | u32 name_len=0 | u64 size=8 | u32 files | u32 crc
 *
 * `crc` is the CRC-32 (zlib) of every byte of the stream before the crc field. Nothing
 * follows END. Both directions stream in chunks of CHUNK bytes: a file is never held
 * in memory, and a reader bounds every length before it trusts it.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import { CkptError } from '../errors.js';
import { errnoOf, fsError } from './fserror.js';
import { abortImageDir, commitImageDir, createImageDir, openImageDir } from './dir.js';
import { MAX_IMAGE_SIZE } from './reader.js';
import { IMAGE_FILE, PAGES_FILE, createImageFile, writeAll } from './writer.js';

export const STREAM_MAGIC = 'CKPTSTRM';
export const STREAM_VERSION_MAJOR = 1;
export const STREAM_VERSION_MINOR = 0;
export const STREAM_HDR_LEN = 16;
export const ENTRY_HDR_LEN = 16;
export const ENTRY_FILE = 1;
export const ENTRY_END = 2;
/** The END entry's content: u32 files, u32 crc. */
export const END_CONTENT_LEN = 8;
/** Longest entry name, in bytes. */
export const MAX_NAME_LEN = 255;
/** Most files one stream may hold. */
export const MAX_ENTRIES = 64;
/** Largest file other than ckpt.img: the size of the x86_64 user address space (128 TiB). */
export const MAX_ENTRY_SIZE = 2 ** 47;
/** The copy buffer. */
export const CHUNK = 4 * 1024 * 1024;

const NAME_RE = /^[A-Za-z0-9._-]+$/;

/** An entry name is a plain file name: no '/', not '.' or '..', a small character set. */
export function validEntryName(name: string): boolean {
  return name.length >= 1 && Buffer.byteLength(name) <= MAX_NAME_LEN && NAME_RE.test(name) && name !== '.' && name !== '..';
}

// ---- byte sources and sinks -----------------------------------------------------------

/** Writes all of a buffer, or throws a CkptError. */
export interface ByteSink {
  write(buf: Uint8Array): void;
}

/** Reads up to len bytes into buf at off; 0 means end of stream. Throws a CkptError. */
export interface ByteSource {
  read(buf: Uint8Array, off: number, len: number): number;
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
/** A short synchronous sleep (for a non-blocking fd that has nothing yet). */
function pause(ms: number): void {
  Atomics.wait(sleepCell, 0, 0, ms);
}

/** A sink on an fd (a file, a pipe, stdout): loops on short writes, waits out EAGAIN. */
export function fdSink(fd: number, label: string): ByteSink {
  return {
    write(buf) {
      let done = 0;
      while (done < buf.length) {
        try {
          done += fs.writeSync(fd, buf, done, buf.length - done);
        } catch (err) {
          if (errnoOf(err) === 'EAGAIN') { pause(2); continue; }
          throw fsError(err, 'write', label);
        }
      }
    },
  };
}

/** A source on an fd (a file, a pipe, stdin), read sequentially; waits out EAGAIN. */
export function fdSource(fd: number, label: string): ByteSource {
  return {
    read(buf, off, len) {
      for (;;) {
        try {
          return fs.readSync(fd, buf, off, len, null);
        } catch (err) {
          if (errnoOf(err) === 'EAGAIN') { pause(2); continue; }
          throw fsError(err, 'read', label);
        }
      }
    },
  };
}

// ---- pack -----------------------------------------------------------------------------

export interface PackResult {
  files: { name: string; size: number }[];
  /** Bytes of the whole stream. */
  bytes: number;
}

/** The files of an image directory in stream order: ckpt.img, pages.img, then the rest by name. */
export function imageFiles(dir: string): string[] {
  openImageDir(dir); // NO_IMAGE if it is not one
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    throw fsError(err, 'readdir', dir);
  }
  const rank = (n: string) => (n === IMAGE_FILE ? 0 : n === PAGES_FILE ? 1 : 2);
  names.sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
  if (names.length > MAX_ENTRIES) throw new CkptError('BAD_IMAGE', `${dir}: ${names.length} files, more than an image holds (${MAX_ENTRIES})`, { path: dir });
  for (const n of names) {
    if (!validEntryName(n)) throw new CkptError('BAD_IMAGE', `${dir}: unexpected file name ${JSON.stringify(n)} in an image`, { path: dir });
  }
  return names;
}

/** The copy buffer for a file of `size` bytes: at most CHUNK, reused while big enough. */
function grow(chunk: Buffer | undefined, size: number): Buffer {
  const need = Math.min(CHUNK, Math.max(size, 4096));
  return chunk && chunk.length >= need ? chunk : Buffer.allocUnsafe(need);
}

function entryHeader(kind: number, nameLen: number, size: number): Buffer {
  const b = Buffer.alloc(ENTRY_HDR_LEN);
  b.writeUInt32LE(kind, 0);
  b.writeUInt32LE(nameLen, 4);
  b.writeBigUInt64LE(BigInt(size), 8);
  return b;
}

export function streamHeader(): Buffer {
  const b = Buffer.alloc(STREAM_HDR_LEN);
  b.write(STREAM_MAGIC, 0, 'latin1');
  b.writeUInt16LE(STREAM_VERSION_MAJOR, 8);
  b.writeUInt16LE(STREAM_VERSION_MINOR, 10);
  b.writeUInt32LE(0, 12);
  return b;
}

/**
 * Write the image in `dir` as one stream to `sink`. Every file is opened O_NOFOLLOW,
 * must be a regular file, and is copied in CHUNK-sized pieces.
 */
export function packImage(dir: string, sink: ByteSink): PackResult {
  const names = imageFiles(dir);
  let crc = 0;
  let bytes = 0;
  const put = (b: Uint8Array) => {
    sink.write(b);
    crc = crc32(b, crc);
    bytes += b.length;
  };
  put(streamHeader());
  const files: PackResult['files'] = [];
  let chunk: Buffer | undefined;
  for (const name of names) {
    const p = path.join(dir, name);
    let fd: number;
    try {
      fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    } catch (err) {
      if (errnoOf(err) === 'ELOOP') throw new CkptError('BAD_IMAGE', `${p} is a symbolic link, not an image file`, { path: p });
      throw fsError(err, 'open', p);
    }
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile()) throw new CkptError('BAD_IMAGE', `${p} is not a regular file`, { path: p });
      const size = st.size;
      if (size > (name === IMAGE_FILE ? MAX_IMAGE_SIZE : MAX_ENTRY_SIZE)) {
        throw new CkptError('BAD_IMAGE', `${p} is too large for an image file (${size} bytes)`, { path: p });
      }
      const nameBuf = Buffer.from(name, 'utf8');
      put(entryHeader(ENTRY_FILE, nameBuf.length, size));
      put(nameBuf);
      chunk = grow(chunk, size);
      let done = 0;
      while (done < size) {
        let n: number;
        try {
          n = fs.readSync(fd, chunk, 0, Math.min(chunk.length, size - done), null);
        } catch (err) {
          throw fsError(err, 'read', p);
        }
        if (n === 0) throw new CkptError('BAD_IMAGE', `${p} shrank while it was packed (${done} of ${size} bytes)`, { path: p });
        put(chunk.subarray(0, n));
        done += n;
      }
      files.push({ name, size });
    } finally {
      fs.closeSync(fd);
    }
  }
  const end = Buffer.alloc(ENTRY_HDR_LEN + END_CONTENT_LEN);
  entryHeader(ENTRY_END, 0, END_CONTENT_LEN).copy(end, 0);
  end.writeUInt32LE(files.length, ENTRY_HDR_LEN);
  crc = crc32(end.subarray(0, ENTRY_HDR_LEN + 4), crc);
  end.writeUInt32LE(crc, ENTRY_HDR_LEN + 4);
  sink.write(end);
  bytes += end.length;
  return { files, bytes };
}

// ---- unpack ---------------------------------------------------------------------------

export interface UnpackOptions {
  /** Replace an image already in DIR. */
  force?: boolean;
  /** Names the input in error messages ("stdin", a path). */
  label?: string;
}

/** Reads a stream front to back, keeping the offset and the running CRC. */
class StreamReader {
  offset = 0;
  crc = 0;
  constructor(private readonly src: ByteSource, readonly label: string) {}

  bad(msg: string, at = this.offset): CkptError {
    return new CkptError('BAD_IMAGE', `${this.label}: bad image stream at offset ${at}: ${msg}`, { offset: at, resource: this.label });
  }

  /** Exactly len bytes into buf[0, len), or a "truncated" error naming `what`. */
  readExact(buf: Buffer, len: number, what: string): Buffer {
    let done = 0;
    while (done < len) {
      const n = this.src.read(buf, done, len - done);
      if (n === 0) {
        const at = this.offset + done;
        throw this.bad(at === 0 ? 'the stream is empty' : `truncated: the stream ends inside ${what}`, at);
      }
      done += n;
    }
    const out = buf.subarray(0, len);
    this.crc = crc32(out, this.crc);
    this.offset += len;
    return out;
  }

  /** True if the stream ends here. */
  atEnd(): boolean {
    const b = Buffer.alloc(1);
    return this.src.read(b, 0, 1) === 0;
  }
}

/**
 * Read a stream from `src` into the image directory `dir`: DIR.partial (0700) with
 * 0600 files, renamed to DIR once the END entry and its CRC check out. Any fault
 * removes DIR.partial and leaves DIR as it was.
 */
export function unpackImage(src: ByteSource, dir: string, opts: UnpackOptions = {}): PackResult {
  const r = new StreamReader(src, opts.label ?? 'stream');
  // The stream header is checked before anything is created.
  const small = Buffer.alloc(Math.max(STREAM_HDR_LEN, ENTRY_HDR_LEN, MAX_NAME_LEN));
  const hdr = r.readExact(small, STREAM_HDR_LEN, 'the stream header');
  if (hdr.toString('latin1', 0, 8) !== STREAM_MAGIC) throw r.bad(`not a ckpt image stream (no ${STREAM_MAGIC} magic)`, 0);
  const major = hdr.readUInt16LE(8);
  const minor = hdr.readUInt16LE(10);
  if (major !== STREAM_VERSION_MAJOR || minor > STREAM_VERSION_MINOR) {
    throw r.bad(`stream version ${major}.${minor}, this ckpt reads ${STREAM_VERSION_MAJOR}.${STREAM_VERSION_MINOR}`, 8);
  }
  const flags = hdr.readUInt32LE(12);
  if (flags !== 0) throw r.bad(`unknown stream flags 0x${flags.toString(16)}`, 12);

  const partial = createImageDir(dir, { force: opts.force });
  let committed = false;
  // Kept open until the END entry checks out, then fsynced: a bad stream costs no fsync.
  const written: { fd: number; path: string }[] = [];
  try {
    const files: PackResult['files'] = [];
    const seen = new Set<string>();
    let chunk: Buffer | undefined;
    for (;;) {
      const at = r.offset;
      const eh = r.readExact(small, ENTRY_HDR_LEN, 'an entry header');
      const kind = eh.readUInt32LE(0);
      const nameLen = eh.readUInt32LE(4);
      const size64 = eh.readBigUInt64LE(8);
      if (kind === ENTRY_END) {
        if (nameLen !== 0 || size64 !== BigInt(END_CONTENT_LEN)) throw r.bad(`malformed end entry (name_len ${nameLen}, size ${size64})`, at);
        const count = r.readExact(small, 4, 'the end entry').readUInt32LE(0);
        const want = r.crc >>> 0;
        const crcAt = r.offset;
        const got = r.readExact(small, 4, 'the end entry').readUInt32LE(0);
        if (got !== want) throw r.bad(`CRC mismatch (stored 0x${got.toString(16).padStart(8, '0')}, computed 0x${want.toString(16).padStart(8, '0')})`, crcAt);
        if (count !== files.length) throw r.bad(`the end entry counts ${count} files, the stream holds ${files.length}`, at);
        if (!r.atEnd()) throw r.bad('bytes after the end entry', r.offset);
        break;
      }
      if (kind !== ENTRY_FILE) throw r.bad(`unknown entry kind ${kind}`, at);
      if (files.length >= MAX_ENTRIES) throw r.bad(`more than ${MAX_ENTRIES} files`, at);
      if (nameLen < 1 || nameLen > MAX_NAME_LEN) throw r.bad(`entry name length ${nameLen} (1 to ${MAX_NAME_LEN})`, at);
      const nameBytes = r.readExact(small, nameLen, 'an entry name');
      let name: string;
      try {
        name = new TextDecoder('utf-8', { fatal: true }).decode(nameBytes);
      } catch {
        throw r.bad('entry name is not UTF-8', at + ENTRY_HDR_LEN);
      }
      if (!validEntryName(name)) throw r.bad(`bad entry name ${JSON.stringify(name)}`, at + ENTRY_HDR_LEN);
      if (seen.has(name)) throw r.bad(`${name} appears twice`, at);
      const limit = name === IMAGE_FILE ? MAX_IMAGE_SIZE : MAX_ENTRY_SIZE;
      if (size64 > BigInt(limit)) throw r.bad(`${name} is ${size64} bytes, more than ${limit}`, at + 8);
      const size = Number(size64);
      seen.add(name);
      const f = createImageFile(partial, name);
      written.push(f);
      chunk = grow(chunk, size);
      let done = 0;
      while (done < size) {
        const n = Math.min(chunk.length, size - done);
        const part = r.readExact(chunk, n, `${name} (${size} bytes from offset ${at + ENTRY_HDR_LEN + nameLen})`);
        writeAll(f.fd, part, n, f.path);
        done += n;
      }
      files.push({ name, size });
    }
    if (!seen.has(IMAGE_FILE)) throw r.bad(`the stream holds no ${IMAGE_FILE}`, 0);
    for (const f of written) {
      try {
        fs.fsyncSync(f.fd);
      } catch (err) {
        throw fsError(err, 'fsync', f.path);
      }
    }
    closeAll(written);
    commitImageDir(dir);
    committed = true;
    return { files, bytes: r.offset };
  } finally {
    closeAll(written);
    if (!committed) {
      try {
        abortImageDir(dir);
      } catch {
        // the first error is the one to report
      }
    }
  }
}

function closeAll(files: { fd: number }[]): void {
  for (const f of files.splice(0)) fs.closeSync(f.fd);
}

// ---- files and temporary directories -------------------------------------------------

/** An output file being written as FILE.partial: commit() renames it to FILE, abort() removes it. */
export interface OutputFile {
  path: string;
  sink: ByteSink;
  commit(): void;
  abort(): void;
}

/**
 * Start writing FILE: FILE.partial is created 0600 with O_EXCL|O_NOFOLLOW (after removing
 * an old one). An existing regular FILE is refused unless `force`; a symlink or anything
 * else that is not a regular file is always refused. Call it before work that cannot be
 * undone, so that a bad FILE is refused first.
 */
export function openOutputFile(file: string, force: boolean): OutputFile {
  let st: fs.Stats | undefined;
  try {
    st = fs.lstatSync(file);
  } catch (err) {
    if (errnoOf(err) !== 'ENOENT') throw fsError(err, 'lstat', file);
  }
  if (st?.isSymbolicLink()) throw new CkptError('USAGE', `${file} is a symbolic link; refusing to write through it`, { path: file });
  if (st && !st.isFile()) throw new CkptError('USAGE', `${file} exists and is not a regular file`, { path: file });
  if (st && !force) throw new CkptError('IMAGE_EXISTS', `${file} already exists (use --force to overwrite)`, { path: file });
  const partial = file + '.partial';
  const c = fs.constants;
  try {
    fs.rmSync(partial, { force: true });
  } catch (err) {
    throw fsError(err, 'rm', partial);
  }
  let fd: number;
  try {
    fd = fs.openSync(partial, c.O_WRONLY | c.O_CREAT | c.O_EXCL | c.O_NOFOLLOW, 0o600);
  } catch (err) {
    throw fsError(err, 'open', partial);
  }
  const close = () => {
    if (fd >= 0) {
      const f = fd;
      fd = -1;
      fs.closeSync(f);
    }
  };
  try {
    fs.fchmodSync(fd, 0o600); // whatever the umask
  } catch (err) {
    close();
    fs.rmSync(partial, { force: true });
    throw fsError(err, 'fchmod', partial);
  }
  return {
    path: file,
    sink: fdSink(fd, partial),
    commit() {
      try {
        fs.fsyncSync(fd);
      } catch (err) {
        throw fsError(err, 'fsync', partial);
      }
      close();
      try {
        fs.renameSync(partial, file);
      } catch (err) {
        throw fsError(err, 'rename', partial);
      }
    },
    abort() {
      try {
        close();
      } finally {
        fs.rmSync(partial, { force: true });
      }
    },
  };
}

/** Pack `dir` into `file` (through FILE.partial, see openOutputFile). */
export function packImageToFile(dir: string, file: string, opts: { force?: boolean } = {}): PackResult {
  openImageDir(dir); // refuse a non-image before touching FILE
  const out = openOutputFile(file, opts.force ?? false);
  try {
    const r = packImage(dir, out.sink);
    out.commit();
    return r;
  } catch (err) {
    try {
      out.abort();
    } catch {
      // report the first error
    }
    throw err;
  }
}

/** Unpack the stream in `file` into `dir`. */
export function unpackImageFromFile(file: string, dir: string, opts: { force?: boolean } = {}): PackResult {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') throw new CkptError('NO_IMAGE', `no image at ${file}: No such file or directory`, { path: file });
    throw fsError(err, 'open', file);
  }
  try {
    if (fs.fstatSync(fd).isDirectory()) {
      throw new CkptError('USAGE', `${file} is a directory, not an image stream`, { path: file });
    }
    return unpackImage(fdSource(fd, file), dir, { force: opts.force, label: file });
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * A private temporary directory (0700) for an image on its way through a stream: on
 * /dev/shm when it is a writable directory (memory, not disk), else os.tmpdir().
 */
export function makeStreamTempDir(): string {
  const bases = ['/dev/shm', os.tmpdir()];
  let last: unknown;
  for (const base of bases) {
    try {
      if (!fs.statSync(base).isDirectory()) continue;
      fs.accessSync(base, fs.constants.W_OK | fs.constants.X_OK);
      const dir = fs.mkdtempSync(path.join(base, 'ckpt-stream-'));
      fs.chmodSync(dir, 0o700);
      return dir;
    } catch (err) {
      last = err;
    }
  }
  throw fsError(last, 'mkdtemp', path.join(os.tmpdir(), 'ckpt-stream-XXXXXX'));
}

/** Remove a temporary directory made by makeStreamTempDir; never throws. */
export function removeStreamTempDir(dir: string): void {
  try {
    fs.rmSync(dir, { recursive: true, force: true });
  } catch {
    // best effort: nothing to report it to
  }
}
