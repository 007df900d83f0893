/**
 * Schema-driven typed records. A kind declares its record once:
 *
 *   export const TASK = defineRecord({
 *     type: 0x0101, name: 'task', content: Content.ARRAY,
 *     fields: { pid: 'u32', comm: 'str16', start_time: 'u64', start: 'addr' },
 *   } as const);
 *
 * and gets encode(TASK, {...}) and get(rec, TASK) typed from that one declaration.
 * Fixed fields are laid out in declaration order, each naturally aligned as in a C struct.
 *
 * Compatibility (why hdrlen exists): a reader decodes the fields it knows that lie within
 * the record's hdrlen; a field beyond hdrlen (older writer) reads as 0 / 0n / zero bytes /
 * ''; fixed bytes beyond what the reader knows (newer writer) are skipped. So a schema may
 * only grow by appending fields; never reorder, retype or remove one.
 */
import { CkptError } from '../errors.js';
import { Content, RECORD_HDR_LEN, RecordFault, align8, encodeRecord } from './record.js';

/** 'bytesN': N raw bytes (Buffer). 'strN': N bytes of NUL-padded utf-8 (string). */
export type FieldKind =
  | 'u8' | 'u16' | 'u32' | 'i32' | 'u64' | 'i64' | 'addr'
  | `bytes${number}` | `str${number}`;

export type FieldValue<K extends FieldKind> =
  K extends 'u64' | 'i64' ? bigint
  : K extends `bytes${number}` ? Buffer
  : K extends `str${number}` ? string
  : number;

export type AnyFieldValue = number | bigint | Buffer | string;

export type FieldKinds = { readonly [name: string]: FieldKind };

export interface FieldLayout {
  readonly name: string;
  readonly kind: FieldKind;
  /** Offset from the start of the record (the fixed area starts at 24). */
  readonly offset: number;
  readonly size: number;
}

export interface RecordSchema<F extends FieldKinds = FieldKinds, C extends Content = Content> {
  readonly type: number;
  readonly name: string;
  readonly content: C;
  readonly fields: F;
  readonly layout: readonly FieldLayout[];
  /** 24 + the fixed fields rounded up to 8: what this version writes. */
  readonly hdrlen: number;
}

export type AnySchema = RecordSchema<FieldKinds, Content>;

export type FieldsOf<S extends AnySchema> = { -readonly [K in keyof S['fields']]: FieldValue<S['fields'][K]> };

/** What encode() takes as content for each content kind. */
export type ContentArg<C extends Content> =
  C extends Content.ARRAY ? readonly Buffer[]
  : C extends Content.DATA ? Buffer
  : C extends Content.NAME ? string
  : undefined;

const MAX_BYTES_FIELD = 65536;

interface KindInfo {
  size: number;
  align: number;
}

function kindInfo(kind: string): KindInfo | undefined {
  switch (kind) {
    case 'u8': return { size: 1, align: 1 };
    case 'u16': return { size: 2, align: 2 };
    case 'u32': case 'i32': return { size: 4, align: 4 };
    case 'u64': case 'i64': case 'addr': return { size: 8, align: 8 };
  }
  const m = /^(?:bytes|str)([1-9][0-9]*)$/.exec(kind);
  if (m === null) return undefined;
  const n = Number(m[1]);
  return n <= MAX_BYTES_FIELD ? { size: n, align: 1 } : undefined;
}

export function defineRecord<const F extends FieldKinds, const C extends Content>(def: {
  readonly type: number;
  readonly name: string;
  readonly content: C;
  readonly fields: F;
}): RecordSchema<F, C> {
  const { type, name, content, fields } = def;
  if (!Number.isInteger(type) || type < 0 || type > 0xffff) {
    throw new CkptError('INTERNAL', `schema ${name}: type ${type} is not a u16`);
  }
  if (!(content in Content)) throw new CkptError('INTERNAL', `schema ${name}: unknown content kind ${content}`);
  const layout: FieldLayout[] = [];
  let at = RECORD_HDR_LEN;
  for (const [field, kind] of Object.entries(fields)) {
    const info = kindInfo(kind);
    if (info === undefined) throw new CkptError('INTERNAL', `schema ${name}: field ${field} has unknown kind '${kind}'`);
    at = Math.ceil(at / info.align) * info.align;
    layout.push({ name: field, kind, offset: at, size: info.size });
    at += info.size;
  }
  return Object.freeze({ type, name, content, fields, layout: Object.freeze(layout), hdrlen: align8(at) });
}

