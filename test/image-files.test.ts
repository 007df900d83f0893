/**
 * The image on disk: ImageWriter, PagesWriter/PagesReader, the DIR.partial dance.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CkptError } from '../src/errors.js';
import {
  Content, IMAGE_FILE, ImageWriter, MAX_IMAGE_SIZE, PAGES_FILE, PAGES_HDR_SIZE, PagesReader, PagesWriter, Registry,
  abortImageDir, childrenOf, commitImageDir, createImageDir, defineRecord, encode, get, openImageDir, readImage,
} from '../src/image/index.js';

const VMA = defineRecord({
  type: 0x0102, name: 'vma', content: Content.VOID, fields: { start: 'addr', end: 'addr', pages_off: 'u64' },
} as const);
const REG = new Registry([VMA]);
const HDR = { utsRelease: os.release(), tool: 'ckpt test' };

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-image-'));
}

function mode(p: string): number {
  return fs.statSync(p).mode & 0o777;
}

function code(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof CkptError, `not a CkptError: ${(err as Error)?.stack}`);
    return { code: err.code, message: err.message };
  }
  assert.fail('nothing thrown');
}

/** A whole dump: metadata and pages into DIR.partial, then commit. */
function dump(dir: string, pages: Buffer, force = false): void {
  const partial = createImageDir(dir, { force });
  const img = ImageWriter.create(partial, HDR);
  const pw = PagesWriter.create(partial);
  const off = pw.append(pages, pages.length);
  img.put(VMA, { start: 0x1000, end: 0x1000 + pages.length, pages_off: BigInt(off) });
  pw.close();
  img.close();
  commitImageDir(dir);
}

