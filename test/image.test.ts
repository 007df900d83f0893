/**
 * The image codec: records, schemas, the reader, the JSON view. Pure: bytes in, bytes out.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CkptError } from '../src/errors.js';
import {
  Content, END, HEADER, IMAGE_MAGIC, Registry, TOOL, UTS_RELEASE,
  childOf, childrenOf, decodeRecordHeader, defineRecord, encode, encodeHeader, encodeRecord, get, is,
  maybeChildOf, parseImage, parseRecordList, resealRecord, viewImage,
  type FieldsOf, type ImageRecord, type ImageHeaderInput,
} from '../src/image/index.js';

// ---- fixture schemas, as a kind would declare them ----

const TASK = defineRecord({
  type: 0x0101,
  name: 'task',
  content: Content.ARRAY,
  fields: {
    pid: 'u32', comm: 'str16', start_time: 'u64', start: 'addr', flags: 'u8', nice: 'i32',
    delta: 'i64', sig: 'u16', cookie: 'bytes4',
  },
} as const);

const VMA = defineRecord({
  type: 0x0102,
  name: 'vma',
  content: Content.VOID,
  fields: { start: 'addr', end: 'addr', prot: 'u32', flags: 'u32', pgoff: 'u64' },
} as const);

const REGS = defineRecord({ type: 0x0103, name: 'regs', content: Content.DATA, fields: {} } as const);
const EXE = defineRecord({ type: 0x0104, name: 'exe', content: Content.NAME, fields: { mnt_id: 'u32' } } as const);

const REG = new Registry([TASK, VMA, REGS, EXE]);

const HDR: ImageHeaderInput = { utsRelease: '6.18.0-test', tool: 'ckpt 0.1.0', createdNs: 1_700_000_000_123_456_789n };

const taskFields: FieldsOf<typeof TASK> = {
  pid: 1234, comm: 'sleep', start_time: 0xffff_ffff_ffff_fff0n, start: 0x7fff_f000_0000, flags: 0xff,
  nice: -20, delta: -(2n ** 63n), sig: 65535, cookie: Buffer.from('deadbeef', 'hex'),
};
const vma1: FieldsOf<typeof VMA> = { start: 0x400000, end: 0x401000, prot: 5, flags: 2, pgoff: 0n };
const vma2: FieldsOf<typeof VMA> = { start: 0x7ffd_0000_0000, end: 0x7ffd_0002_1000, prot: 3, flags: 0x22, pgoff: 42n };

/** A whole ckpt.img: HEADER, recs, END. */
function image(recs: Buffer[], header: Buffer = encodeHeader(HDR)): Buffer {
  return Buffer.concat([header, ...recs, encode(END, { records: recs.length + 1 })]);
}

function unknownRec(type: number, body = Buffer.from('opaque!')): Buffer {
  return encodeRecord(type, Content.DATA, Buffer.alloc(12, 0xab), body);
}

function sampleTask(): Buffer {
  return encode(TASK, taskFields, [
    encode(VMA, vma1),
    encode(VMA, vma2),
    unknownRec(0x0999),
    encode(REGS, {}, Buffer.from('0102030405', 'hex')),
    encode(EXE, { mnt_id: 7 }, '/usr/bin/sleep ✓'),
  ]);
}

function sample(): Buffer {
  return image([sampleTask(), unknownRec(0x0998, Buffer.alloc(0)), encode(VMA, vma1)]);
}

function badImage(fn: () => unknown): CkptError {
  try {
    fn();
  } catch (err) {
    if (err instanceof CkptError && err.code === 'BAD_IMAGE') return err;
    throw new assert.AssertionError({ message: `expected BAD_IMAGE, got ${(err as Error)?.stack ?? String(err)}` });
  }
  throw new assert.AssertionError({ message: 'expected BAD_IMAGE, nothing thrown' });
}

/** Re-encode a decoded record from its fields and content (opaque ones as they were). */
function reencode(rec: ImageRecord, reg: Registry): Buffer {
  const s = reg.get(rec.type);
  if (s === undefined) return rec.raw;
  const content = rec.children?.map((c) => reencode(c, reg)) ?? rec.data ?? rec.name;
  return encode(s, rec.fields as never, content as never);
}

