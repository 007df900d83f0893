/**
 * Decoded records and the typed ways to reach them: the Registry (type → schema) a reader
 * decodes with, and is / get / childrenOf / childOf for code that uses what was read.
 */
import { CkptError } from '../errors.js';
import { RecordFault, faultError, hex4, type Content } from './record.js';
import { decodeFields, type AnyFieldValue, type AnySchema, type FieldsOf } from './schema.js';

/** The schemas a reader knows, by type. */
export class Registry {
  private readonly byType = new Map<number, AnySchema>();

  constructor(schemas: Iterable<AnySchema>) {
    const names = new Set<string>();
    for (const s of schemas) {
      const had = this.byType.get(s.type);
      if (had !== undefined && had !== s) {
        throw new CkptError('INTERNAL', `record type 0x${hex4(s.type)} defined twice (${had.name}, ${s.name})`);
      }
      if (had === undefined && names.has(s.name)) throw new CkptError('INTERNAL', `record name ${s.name} defined twice`);
      this.byType.set(s.type, s);
      names.add(s.name);
    }
  }

  get(type: number): AnySchema | undefined {
    return this.byType.get(type);
  }

  /** The schema name, or 'type 0x0abc' for a type this reader does not know. */
  label(type: number): string {
    return this.byType.get(type)?.name ?? `type 0x${hex4(type)}`;
  }

  schemas(): AnySchema[] {
    return [...this.byType.values()];
  }

  with(more: Iterable<AnySchema>): Registry {
    return new Registry([...this.byType.values(), ...more]);
  }
}

/**
 * One decoded record. A record of a type the reader does not know has no `schema` and
 * empty `fields`: users skip it. `raw` is the whole record as on disk (a view, no copy).
 */
export interface ImageRecord {
  type: number;
  schema?: string;
  offset: number;
  content: Content;
  fields: Record<string, AnyFieldValue>;
  children?: ImageRecord[];
  data?: Buffer;
  name?: string;
  raw: Buffer;
}

export type TypedRecord<S extends AnySchema> = ImageRecord & { schema: S['name']; fields: FieldsOf<S> };

type Parent = ImageRecord | readonly ImageRecord[];

/** Which schema object decoded a record's fields (none for an opaque record). */
const decodedBy = new WeakMap<ImageRecord, AnySchema>();

/**
 * Decode the fields of `rec` (whose raw bytes and header say `hdrlen`) with `schema` and
 * tag the record with it. Returns a fault (offset = rec.offset) if a field is bad.
 */
export function bindSchema(rec: ImageRecord, schema: AnySchema, hdrlen: number): RecordFault | undefined {
  const fields = decodeFields(schema, rec.raw, 0, hdrlen);
  if (fields instanceof RecordFault) return new RecordFault(rec.offset, fields.type, fields.what);
  rec.schema = schema.name;
  rec.fields = fields;
  decodedBy.set(rec, schema);
  return undefined;
}

/** True if `rec` was decoded with exactly this schema (so its fields are typed by it). */
export function is<S extends AnySchema>(rec: ImageRecord, schema: S): rec is TypedRecord<S> {
  return decodedBy.get(rec) === schema;
}

function labelOf(rec: ImageRecord): string {
  return `type 0x${hex4(rec.type)}${rec.schema === undefined ? '' : ` (${rec.schema})`}`;
}

/**
 * The typed fields of `rec`; BAD_IMAGE if it is another type. A record of the right type
 * decoded with another schema (another version, or none) is read again from its raw bytes.
 */
export function get<S extends AnySchema>(rec: ImageRecord, schema: S): FieldsOf<S> {
  return asTyped(rec, schema).fields;
}

function asTyped<S extends AnySchema>(rec: ImageRecord, schema: S): TypedRecord<S> {
  if (is(rec, schema)) return rec;
  if (rec.type !== schema.type) {
    throw new CkptError('BAD_IMAGE', `expected ${schema.name} record at offset ${rec.offset}, found ${labelOf(rec)}`, {
      offset: rec.offset,
    });
  }
  const again: ImageRecord = { ...rec };
  const fault = bindSchema(again, schema, rec.raw.readUInt32LE(8));
  if (fault !== undefined) throw faultError(fault, schema.name);
  return again as TypedRecord<S>;
}

function listOf(parent: Parent): readonly ImageRecord[] {
  return Array.isArray(parent) ? parent : ((parent as ImageRecord).children ?? []);
}

/** The children of `parent` (or the records of a list) that are `schema` records, in order. */
export function childrenOf<S extends AnySchema>(parent: Parent, schema: S): TypedRecord<S>[] {
  return listOf(parent).filter((r) => r.type === schema.type).map((r) => asTyped(r, schema));
}

/** The one `schema` child of `parent`, or undefined; BAD_IMAGE if there are several. */
export function maybeChildOf<S extends AnySchema>(parent: Parent, schema: S): TypedRecord<S> | undefined {
  const found = childrenOf(parent, schema);
  if (found.length > 1) {
    throw new CkptError('BAD_IMAGE', `${where(parent)} holds ${found.length} ${schema.name} records, expected one`, {
      offset: found[1].offset,
    });
  }
  return found[0];
}

/** The one `schema` child of `parent`; BAD_IMAGE if it is missing or repeated. */
export function childOf<S extends AnySchema>(parent: Parent, schema: S): TypedRecord<S> {
  const found = maybeChildOf(parent, schema);
  if (found === undefined) {
    const offset = Array.isArray(parent) ? 0 : (parent as ImageRecord).offset;
    throw new CkptError('BAD_IMAGE', `${where(parent)} holds no ${schema.name} record`, { offset });
  }
  return found;
}

function where(parent: Parent): string {
  if (Array.isArray(parent)) return 'the image';
  const p = parent as ImageRecord;
  return `${p.schema ?? `type 0x${hex4(p.type)}`} record at offset ${p.offset}`;
}