test('dump → DIR: files 0600 in a 0700 dir, read back', () => {
  const root = tmp();
  const dir = path.join(root, 'img');
  const old = process.umask(0); // the modes must not depend on the umask
  try {
    const partial = createImageDir(dir);
    assert.equal(partial, `${dir}.partial`);
    assert.equal(mode(partial), 0o700);
    const img = ImageWriter.create(partial, HDR);
    const pw = PagesWriter.create(partial);
    assert.equal(pw.offset, PAGES_HDR_SIZE);
    const pages = Buffer.alloc(3 * 4096);
    for (let i = 0; i < pages.length; i++) pages[i] = i * 7;
    assert.equal(pw.append(pages, 2 * 4096), 4096);
    assert.equal(pw.append(pages.subarray(8192), 4096), 3 * 4096);
    assert.equal(pw.offset, 4 * 4096);
    assert.equal(img.offset, fs.statSync(path.join(partial, IMAGE_FILE)).size);
    const at = img.put(VMA, { start: 0x1000, end: 0x4000, pages_off: 4096n });
    assert.equal(at, img.offset - 48);
    pw.close();
    img.close();
    img.close(); // a second close does nothing
    assert.equal(mode(path.join(partial, IMAGE_FILE)), 0o600);
    assert.equal(mode(path.join(partial, PAGES_FILE)), 0o600);
    assert.ok(!fs.existsSync(dir));
    commitImageDir(dir);
    assert.ok(!fs.existsSync(partial));
    assert.equal(mode(dir), 0o700);

    const paths = openImageDir(dir);
    const image = readImage(paths.image, REG);
    assert.equal(image.info.tool, 'ckpt test');
    assert.ok(image.info.createdNs > 1_600_000_000_000_000_000n);
    const [vma] = childrenOf(image.records, VMA);
    assert.deepEqual(get(vma, VMA), { start: 0x1000, end: 0x4000, pages_off: 4096n });

    const pr = PagesReader.open(paths.pages);
    assert.equal(pr.size, 4 * 4096);
    const back = Buffer.alloc(3 * 4096);
    pr.read(back, back.length, Number(vma.fields.pages_off));
    assert.ok(back.equals(pages));
    pr.close();
  } finally {
    process.umask(old);
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('DIR that exists: empty is replaced, an image needs --force, anything else is refused', () => {
  const root = tmp();
  try {
    const dir = path.join(root, 'img');
    fs.mkdirSync(dir);
    dump(dir, Buffer.alloc(4096, 1)); // empty dir: fine
    assert.deepEqual(code(() => createImageDir(dir)), {
      code: 'IMAGE_EXISTS', message: `${dir} already holds an image (use --force to overwrite)`,
    });
    assert.ok(!fs.existsSync(`${dir}.partial`));
    dump(dir, Buffer.alloc(8192, 2), true);
    assert.equal(PagesReader.open(openImageDir(dir).pages).size, 3 * 4096);
    assert.ok(!fs.existsSync(`${dir}.replaced`));
    assert.deepEqual(fs.readdirSync(root).sort(), ['img']);

    const other = path.join(root, 'other');
    fs.mkdirSync(other);
    fs.writeFileSync(path.join(other, 'notes.txt'), 'mine');
    assert.equal(code(() => createImageDir(other, { force: true })).code, 'USAGE');
    const file = path.join(root, 'file');
    fs.writeFileSync(file, '');
    assert.equal(code(() => createImageDir(file)).code, 'USAGE');
    assert.equal(fs.readFileSync(path.join(other, 'notes.txt'), 'utf8'), 'mine');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('a stale DIR.partial is removed; abort removes it; a crash leaves no DIR', () => {
  const root = tmp();
  try {
    const dir = path.join(root, 'img');
    fs.mkdirSync(`${dir}.partial`);
    fs.writeFileSync(path.join(`${dir}.partial`, IMAGE_FILE), 'stale');
    const partial = createImageDir(dir);
    assert.deepEqual(fs.readdirSync(partial), []);
    const w = ImageWriter.create(partial, HDR);
    w.put(VMA, { start: 0, end: 0, pages_off: 0n });
    w.discard(); // as if the dump failed here
    assert.equal(code(() => openImageDir(dir)).code, 'NO_IMAGE');
    const e = code(() => readImage(path.join(partial, IMAGE_FILE), REG));
    assert.equal(e.code, 'BAD_IMAGE');
    assert.match(e.message, /image truncated: no END record after 2 records/);
    abortImageDir(dir);
    assert.deepEqual(fs.readdirSync(root), []);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('openImageDir: missing, not a directory, no ckpt.img', () => {
  const root = tmp();
  try {
    const missing = path.join(root, 'nope');
    assert.deepEqual(code(() => openImageDir(missing)), { code: 'NO_IMAGE', message: `no image at ${missing}: No such file or directory` });
    const file = path.join(root, 'file');
    fs.writeFileSync(file, '');
    assert.deepEqual(code(() => openImageDir(file)), { code: 'NO_IMAGE', message: `${file} is not a ckpt image (no ckpt.img)` });
    assert.deepEqual(code(() => openImageDir(root)), { code: 'NO_IMAGE', message: `${root} is not a ckpt image (no ckpt.img)` });
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('image files are never written over an existing file or through a symlink', () => {
  const root = tmp();
  try {
    const target = path.join(root, 'target');
    fs.writeFileSync(target, 'precious');
    const d = path.join(root, 'd');
    fs.mkdirSync(d);
    fs.symlinkSync(target, path.join(d, IMAGE_FILE));
    fs.symlinkSync(path.join(root, 'dangling'), path.join(d, PAGES_FILE));
    assert.equal(code(() => ImageWriter.create(d, HDR)).code, 'SYSCALL');
    assert.equal(code(() => PagesWriter.create(d)).code, 'SYSCALL');
    assert.equal(fs.readFileSync(target, 'utf8'), 'precious');
    assert.ok(!fs.existsSync(path.join(root, 'dangling')));
    // and read: a symlinked ckpt.img is refused
    assert.equal(code(() => readImage(path.join(d, IMAGE_FILE), REG)).code, 'BAD_IMAGE');
    assert.equal(code(() => PagesReader.open(path.join(d, PAGES_FILE))).code, 'BAD_IMAGE');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('writer refuses what is not one record, and use after close', () => {
  const root = tmp();
  try {
    const w = ImageWriter.create(root, HDR);
    assert.equal(code(() => w.add(Buffer.alloc(24))).code, 'INTERNAL');
    assert.equal(code(() => w.add(Buffer.concat([encode(VMA, { start: 0, end: 0, pages_off: 0n }), Buffer.alloc(8)]))).code, 'INTERNAL');
    w.close();
    assert.equal(code(() => w.put(VMA, { start: 0, end: 0, pages_off: 0n })).code, 'INTERNAL');
    const pw = PagesWriter.create(root);
    assert.equal(code(() => pw.append(Buffer.alloc(4096), 100)).code, 'INTERNAL');
    assert.equal(code(() => pw.append(Buffer.alloc(4096), 8192)).code, 'INTERNAL');
    pw.close();
    assert.equal(code(() => pw.append(Buffer.alloc(4096), 4096)).code, 'INTERNAL');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('readImage refuses a file over the size bound before reading it', () => {
  const root = tmp();
  try {
    const p = path.join(root, IMAGE_FILE);
    fs.writeFileSync(p, '');
    fs.truncateSync(p, MAX_IMAGE_SIZE + 1); // sparse
    const e = code(() => readImage(p, REG));
    assert.equal(e.code, 'BAD_IMAGE');
    assert.ok(e.message.includes(`${MAX_IMAGE_SIZE + 1} bytes, more than the ${MAX_IMAGE_SIZE}`), e.message);
    assert.equal(code(() => readImage(path.join(root, 'missing'), REG)).code, 'NO_IMAGE');
    assert.equal(code(() => readImage(root, REG)).code, 'BAD_IMAGE');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('pages.img: every bad header page is BAD_IMAGE', () => {
  const root = tmp();
  try {
    const w = PagesWriter.create(root);
    w.append(Buffer.alloc(8192, 9), 8192);
    w.close();
    const good = fs.readFileSync(path.join(root, PAGES_FILE));
    const cases: [string, (b: Buffer) => Buffer, RegExp, number][] = [
      ['magic', (b) => { b.write('X', 0); return b; }, /not a ckpt pages file \(magic 58/, 0],
      ['crc', (b) => { b[100] = 1; return b; }, /header page CRC mismatch/, 0],
      ['header only cut', (b) => b.subarray(0, 4000), /truncated: 4000 bytes, the header page is 4096/, 0],
      ['data cut', (b) => b.subarray(0, 3 * 4096 - 10), /truncated: size 12278 is not whole pages/, 8192],
    ];
    for (const [name, fn, re, offset] of cases) {
      const p = path.join(root, `bad-${name}`);
      fs.writeFileSync(p, fn(Buffer.from(good)));
      let err: unknown;
      try { PagesReader.open(p).close(); } catch (e) { err = e; }
      assert.ok(err instanceof CkptError && err.code === 'BAD_IMAGE', name);
      assert.match(err.message, re, name);
      assert.equal(err.data.offset, offset, name);
    }
    const r = PagesReader.open(path.join(root, PAGES_FILE));
    assert.equal(r.size, 3 * 4096);
    const buf = Buffer.alloc(8192);
    for (const [off, len] of [[0, 4096], [4096, 12288], [8192, 8192], [4097, 10], [-4096, 4096], [2 ** 60, 4096]]) {
      assert.equal(code(() => r.read(buf, len, off)).code, 'BAD_IMAGE', `${off}+${len}`);
    }
    r.read(buf, 8192, 4096);
    assert.ok(buf.equals(Buffer.alloc(8192, 9)));
    r.close();
    assert.equal(code(() => PagesReader.open(path.join(root, PAGES_FILE), 16384)).code, 'BAD_IMAGE');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
