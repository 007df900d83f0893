/**
 * Decoded records as plain JSON-able objects, for `ckpt show --json`.
 *  - addr, u8..i32: number; u64/i64: number when it is a safe integer, else a decimal string
 *  - bytesN: hex string; strN: string; DATA content: hex string; NAME content: string
 *  - children grouped by schema name ('type 0x0abc' for a type the reader does not know),
 *    each group in file order.
 */
import { archName } from './header.js';
import type { Image } from './reader.js';
import type { ImageRecord, Registry } from './registry.js';
import type { AnyFieldValue, AnySchema } from './schema.js';

export interface RecordView {
  record: string;
  offset: number;
  fields?: Record<string, number | string>;
  name?: string;
  data?: string;
  children?: Record<string, RecordView[]>;
  /** A record of a type this ckpt does not know: kept, not decoded. */
  unknown?: true;
  len?: number;
}

export function viewValue(v: AnyFieldValue): number | string {
  if (typeof v === 'bigint') {
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
  }
  if (Buffer.isBuffer(v)) return v.toString('hex');
  return v;
}

function viewFields(schema: AnySchema, rec: ImageRecord): Record<string, number | string> {
  const out: Record<string, number | string> = {};
  for (const f of schema.layout) out[f.name] = viewValue(rec.fields[f.name]);
  return out;
}

/** Group records by schema name, keeping file order within a group. */
export function viewGroups(recs: readonly ImageRecord[], registry: Registry): Record<string, RecordView[]> {
  const out: Record<string, RecordView[]> = {};
  for (const r of recs) (out[registry.label(r.type)] ??= []).push(viewRecord(r, registry));
  return out;
}

export function viewRecord(rec: ImageRecord, registry: Registry): RecordView {
  const schema = rec.schema === undefined ? undefined : registry.get(rec.type);
  if (schema === undefined) {
    return { record: registry.label(rec.type), offset: rec.offset, unknown: true, len: rec.raw.length };
  }
  const v: RecordView = { record: schema.name, offset: rec.offset };
  if (schema.layout.length > 0) v.fields = viewFields(schema, rec);
  if (rec.name !== undefined) v.name = rec.name;
  if (rec.data !== undefined) v.data = rec.data.toString('hex');
  if (rec.children !== undefined) v.children = viewGroups(rec.children, registry);
  return v;
}

export interface ImageView {
  version: string;
  arch: number;
  arch_name: string;
  page_size: number;
  created_ns: number | string;
  uts_release: string;
  tool: string;
  records: Record<string, RecordView[]>;
}

export function viewImage(image: Image): ImageView {
  const i = image.info;
  return {
    version: `${i.versionMajor}.${i.versionMinor}`,
    arch: i.arch,
    arch_name: archName(i.arch),
    page_size: i.pageSize,
    created_ns: viewValue(i.createdNs),
    uts_release: i.utsRelease,
    tool: i.tool,
    records: viewGroups(image.records, image.registry),
  };
}