// ---- encode ----

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const LONE_SURROGATE = /\p{Cs}/u;

function bad(schema: AnySchema, field: string, why: string): CkptError {
  return new CkptError('INTERNAL', `encode ${schema.name}: field ${field} ${why}`);
}

function intRange(kind: string): [number, number] {
  switch (kind) {
    case 'u8': return [0, 0xff];
    case 'u16': return [0, 0xffff];
    case 'u32': return [0, 0xffffffff];
    case 'i32': return [-0x80000000, 0x7fffffff];
    default: return [0, Number.MAX_SAFE_INTEGER]; // addr
  }
}

/**
 * 64-bit fields go through a DataView (V8's own code) and addrs as two u32:
 * Buffer's BigInt writers and readers are JavaScript that allocates a BigInt
 * per step, ~2 us a field in a CLI dump's cold code (its VMA records).
 */
const TWO_32 = 2 ** 32;

function writeField(schema: AnySchema, out: Buffer, view: DataView, f: FieldLayout, v: unknown): void {
  const at = f.offset - RECORD_HDR_LEN;
  const kind = f.kind;
  if (kind === 'u64' || kind === 'i64') {
    if (typeof v !== 'bigint') throw bad(schema, f.name, `must be a bigint, got ${typeof v}`);
    if (kind === 'u64' ? BigInt.asUintN(64, v) !== v : BigInt.asIntN(64, v) !== v) {
      throw bad(schema, f.name, `value ${v} does not fit ${kind}`);
    }
    if (kind === 'u64') view.setBigUint64(at, v, true);
    else view.setBigInt64(at, v, true);
    return;
  }
  if (kind.startsWith('bytes')) {
    if (!(v instanceof Uint8Array)) throw bad(schema, f.name, 'must be a Buffer');
    if (v.length !== f.size) throw bad(schema, f.name, `must be ${f.size} bytes, got ${v.length}`);
    out.set(v, at);
    return;
  }
  if (kind.startsWith('str')) {
    if (typeof v !== 'string') throw bad(schema, f.name, `must be a string, got ${typeof v}`);
    if (LONE_SURROGATE.test(v)) throw bad(schema, f.name, 'is not well-formed unicode');
    const b = Buffer.from(v, 'utf8');
    if (b.length > f.size) throw bad(schema, f.name, `is ${b.length} bytes of utf-8, the field holds ${f.size}`);
    if (b.includes(0)) throw bad(schema, f.name, 'holds a NUL');
    b.copy(out, at);
    return;
  }
  if (typeof v !== 'number' || !Number.isInteger(v)) throw bad(schema, f.name, `must be an integer number, got ${String(v)}`);
  const [lo, hi] = intRange(kind);
  if (v < lo || v > hi) throw bad(schema, f.name, `value ${v} does not fit ${kind}`);
  switch (kind) {
    case 'u8': out.writeUInt8(v, at); break;
    case 'u16': out.writeUInt16LE(v, at); break;
    case 'u32': out.writeUInt32LE(v, at); break;
    case 'i32': out.writeInt32LE(v, at); break;
    default: // addr, a safe integer
      out.writeUInt32LE(v % TWO_32, at);
      out.writeUInt32LE(Math.floor(v / TWO_32), at + 4);
  }
}

export function encodeFields(schema: AnySchema, fields: Readonly<Record<string, unknown>>): Buffer {
  const out = Buffer.alloc(schema.hdrlen - RECORD_HDR_LEN);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (const f of schema.layout) {
    if (!Object.hasOwn(fields, f.name)) throw bad(schema, f.name, 'is missing');
    writeField(schema, out, view, f, fields[f.name]);
  }
  for (const k of Object.keys(fields)) {
    if (!Object.hasOwn(schema.fields, k)) throw bad(schema, k, 'is not in the schema');
  }
  return out;
}