// ---- record framing ----

test('record header layout: len, hdrlen, type, content, crc, content_len', () => {
  const r = encodeRecord(0x1234, Content.DATA, Buffer.from([1, 2, 3]), Buffer.from('hello'));
  assert.equal(r.length, 40); // 24 + 8 (3 fixed bytes padded) + 5 content padded to 8
  assert.equal(r.readBigUInt64LE(0), 40n);
  assert.equal(r.readUInt32LE(8), 32);
  assert.equal(r.readUInt16LE(12), 0x1234);
  assert.equal(r.readUInt16LE(14), Content.DATA);
  assert.equal(r.readUInt32LE(20), 5);
  assert.deepEqual([...r.subarray(24, 32)], [1, 2, 3, 0, 0, 0, 0, 0]);
  assert.equal(r.subarray(32, 37).toString(), 'hello');
  assert.deepEqual([...r.subarray(37)], [0, 0, 0]);
  const h = decodeRecordHeader(r, 0, r.length);
  assert.deepEqual(h, { offset: 0, len: 40, hdrlen: 32, type: 0x1234, content: Content.DATA, crc: r.readUInt32LE(16), contentLen: 5 });
});

test('schema layout: fields in order, naturally aligned like a C struct', () => {
  const at = Object.fromEntries(TASK.layout.map((f) => [f.name, [f.offset, f.size]]));
  assert.deepEqual(at, {
    pid: [24, 4], comm: [28, 16], start_time: [48, 8], start: [56, 8], flags: [64, 1], nice: [68, 4],
    delta: [72, 8], sig: [80, 2], cookie: [82, 4],
  });
  assert.equal(TASK.hdrlen, 88);
  assert.equal(HEADER.hdrlen, 56);
  assert.equal(defineRecord({ type: 1, name: 'x', content: Content.VOID, fields: {} }).hdrlen, 24);
});

test('defineRecord refuses an unknown field kind or type', () => {
  for (const kind of ['u128', 'bytes0', 'bytes', 'str', 'bytes-1', 'bytes999999']) {
    assert.throws(() => defineRecord({ type: 1, name: 'x', content: Content.VOID, fields: { f: kind as 'u8' } }), { code: 'INTERNAL' });
  }
  assert.throws(() => defineRecord({ type: 0x10000, name: 'x', content: Content.VOID, fields: {} }), { code: 'INTERNAL' });
});

test('registry refuses two schemas with one type or one name', () => {
  assert.throws(() => new Registry([VMA, defineRecord({ type: VMA.type, name: 'other', content: Content.VOID, fields: {} })]), {
    code: 'INTERNAL',
  });
  assert.throws(() => new Registry([VMA, defineRecord({ type: 0x777, name: 'vma', content: Content.VOID, fields: {} })]), {
    code: 'INTERNAL',
  });
  assert.equal(new Registry([VMA, VMA]).get(VMA.type), VMA);
});

// ---- typed values ----

test('TS types are inferred from the schema', () => {
  const f = get({ type: VMA.type, offset: 0, content: Content.VOID, fields: {}, raw: encode(VMA, vma1) }, VMA);
  const start: number = f.start;
  const pgoff: bigint = f.pgoff;
  const t = taskFields;
  const comm: string = t.comm;
  const cookie: Buffer = t.cookie;
  assert.deepEqual([start, pgoff, comm, cookie.length], [0x400000, 0n, 'sleep', 4]);
  // @ts-expect-error u64 takes a bigint
  assert.throws(() => encode(VMA, { ...vma1, pgoff: 1 }), { code: 'INTERNAL' });
  // @ts-expect-error VOID takes no content
  assert.throws(() => encode(VMA, vma1, Buffer.alloc(1)), { code: 'INTERNAL' });
  // @ts-expect-error DATA takes a Buffer
  assert.throws(() => encode(REGS, {}, 'text'), { code: 'INTERNAL' });
  // @ts-expect-error a field the schema does not have
  assert.throws(() => encode(VMA, { ...vma1, bogus: 1 }), { code: 'INTERNAL' });
});

