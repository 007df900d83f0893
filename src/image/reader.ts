/**
 * Parse a whole metadata file into records. Every length is checked against what holds it
 * before use; nothing is allocated beyond the file itself; every problem is one
 * CkptError('BAD_IMAGE') naming the file, the absolute offset, the record type and what.
 */
import * as fs from 'node:fs';
import { CkptError } from '../errors.js';
import { errnoOf, fsError } from './fserror.js';
import {
  END, EM_X86_64, FORMAT_VERSION_MAJOR, FORMAT_VERSION_MINOR, HEADER, IMAGE_MAGIC, IMAGE_SCHEMAS,
  PAGE_SIZE, TOOL, UTS_RELEASE, archName, type ImageInfo,
} from './header.js';
import { Content, RecordFault, decodeRecordHeader, faultError } from './record.js';
import { Registry, bindSchema, childrenOf, get, type ImageRecord } from './registry.js';
import { decodeName } from './schema.js';

/** A metadata file larger than this is refused before it is read. */
/** Parsing costs about ten times the file in heap: 64 MiB of metadata is far above any real process. */
export const MAX_IMAGE_SIZE = 64 * 1024 * 1024;
/** ARRAY records nest at most this deep. */
export const MAX_DEPTH = 8;

export interface ReadOptions {
  /** Named in messages; readImage() sets it to the path. */
  file?: string;
  /** What this machine needs; defaults: x86_64, 4096. */
  arch?: number;
  pageSize?: number;
  /** Skip the arch and page size checks (to show a foreign image). */
  anyHost?: boolean;
}

export interface Image {
  info: ImageInfo;
  header: ImageRecord;
  /** The top-level records between HEADER and END, in file order. */
  records: ImageRecord[];
  registry: Registry;
}

interface Ctx {
  buf: Buffer;
  reg: Registry;
  file: string | undefined;
}

function fail(ctx: Ctx, fault: RecordFault, top = false): CkptError {
  const label = fault.type === undefined ? undefined : ctx.reg.label(fault.type);
  const f = top && fault.truncated ? new RecordFault(fault.offset, fault.type, `image truncated: ${fault.what}`) : fault;
  return faultError(f, label, ctx.file);
}

function imageError(ctx: Ctx, offset: number, what: string): CkptError {
  const where = ctx.file === undefined ? 'bad image' : `bad image ${ctx.file}`;
  return new CkptError('BAD_IMAGE', `${where}: ${what}`, { offset, ...(ctx.file === undefined ? {} : { path: ctx.file }) });
}

function parseRecord(ctx: Ctx, at: number, end: number, depth: number, top: boolean): ImageRecord {
  const h = decodeRecordHeader(ctx.buf, at, end);
  if (h instanceof RecordFault) throw fail(ctx, h, top);
  const schema = ctx.reg.get(h.type);
  const raw = ctx.buf.subarray(at, at + h.len);
  const rec: ImageRecord = { type: h.type, offset: at, content: h.content, fields: {}, raw };
  if (schema !== undefined) {
    if (schema.content !== h.content) {
      throw fail(ctx, new RecordFault(at, h.type, `content is ${Content[h.content]}, a ${schema.name} record holds ${Content[schema.content]}`));
    }
    const fault = bindSchema(rec, schema, h.hdrlen);
    if (fault !== undefined) throw fail(ctx, fault);
  }
  const start = at + h.hdrlen;
  const stop = start + h.contentLen;
  switch (h.content) {
    case Content.ARRAY:
      if (depth >= MAX_DEPTH) throw fail(ctx, new RecordFault(at, h.type, `records nested deeper than ${MAX_DEPTH}`));
      rec.children = parseRecords(ctx, start, stop, depth + 1);
      break;
    case Content.DATA:
      rec.data = ctx.buf.subarray(start, stop);
      break;
    case Content.NAME: {
      const name = decodeName(ctx.buf.subarray(start, stop));
      if (name === undefined) throw fail(ctx, new RecordFault(at, h.type, 'name is not valid utf-8'));
      rec.name = name;
      break;
    }
  }
  return rec;
}

/** The records that exactly fill [start, end). */
function parseRecords(ctx: Ctx, start: number, end: number, depth: number): ImageRecord[] {
  const out: ImageRecord[] = [];
  for (let at = start; at < end; at += out[out.length - 1].raw.length) {
    out.push(parseRecord(ctx, at, end, depth, false));
  }
  return out;
}

/**
 * Records that exactly fill buf[start, end), recursively: for a file without HEADER/END
 * (or a part of one). Offsets in errors are offsets in `buf`.
 */
export function parseRecordList(buf: Buffer, registry: Registry, start = 0, end = buf.length, file?: string): ImageRecord[] {
  return parseRecords({ buf, reg: registry, file }, start, end, 0);
}