function encodeContent(schema: AnySchema, content: unknown): Buffer {
  const why = (want: string) =>
    new CkptError('INTERNAL', `encode ${schema.name}: content must be ${want}, got ${describe(content)}`);
  switch (schema.content) {
    case Content.VOID:
      if (content !== undefined) throw why('absent (VOID)');
      return Buffer.alloc(0);
    case Content.DATA:
      if (!(content instanceof Uint8Array)) throw why('a Buffer (DATA)');
      return Buffer.from(content.buffer, content.byteOffset, content.byteLength);
    case Content.NAME:
      if (typeof content !== 'string') throw why('a string (NAME)');
      if (LONE_SURROGATE.test(content)) throw why('well-formed unicode');
      return Buffer.from(content, 'utf8');
    case Content.ARRAY: {
      if (!Array.isArray(content)) throw why('an array of encoded records (ARRAY)');
      for (const child of content as unknown[]) {
        if (!(child instanceof Uint8Array) || child.length < RECORD_HDR_LEN || child.length % 8 !== 0 ||
            Buffer.from(child.buffer, child.byteOffset, child.byteLength).readBigUInt64LE(0) !== BigInt(child.length)) {
          throw why('an array of encoded records (ARRAY)');
        }
      }
      return Buffer.concat(content as Buffer[]);
    }
  }
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (Buffer.isBuffer(v)) return 'a Buffer';
  if (Array.isArray(v)) return 'an array';
  return typeof v;
}

/** One whole record. Throws CkptError('INTERNAL') on a value that does not fit its field. */
export function encode<S extends AnySchema>(
  schema: S,
  fields: FieldsOf<S>,
  ...content: S['content'] extends Content.VOID ? [] | [undefined] : [ContentArg<S['content']>]
): Buffer {
  const fixed = encodeFields(schema, fields as Record<string, unknown>);
  return encodeRecord(schema.type, schema.content, fixed, encodeContent(schema, content[0]));
}

// ---- decode ----

/**
 * The fields `schema` knows, read from the record at `at` whose header says `hdrlen`.
 * A field beyond hdrlen reads as zero. An addr above 2^53 or a strN that is not utf-8
 * is a fault at the record's offset.
 */
export function decodeFields(
  schema: AnySchema, buf: Buffer, at: number, hdrlen: number,
): Record<string, AnyFieldValue> | RecordFault {
  const out: Record<string, AnyFieldValue> = {};
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  for (const f of schema.layout) {
    const present = f.offset + f.size <= hdrlen;
    const p = at + f.offset;
    switch (f.kind) {
      case 'u8': out[f.name] = present ? buf.readUInt8(p) : 0; break;
      case 'u16': out[f.name] = present ? buf.readUInt16LE(p) : 0; break;
      case 'u32': out[f.name] = present ? buf.readUInt32LE(p) : 0; break;
      case 'i32': out[f.name] = present ? buf.readInt32LE(p) : 0; break;
      case 'u64': out[f.name] = present ? view.getBigUint64(p, true) : 0n; break;
      case 'i64': out[f.name] = present ? view.getBigInt64(p, true) : 0n; break;
      case 'addr': {
        if (!present) { out[f.name] = 0; break; }
        const hi = buf.readUInt32LE(p + 4);
        if (hi >= 2 ** 21) {
          return new RecordFault(at, schema.type, `field ${f.name} = 0x${buf.readBigUInt64LE(p).toString(16)} is above 2^53`);
        }
        out[f.name] = hi * TWO_32 + buf.readUInt32LE(p);
        break;
      }
      default:
        if (f.kind.startsWith('bytes')) {
          // A copy: the caller may keep it after the file buffer is gone.
          out[f.name] = present ? Buffer.from(buf.subarray(p, p + f.size)) : Buffer.alloc(f.size);
        } else {
          if (!present) { out[f.name] = ''; break; }
          const raw = buf.subarray(p, p + f.size);
          const nul = raw.indexOf(0);
          try {
            out[f.name] = utf8.decode(nul < 0 ? raw : raw.subarray(0, nul));
          } catch {
            return new RecordFault(at, schema.type, `field ${f.name} is not valid utf-8`);
          }
        }
    }
  }
  return out;
}

/** Decode a NAME content; undefined if it is not valid utf-8. */
export function decodeName(bytes: Buffer): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}