test('encode refuses a value that does not fit its field', () => {
  const F = defineRecord({
    type: 0x200, name: 'f', content: Content.VOID,
    fields: { u8: 'u8', u16: 'u16', u32: 'u32', i32: 'i32', u64: 'u64', i64: 'i64', addr: 'addr', b: 'bytes3', s: 'str4' },
  } as const);
  const ok: FieldsOf<typeof F> = { u8: 0, u16: 0, u32: 0, i32: 0, u64: 0n, i64: 0n, addr: 0, b: Buffer.alloc(3), s: '' };
  encode(F, ok);
  const cases: [string, unknown][] = [
    ['u8', 256], ['u8', -1], ['u8', 1.5], ['u16', 65536], ['u32', 2 ** 32], ['u32', NaN], ['i32', 2 ** 31], ['i32', -(2 ** 31) - 1],
    ['u64', -1n], ['u64', 2n ** 64n], ['i64', 2n ** 63n], ['i64', -(2n ** 63n) - 1n], ['addr', 2 ** 53], ['addr', -1],
    ['addr', 1n], ['b', Buffer.alloc(2)], ['b', Buffer.alloc(4)], ['b', 'abc'], ['s', 'abcde'], ['s', 'éé.'],
    ['s', 'a\0b'], ['s', '\ud800'], ['s', 3], ['u8', undefined],
  ];
  for (const [k, v] of cases) {
    assert.throws(() => encode(F, { ...ok, [k]: v } as never), { code: 'INTERNAL' }, `${k} = ${String(v)}`);
  }
  const missing: Record<string, unknown> = { ...ok };
  delete missing.u16;
  assert.throws(() => encode(F, missing as never), { code: 'INTERNAL', message: /u16 is missing/ });
  // the edges fit
  encode(F, { u8: 255, u16: 65535, u32: 2 ** 32 - 1, i32: -(2 ** 31), u64: 2n ** 64n - 1n, i64: -(2n ** 63n),
    addr: Number.MAX_SAFE_INTEGER, b: Buffer.alloc(3, 0xff), s: 'éé' });
});

test('encode checks the content kind', () => {
  assert.throws(() => encode(TASK, taskFields, [Buffer.alloc(7)]), { code: 'INTERNAL' });
  assert.throws(() => encode(TASK, taskFields, [Buffer.alloc(24)]), { code: 'INTERNAL' }); // len field says 0
  assert.throws(() => encode(EXE, { mnt_id: 1 }, Buffer.from('x') as never), { code: 'INTERNAL' });
  assert.throws(() => encode(EXE, { mnt_id: 1 }, '\udc00'), { code: 'INTERNAL' });
  assert.throws(() => encode(TASK, taskFields, undefined as never), { code: 'INTERNAL' });
});

// ---- round trips ----

test('round trip: encode → parse → the same fields and content', () => {
  const img = parseImage(sample(), REG);
  assert.equal(img.records.length, 3);
  const [task, opaque, vma] = img.records;
  assert.ok(is(task, TASK));
  assert.deepEqual(get(task, TASK), taskFields);
  assert.deepEqual(childrenOf(task, VMA).map((r) => r.fields), [vma1, vma2]);
  assert.deepEqual(childOf(task, REGS).data, Buffer.from('0102030405', 'hex'));
  const exe = childOf(task, EXE);
  assert.equal(exe.name, '/usr/bin/sleep ✓');
  assert.equal(exe.fields.mnt_id, 7);
  assert.equal(maybeChildOf(task, TASK), undefined);
  assert.deepEqual(get(vma, VMA), vma1);
  assert.deepEqual(childrenOf(img.records, VMA).map((r) => r.offset), [vma.offset]);
  assert.deepEqual(img.info, {
    versionMajor: 1, versionMinor: 0, arch: 62, pageSize: 4096, createdNs: 1_700_000_000_123_456_789n,
    utsRelease: '6.18.0-test', tool: 'ckpt 0.1.0',
  });
  assert.equal(opaque.schema, undefined);
});

test('round trip: parse → write → the same bytes', () => {
  const bytes = sample();
  const img = parseImage(bytes, REG);
  const again = Buffer.concat([reencode(img.header, img.registry), ...img.records.map((r) => reencode(r, img.registry)),
    encode(END, { records: img.records.length + 1 })]);
  assert.ok(again.equals(bytes));
});