function headerInfo(ctx: Ctx, header: ImageRecord, opts: ReadOptions): ImageInfo {
  const f = get(header, HEADER);
  const have = `${f.version_major}.${f.version_minor}`;
  if (f.version_major > FORMAT_VERSION_MAJOR ||
      (f.version_major === FORMAT_VERSION_MAJOR && f.version_minor > FORMAT_VERSION_MINOR)) {
    const mine = f.version_major === FORMAT_VERSION_MAJOR ? `${FORMAT_VERSION_MAJOR}.${FORMAT_VERSION_MINOR}` : `${FORMAT_VERSION_MAJOR}.x`;
    throw imageError(ctx, 0, `image format ${have} is newer than this ckpt (${mine})`);
  }
  if (f.version_major < FORMAT_VERSION_MAJOR) {
    throw imageError(ctx, 0, `image format ${have} is older than this ckpt reads (${FORMAT_VERSION_MAJOR}.x)`);
  }
  if (!opts.anyHost) {
    const arch = opts.arch ?? EM_X86_64;
    if (f.arch !== arch) {
      throw imageError(ctx, 0, `image is for arch ${f.arch} (${archName(f.arch)}), this machine is ${arch} (${archName(arch)})`);
    }
    const pageSize = opts.pageSize ?? PAGE_SIZE;
    if (f.page_size !== pageSize) {
      throw imageError(ctx, 0, `image page size is ${f.page_size}, this machine's is ${pageSize}`);
    }
  }
  return {
    versionMajor: f.version_major,
    versionMinor: f.version_minor,
    arch: f.arch,
    pageSize: f.page_size,
    createdNs: f.created_ns,
    utsRelease: childrenOf(header, UTS_RELEASE)[0]?.name ?? '',
    tool: childrenOf(header, TOOL)[0]?.name ?? '',
  };
}

/** Parse a whole ckpt.img held in memory: HEADER, records, END, nothing after. */
export function parseImage(buf: Buffer, registry: Registry, opts: ReadOptions = {}): Image {
  const ctx: Ctx = { buf, reg: registry.with(IMAGE_SCHEMAS), file: opts.file };
  const magicAt = HEADER.layout[0].offset;
  const magic = buf.subarray(magicAt, magicAt + IMAGE_MAGIC.length);
  if (!magic.equals(IMAGE_MAGIC)) {
    const saw = buf.length < magicAt + IMAGE_MAGIC.length ? `file is ${buf.length} bytes` : `magic ${magic.toString('hex')}`;
    throw imageError(ctx, 0, `not a ckpt image (${saw}, expected ${IMAGE_MAGIC.toString('hex')} "CKPTIMG\\0")`);
  }
  const header = parseRecord(ctx, 0, buf.length, 0, true);
  if (header.type !== HEADER.type) {
    throw fail(ctx, new RecordFault(0, header.type, 'the first record is not a header'));
  }
  const info = headerInfo(ctx, header, opts);
  const records: ImageRecord[] = [];
  let at = header.raw.length;
  for (;;) {
    if (at === buf.length) {
      throw imageError(ctx, at, `image truncated: no END record after ${records.length + 1} records`);
    }
    const rec = parseRecord(ctx, at, buf.length, 0, true);
    if (rec.type === HEADER.type) throw fail(ctx, new RecordFault(at, rec.type, 'a second header'));
    if (rec.type === END.type) {
      const n = get(rec, END).records;
      if (n !== records.length + 1) {
        throw fail(ctx, new RecordFault(at, rec.type, `END counts ${n} records, the file holds ${records.length + 1}`));
      }
      const after = at + rec.raw.length;
      if (after !== buf.length) throw imageError(ctx, after, `${buf.length - after} bytes after the END record`);
      return { info, header, records, registry: ctx.reg };
    }
    records.push(rec);
    at += rec.raw.length;
  }
}

/** Read and parse a ckpt.img file (not following a symlink; bounded by MAX_IMAGE_SIZE). */
export function readImage(path: string, registry: Registry, opts: ReadOptions = {}): Image {
  const file = opts.file ?? path;
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO planted in an image directory must not block the open.
    fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') throw new CkptError('NO_IMAGE', `no image at ${path}: No such file or directory`, { path });
    if (errnoOf(err) === 'ELOOP') throw new CkptError('BAD_IMAGE', `bad image ${file}: is a symbolic link`, { path, offset: 0 });
    throw fsError(err, 'open', path);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new CkptError('BAD_IMAGE', `bad image ${file}: not a regular file`, { path, offset: 0 });
    if (st.size > MAX_IMAGE_SIZE) {
      throw new CkptError('BAD_IMAGE', `bad image ${file}: ${st.size} bytes, more than the ${MAX_IMAGE_SIZE} a metadata file may hold`, {
        path, offset: 0,
      });
    }
    const buf = Buffer.alloc(st.size);
    let got = 0;
    while (got < buf.length) {
      const n = fs.readSync(fd, buf, got, buf.length - got, got);
      if (n === 0) break;
      got += n;
    }
    return parseImage(buf.subarray(0, got), registry, { ...opts, file });
  } catch (err) {
    if (err instanceof CkptError) throw err;
    throw fsError(err, 'read', path);
  } finally {
    fs.closeSync(fd);
  }
}