test('round trip of every value kind at its edges', () => {
  const cases: FieldsOf<typeof TASK>[] = [
    { pid: 0, comm: '', start_time: 0n, start: 0, flags: 0, nice: 0, delta: 0n, sig: 0, cookie: Buffer.alloc(4) },
    { pid: 2 ** 32 - 1, comm: 'x'.repeat(16), start_time: 2n ** 64n - 1n, start: Number.MAX_SAFE_INTEGER, flags: 255,
      nice: -(2 ** 31), delta: 2n ** 63n - 1n, sig: 65535, cookie: Buffer.alloc(4, 0xff) },
    { pid: 1, comm: 'ünïcødé', start_time: 1n, start: 4096, flags: 1, nice: 2 ** 31 - 1, delta: -1n, sig: 1, cookie: Buffer.from('00ff00ff', 'hex') },
  ];
  for (const f of cases) {
    const recs = parseRecordList(encode(TASK, f, []), REG);
    assert.deepEqual(get(recs[0], TASK), f);
    assert.deepEqual(recs[0].children, []);
  }
});

// ---- compatibility ----

const V1 = defineRecord({ type: 0x0300, name: 'thing', content: Content.ARRAY, fields: { a: 'u32', b: 'u16' } } as const);
const V2 = defineRecord({
  type: 0x0300, name: 'thing', content: Content.ARRAY,
  fields: { a: 'u32', b: 'u16', c: 'u64', d: 'str8', e: 'bytes3', f: 'addr', g: 'u8' },
} as const);

test('a newer reader reads an older record: fields beyond hdrlen are zero', () => {
  const old = encode(V1, { a: 7, b: 9 }, [encode(VMA, vma1)]);
  assert.equal(V1.hdrlen, 32);
  const [r] = parseRecordList(old, new Registry([V2, VMA]));
  assert.deepEqual(get(r, V2), { a: 7, b: 9, c: 0n, d: '', e: Buffer.alloc(3), f: 0, g: 0 });
  assert.deepEqual(get(childOf(r, VMA), VMA), vma1);
});

test('an older reader reads a newer record: unknown fixed bytes are skipped', () => {
  const fields = { a: 7, b: 9, c: 2n ** 60n, d: 'newer', e: Buffer.from('abc'), f: 0x1000, g: 3 };
  const nu = encode(V2, fields, [encode(VMA, vma2), unknownRec(0x0fff)]);
  assert.ok(V2.hdrlen > V1.hdrlen);
  const [r] = parseRecordList(nu, new Registry([V1, VMA]));
  assert.deepEqual(get(r, V1), { a: 7, b: 9 });
  assert.deepEqual(childrenOf(r, VMA).map((c) => c.fields), [vma2]);
  assert.equal(r.children?.length, 2);
  // and get() with the newer schema reads the raw bytes of a record decoded by the older one
  assert.deepEqual(get(r, V2), fields);
});

test('unknown record types are kept opaque and skipped, at any depth', () => {
  const img = parseImage(sample(), REG);
  const [task, opaque] = img.records;
  assert.equal(opaque.type, 0x0998);
  assert.equal(opaque.schema, undefined);
  assert.deepEqual(opaque.fields, {});
  assert.equal(opaque.raw.readUInt16LE(12), 0x0998);
  const nested = task.children!.find((c) => c.type === 0x0999)!;
  assert.equal(nested.schema, undefined);
  assert.equal(nested.data?.toString(), 'opaque!');
  // a reader that knows nothing still reads the whole image
  const bare = parseImage(sample(), new Registry([]));
  assert.equal(bare.records.length, 3);
  assert.ok(bare.records.every((r) => r.schema === undefined));
  // ... and get() still decodes from the raw bytes
  assert.deepEqual(get(bare.records[2], VMA), vma1);
});

test('typed accessors say what they expected and what they found', () => {
  const img = parseImage(sample(), REG);
  const vma = img.records[2];
  const e = badImage(() => get(vma, TASK));
  assert.equal(e.message, `expected task record at offset ${vma.offset}, found type 0x0102 (vma)`);
  assert.equal(e.data.offset, vma.offset);
  assert.equal(is(vma, TASK), false);
  assert.match(badImage(() => childOf(img.records[0], TASK)).message, /task record at offset \d+ holds no task record/);
  assert.match(badImage(() => childOf(img.records[0], VMA)).message, /holds 2 vma records, expected one/);
});

// ---- the file header ----

function header(over: Partial<FieldsOf<typeof HEADER>>, children = [encode(UTS_RELEASE, {}, 'r'), encode(TOOL, {}, 't')]): Buffer {
  return encode(HEADER, {
    magic: IMAGE_MAGIC, version_major: 1, version_minor: 0, arch: 62, page_size: 4096, created_ns: 1n, ...over,
  }, children);
}

test('header: accepted versions and options', () => {
  assert.equal(parseImage(image([], header({}, [])), REG).info.utsRelease, '');
  assert.equal(parseImage(image([], header({ arch: 183 })), REG, { anyHost: true }).info.arch, 183);
  assert.equal(parseImage(image([], header({ page_size: 16384 })), REG, { pageSize: 16384 }).info.pageSize, 16384);
  // a header child this version does not know is skipped
  assert.equal(parseImage(image([], header({}, [unknownRec(0x00fe), encode(TOOL, {}, 'x')])), REG).info.tool, 'x');
});

// ---- corruption: every case one BAD_IMAGE with the offset ----

/** Patch a copy of `buf` and fix the CRC of the records at `reseal` (children first). */
function patched(buf: Buffer, fn: (b: Buffer) => void, reseal: number[] = []): Buffer {
  const b = Buffer.from(buf);
  fn(b);
  for (const at of reseal) resealRecord(b, at);
  return b;
}

const H = encodeHeader(HDR).length; // offset of the first record after the header
const HDR_CHILD = 56; // offset of the header's first child

interface Bad {
  name: string;
  bytes: () => Buffer;
  message: RegExp;
  offset: number;
  opts?: Parameters<typeof parseImage>[2];
}

const VMA_AT = H;
const vmaOnly = () => image([encode(VMA, vma1)]);
const exeOnly = (name: Buffer) => image([encodeRecord(EXE.type, Content.NAME, Buffer.alloc(8), name)]);

function nest(depth: number): Buffer {
  let r = encode(VMA, vma1);
  for (let i = 0; i < depth; i++) r = encodeRecord(0x0777, Content.ARRAY, Buffer.alloc(0), r);
  return r;
}

const badCases: Bad[] = [
  { name: 'empty file', bytes: () => Buffer.alloc(0), message: /not a ckpt image \(file is 0 bytes/, offset: 0 },
  { name: 'wrong magic', bytes: () => patched(sample(), (b) => b.write('ELF', 24)), message: /^bad image x\.img: not a ckpt image \(magic 454c46/, offset: 0 },
  { name: 'random bytes', bytes: () => Buffer.alloc(100, 0x41), message: /not a ckpt image/, offset: 0 },
  { name: 'header CRC', bytes: () => patched(sample(), (b) => { b[40] ^= 1; }), message: /^bad image x\.img: record at offset 0 \(header\): CRC mismatch/, offset: 0 },
  { name: 'record CRC', bytes: () => patched(vmaOnly(), (b) => { b[VMA_AT + 30] ^= 0x80; }), message: new RegExp(`record at offset ${VMA_AT} \\(vma\\): CRC mismatch`), offset: VMA_AT },
  { name: 'CRC of a nested record', bytes: () => patched(sample(), (b) => { b[H + TASK.hdrlen + 30] ^= 1; }, [H]), message: new RegExp(`record at offset ${H + TASK.hdrlen} \\(vma\\): CRC mismatch`), offset: H + TASK.hdrlen },
  { name: 'len below 24', bytes: () => patched(vmaOnly(), (b) => b.writeBigUInt64LE(16n, VMA_AT)), message: /\(vma\): len 16 is below 24/, offset: VMA_AT },
  { name: 'len not a multiple of 8', bytes: () => patched(vmaOnly(), (b) => b.writeBigUInt64LE(60n, VMA_AT)), message: /len 60 is not a multiple of 8/, offset: VMA_AT },
  { name: 'huge len', bytes: () => patched(vmaOnly(), (b) => b.writeBigUInt64LE(2n ** 63n, VMA_AT)), message: /image truncated: len 9223372036854775808 exceeds the \d+ bytes left/, offset: VMA_AT },
  { name: 'len past a parent', bytes: () => image([encodeRecord(0x0777, Content.ARRAY, Buffer.alloc(0), encode(VMA, vma1).subarray(0, 32))]), message: new RegExp(`record at offset ${H + 24} \\(vma\\): len 56 exceeds the 32 bytes left$`), offset: H + 24 },
  { name: 'hdrlen above len', bytes: () => patched(vmaOnly(), (b) => b.writeUInt32LE(64, VMA_AT + 8), [VMA_AT]), message: /\(vma\): bad hdrlen 64 \(len 56\)/, offset: VMA_AT },
  { name: 'hdrlen below 24', bytes: () => patched(vmaOnly(), (b) => b.writeUInt32LE(16, VMA_AT + 8), [VMA_AT]), message: /bad hdrlen 16/, offset: VMA_AT },
  { name: 'hdrlen not aligned', bytes: () => patched(vmaOnly(), (b) => b.writeUInt32LE(36, VMA_AT + 8), [VMA_AT]), message: /bad hdrlen 36/, offset: VMA_AT },
  { name: 'content_len past len', bytes: () => patched(vmaOnly(), (b) => { b.writeUInt16LE(Content.DATA, VMA_AT + 14); b.writeUInt32LE(9, VMA_AT + 20); }, [VMA_AT]), message: /content_len 9 exceeds the 0 bytes after hdrlen/, offset: VMA_AT },
  { name: 'unknown content kind', bytes: () => patched(vmaOnly(), (b) => b.writeUInt16LE(4, VMA_AT + 14), [VMA_AT]), message: /\(vma\): unknown content kind 4/, offset: VMA_AT },
  { name: 'content kind of an unknown type', bytes: () => image([patched(unknownRec(0x0abc), (b) => b.writeUInt16LE(0xffff, 14), [0])]), message: /\(type 0x0abc\): unknown content kind 65535$/, offset: H },
  { name: 'content kind not the schema\'s', bytes: () => image([encodeRecord(VMA.type, Content.DATA, Buffer.alloc(40), Buffer.from('x'))]), message: /\(vma\): content is DATA, a vma record holds VOID/, offset: H },
  { name: 'NAME not utf-8', bytes: () => exeOnly(Buffer.from([0x2f, 0xc3, 0x28])), message: /\(exe\): name is not valid utf-8/, offset: H },
  { name: 'NAME overlong utf-8', bytes: () => exeOnly(Buffer.from([0xc0, 0xaf])), message: /name is not valid utf-8/, offset: H },
  { name: 'NAME lone surrogate', bytes: () => exeOnly(Buffer.from([0xed, 0xa0, 0x80])), message: /name is not valid utf-8/, offset: H },
  { name: 'strN not utf-8', bytes: () => image([patched(encode(TASK, taskFields, []), (b) => { b[28] = 0xff; }, [0])]), message: /\(task\): field comm is not valid utf-8/, offset: H },
  { name: 'addr above 2^53', bytes: () => image([patched(encode(VMA, vma1), (b) => b.writeBigUInt64LE(2n ** 53n, 32), [0])]), message: /\(vma\): field end = 0x20000000000000 is above 2\^53/, offset: H },
  { name: 'addr of all ones', bytes: () => image([patched(encode(VMA, vma1), (b) => b.writeBigUInt64LE(2n ** 64n - 1n, 24), [0])]), message: /field start = 0xffffffffffffffff is above 2\^53/, offset: H },
  { name: 'missing END', bytes: () => sample().subarray(0, sample().length - 32), message: /image truncated: no END record after 4 records/, offset: sample().length - 32 },
  { name: 'only a header', bytes: () => encodeHeader(HDR), message: /image truncated: no END record after 1 records/, offset: H },
  { name: 'cut inside a record', bytes: () => sample().subarray(0, H + 100), message: new RegExp(`offset ${H} \\(task\\): image truncated: len \\d+ exceeds the 100 bytes left`), offset: H },
  { name: 'cut inside a record header', bytes: () => sample().subarray(0, H + 20), message: new RegExp(`offset ${H} \\(task\\): image truncated: 20 bytes left, a record header is 24`), offset: H },
  { name: 'END count', bytes: () => Buffer.concat([encodeHeader(HDR), encode(VMA, vma1), encode(END, { records: 5 })]), message: /\(end\): END counts 5 records, the file holds 2/, offset: H + 56 },
  { name: 'bytes after END', bytes: () => Buffer.concat([sample(), Buffer.alloc(8)]), message: /8 bytes after the END record/, offset: sample().length },
  { name: 'record after END', bytes: () => Buffer.concat([sample(), encode(VMA, vma1)]), message: /56 bytes after the END record/, offset: sample().length },
  { name: 'a second header', bytes: () => image([encodeHeader(HDR)]), message: /\(header\): a second header/, offset: H },
  { name: 'first record not a header', bytes: () => Buffer.concat([encodeRecord(0x0999, Content.VOID, IMAGE_MAGIC, Buffer.alloc(0)), encode(END, { records: 1 })]), message: /offset 0 \(type 0x0999\): the first record is not a header/, offset: 0 },
  { name: 'header of the wrong content', bytes: () => image([], encodeRecord(HEADER.type, Content.VOID, header({}).subarray(24, 56), Buffer.alloc(0))), message: /\(header\): content is VOID, a header record holds ARRAY/, offset: 0 },
  { name: 'major version newer', bytes: () => image([], header({ version_major: 2 })), message: /^bad image x\.img: image format 2\.0 is newer than this ckpt \(1\.x\)$/, offset: 0 },
  { name: 'minor version newer', bytes: () => image([], header({ version_minor: 1 })), message: /image format 1\.1 is newer than this ckpt \(1\.0\)$/, offset: 0 },
  { name: 'major version older', bytes: () => image([], header({ version_major: 0, version_minor: 9 })), message: /image format 0\.9 is older than this ckpt reads \(1\.x\)/, offset: 0 },
  { name: 'wrong arch', bytes: () => image([], header({ arch: 183 })), message: /image is for arch 183 \(aarch64\), this machine is 62 \(x86_64\)/, offset: 0 },
  { name: 'wrong page size', bytes: () => image([], header({ page_size: 16384 })), message: /image page size is 16384, this machine's is 4096/, offset: 0 },
  { name: 'header child not utf-8', bytes: () => image([], header({}, [encodeRecord(UTS_RELEASE.type, Content.NAME, Buffer.alloc(0), Buffer.from([0xff]))])), message: new RegExp(`offset ${HDR_CHILD} \\(uts_release\\): name is not valid utf-8`), offset: HDR_CHILD },
  { name: 'nested 9 deep', bytes: () => image([nest(9)]), message: new RegExp(`offset ${H + 8 * 24} \\(type 0x0777\\): records nested deeper than 8`), offset: H + 8 * 24 },
  { name: 'trailing garbage in a parent', bytes: () => image([encodeRecord(0x0777, Content.ARRAY, Buffer.alloc(0), Buffer.alloc(16))]), message: new RegExp(`offset ${H + 24} \\(type 0x0000\\): 16 bytes left, a record header is 24$`), offset: H + 24 },
];

for (const c of badCases) {
  test(`bad image: ${c.name}`, () => {
    const e = badImage(() => parseImage(c.bytes(), REG, { file: 'x.img', ...c.opts }));
    assert.match(e.message, c.message);
    assert.equal(e.data.offset, c.offset);
  });
}

test('nesting 8 deep is fine', () => {
  const img = parseImage(image([nest(8)]), REG);
  let r = img.records[0];
  for (let i = 0; i < 8; i++) r = r.children![0];
  assert.deepEqual(get(r, VMA), vma1);
});

test('every truncation of an image is BAD_IMAGE', () => {
  const bytes = sample();
  for (let n = 0; n < bytes.length; n++) {
    const e = badImage(() => parseImage(bytes.subarray(0, n), REG));
    assert.ok(typeof e.data.offset === 'number' && e.data.offset <= n, `cut at ${n}: offset ${e.data.offset}`);
  }
});

test('every single bit flipped is BAD_IMAGE', () => {
  const bytes = sample();
  for (let bit = 0; bit < bytes.length * 8; bit++) {
    const b = Buffer.from(bytes);
    b[bit >> 3] ^= 1 << (bit & 7);
    badImage(() => parseImage(b, REG));
  }
});

/** xorshift32: a seeded PRNG so that a failure can be replayed. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x;
  };
}

function recordOffsets(recs: readonly ImageRecord[], out: number[] = []): number[] {
  for (const r of recs) {
    if (r.children) recordOffsets(r.children, out);
    out.push(r.offset); // children before their parent: reseal order
  }
  return out;
}

test('fuzz: random header fields with valid CRCs never crash the reader', () => {
  const bytes = sample();
  const img = parseImage(bytes, REG);
  const offsets = recordOffsets([img.header, ...img.records]);
  offsets.push(bytes.length - 32); // END
  const rand = prng(0xc0ffee);
  const interesting = [0, 1, 7, 8, 23, 24, 0x7f, 0x80, 0xff, 0xffff, 0xffffffff];
  let parsed = 0;
  for (let i = 0; i < 3000; i++) {
    const b = Buffer.from(bytes);
    for (let k = 1 + (rand() % 3); k > 0; k--) {
      const at = offsets[rand() % offsets.length];
      const field = [0, 4, 8, 12, 14, 20, 24, 28, 32][rand() % 9];
      const v = rand() % 2 === 0 ? interesting[rand() % interesting.length] : rand();
      if (at + field + 4 <= b.length) {
        if (field === 12 || field === 14) b.writeUInt16LE(v & 0xffff, at + field);
        else b.writeUInt32LE(v >>> 0, at + field);
      }
    }
    for (const at of offsets) {
      try { resealRecord(b, at); } catch { /* a len past the end: leave it */ }
    }
    try {
      parseImage(b, REG);
      parsed++;
    } catch (err) {
      if (!(err instanceof CkptError) || err.code !== 'BAD_IMAGE') {
        assert.fail(`iteration ${i}: ${(err as Error)?.stack ?? String(err)}`);
      }
    }
  }
  assert.ok(parsed < 3000);
});

// ---- the JSON view ----

test('view: plain JSON, values by field kind, children grouped by schema', () => {
  const v = viewImage(parseImage(sample(), REG));
  const json = JSON.parse(JSON.stringify(v));
  assert.deepEqual(json, v);
  assert.equal(v.version, '1.0');
  assert.equal(v.arch_name, 'x86_64');
  assert.equal(v.created_ns, '1700000000123456789');
  assert.equal(v.uts_release, '6.18.0-test');
  assert.deepEqual(Object.keys(v.records), ['task', 'type 0x0998', 'vma']);
  const task = v.records.task[0];
  assert.deepEqual(task.fields, {
    pid: 1234, comm: 'sleep', start_time: '18446744073709551600', start: 0x7fff_f000_0000, flags: 255, nice: -20,
    delta: '-9223372036854775808', sig: 65535, cookie: 'deadbeef',
  });
  assert.deepEqual(Object.keys(task.children!), ['vma', 'type 0x0999', 'regs', 'exe']);
  assert.deepEqual(task.children!.vma.map((c) => c.fields), [
    { start: 0x400000, end: 0x401000, prot: 5, flags: 2, pgoff: 0 },
    { start: 0x7ffd_0000_0000, end: 0x7ffd_0002_1000, prot: 3, flags: 0x22, pgoff: 42 },
  ]);
  assert.deepEqual(task.children!.regs, [{ record: 'regs', offset: task.children!.regs[0].offset, data: '0102030405' }]);
  assert.equal(task.children!.exe[0].name, '/usr/bin/sleep ✓');
  assert.deepEqual(v.records['type 0x0998'], [{ record: 'type 0x0998', offset: v.records['type 0x0998'][0].offset, unknown: true, len: 40 }]);
});
