/**
 * The single-file (stream) form of an image: src/image/pack.ts, image-format.md §9.
 * Round trips are byte-identical; every truncation and every corrupted byte is one
 * BAD_IMAGE naming an offset, and leaves no DIR and no DIR.partial.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import { CkptError } from '../src/errors.js';
import {
  CHUNK, ENTRY_END, ENTRY_FILE, ENTRY_HDR_LEN, MAX_NAME_LEN, STREAM_HDR_LEN, fdSource, makeStreamTempDir, openOutputFile,
  packImage, packImageToFile, removeStreamTempDir, streamHeader, unpackImage, unpackImageFromFile,
  type ByteSink, type ByteSource,
} from '../src/image/pack.js';

const roots: string[] = [];
after(() => {
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
});

function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-pack-'));
  roots.push(d);
  return d;
}

/** A directory that looks like an image to pack (pack copies bytes; it does not parse them). */
function fakeImage(dir: string, files: Record<string, Buffer>): void {
  fs.mkdirSync(dir, { mode: 0o700 });
  for (const [name, data] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), data, { mode: 0o600 });
}

class MemSink implements ByteSink {
  parts: Buffer[] = [];
  write(buf: Uint8Array): void {
    this.parts.push(Buffer.from(buf)); // copy: the packer reuses its buffer
  }
  get bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** A source that hands out at most `max` bytes per read (as a pipe may). */
function memSource(data: Buffer, max = Infinity): ByteSource {
  let at = 0;
  return {
    read(buf, off, len) {
      const n = Math.min(len, data.length - at, max);
      data.copy(buf, off, at, at + n);
      at += n;
      return n;
    },
  };
}

function pack(dir: string): Buffer {
  const s = new MemSink();
  packImage(dir, s);
  return s.bytes;
}

function caught(fn: () => unknown): CkptError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof CkptError, `not a CkptError: ${(err as Error)?.stack}`);
    return err;
  }
  assert.fail('nothing thrown');
}

function assertNoImage(dir: string): void {
  assert.equal(fs.existsSync(dir), false, `${dir} exists`);
  assert.equal(fs.existsSync(`${dir}.partial`), false, `${dir}.partial was left behind`);
}

function assertBadStream(data: Buffer, dir: string, re?: RegExp): CkptError {
  const e = caught(() => unpackImage(memSource(data), dir, { label: 'test' }));
  assert.equal(e.code, 'BAD_IMAGE', e.message);
  assert.match(e.message, /^test: bad image stream at offset \d+: /);
  assert.ok(!e.message.includes('\n'), 'one line');
  if (re) assert.match(e.message, re);
  assertNoImage(dir);
  return e;
}

function sameDir(a: string, b: string): void {
  const na = fs.readdirSync(a).sort();
  assert.deepEqual(fs.readdirSync(b).sort(), na);
  for (const n of na) assert.ok(fs.readFileSync(path.join(a, n)).equals(fs.readFileSync(path.join(b, n))), `${n} differs`);
}

/** A small stream to damage: ckpt.img, pages.img, one more file. */
function smallStream(): { root: string; data: Buffer } {
  const root = tmp();
  fakeImage(path.join(root, 'src'), {
    'ckpt.img': Buffer.from('metadata, say'),
    'pages.img': randomBytes(100),
    'extra.img': Buffer.from('a future file'),
  });
  return { root, data: pack(path.join(root, 'src')) };
}

test('pack → unpack: byte-identical, 0700 dir and 0600 files, files bigger than the copy chunk', () => {
  const root = tmp();
  const src = path.join(root, 'src');
  fakeImage(src, {
    'ckpt.img': randomBytes(12345),
    'pages.img': randomBytes(2 * CHUNK + 4096 * 3 + 17),
    'zz-future.img': Buffer.alloc(0),
    'aa-future.img': Buffer.from('x'),
  });
  const data = pack(src);
  const dst = path.join(root, 'dst');
  const old = process.umask(0o022);
  try {
    // A source that returns odd short reads exercises every boundary of the reader.
    const r = unpackImage(memSource(data, 65521), dst);
    assert.equal(r.bytes, data.length);
  } finally {
    process.umask(old);
  }
  sameDir(src, dst);
  assert.equal(fs.statSync(dst).mode & 0o777, 0o700);
  for (const n of fs.readdirSync(dst)) assert.equal(fs.statSync(path.join(dst, n)).mode & 0o777, 0o600, n);
  assert.equal(fs.existsSync(`${dst}.partial`), false);
  // Packing the copy gives the same stream.
  assert.ok(pack(dst).equals(data));
});

test('the layout: header, ckpt.img first, pages.img second, the rest by name, END with a CRC of all before it', () => {
  const root = tmp();
  const src = path.join(root, 'src');
  fakeImage(src, { 'b.img': Buffer.from('B'), 'pages.img': Buffer.from('PP'), 'ckpt.img': Buffer.from('CCC'), 'a.img': Buffer.from('') });
  const data = pack(src);
  assert.ok(data.subarray(0, STREAM_HDR_LEN).equals(streamHeader()));
  assert.equal(data.toString('latin1', 0, 8), 'CKPTSTRM');
  let at = STREAM_HDR_LEN;
  const names: string[] = [];
  for (;;) {
    const kind = data.readUInt32LE(at);
    const nameLen = data.readUInt32LE(at + 4);
    const size = Number(data.readBigUInt64LE(at + 8));
    if (kind === ENTRY_END) {
      assert.equal(nameLen, 0);
      assert.equal(size, 8);
      assert.equal(data.readUInt32LE(at + ENTRY_HDR_LEN), names.length);
      const crcAt = at + ENTRY_HDR_LEN + 4;
      assert.equal(data.readUInt32LE(crcAt), crc32(data.subarray(0, crcAt)));
      assert.equal(crcAt + 4, data.length, 'nothing after END');
      break;
    }
    assert.equal(kind, ENTRY_FILE);
    names.push(data.toString('utf8', at + ENTRY_HDR_LEN, at + ENTRY_HDR_LEN + nameLen));
    at += ENTRY_HDR_LEN + nameLen + size;
  }
  assert.deepEqual(names, ['ckpt.img', 'pages.img', 'a.img', 'b.img']);
});

test('every truncation is one BAD_IMAGE naming the offset; no DIR, no DIR.partial', () => {
  const { root, data } = smallStream();
  const dst = path.join(root, 'dst');
  assertBadStream(Buffer.alloc(0), dst, /offset 0: the stream is empty/);
  for (let len = 1; len < data.length; len++) {
    const e = assertBadStream(data.subarray(0, len), dst, /truncated: the stream ends inside /);
    assert.ok(e.message.includes(`offset ${len}:`), `cut at ${len}: ${e.message}`);
  }
});

test('every corrupted byte is refused (framing or CRC); no DIR, no DIR.partial', () => {
  const { root, data } = smallStream();
  const dst = path.join(root, 'dst');
  for (let i = 0; i < data.length; i++) {
    for (const flip of [0x01, 0x80]) {
      const bad = Buffer.from(data);
      bad[i] ^= flip;
      assertBadStream(bad, dst);
    }
  }
});

test('trailing bytes, bad magic, newer version, flags, unknown kinds are refused', () => {
  const { root, data } = smallStream();
  const dst = path.join(root, 'dst');
  assertBadStream(Buffer.concat([data, Buffer.from([0])]), dst, /bytes after the end entry/);
  const magic = Buffer.from(data);
  magic.write('CKPTIMG\0', 0, 'latin1');
  assertBadStream(magic, dst, /offset 0: not a ckpt image stream/);
  const ver = Buffer.from(data);
  ver.writeUInt16LE(1, 10);
  assertBadStream(ver, dst, /stream version 1\.1, this ckpt reads 1\.0/);
  const ver2 = Buffer.from(data);
  ver2.writeUInt16LE(2, 8);
  assertBadStream(ver2, dst, /stream version 2\.0/);
  const flags = Buffer.from(data);
  flags.writeUInt32LE(1, 12);
  assertBadStream(flags, dst, /unknown stream flags/);
  const kind = Buffer.from(data);
  kind.writeUInt32LE(7, STREAM_HDR_LEN);
  assertBadStream(kind, dst, new RegExp(`offset ${STREAM_HDR_LEN}: unknown entry kind 7`));
});

/** A stream built by hand: the header, then the given entries, then END with a right CRC. */
function forge(entries: { kind?: number; name: Buffer | string; size?: bigint; data?: Buffer }[], count?: number): Buffer {
  const parts: Buffer[] = [streamHeader()];
  for (const e of entries) {
    const name = typeof e.name === 'string' ? Buffer.from(e.name) : e.name;
    const data = e.data ?? Buffer.alloc(0);
    const h = Buffer.alloc(ENTRY_HDR_LEN);
    h.writeUInt32LE(e.kind ?? ENTRY_FILE, 0);
    h.writeUInt32LE(name.length, 4);
    h.writeBigUInt64LE(e.size ?? BigInt(data.length), 8);
    parts.push(h, name, data);
  }
  const end = Buffer.alloc(ENTRY_HDR_LEN + 8);
  end.writeUInt32LE(ENTRY_END, 0);
  end.writeBigUInt64LE(8n, 8);
  end.writeUInt32LE(count ?? entries.length, ENTRY_HDR_LEN);
  parts.push(end);
  const all = Buffer.concat(parts);
  all.writeUInt32LE(crc32(all.subarray(0, all.length - 4)), all.length - 4);
  return all;
}

test('lengths are bounded before anything is read or allocated; names are plain file names', () => {
  const dst = path.join(tmp(), 'dst');
  const ok = { name: 'ckpt.img', data: Buffer.from('x') };
  // The forge helper itself makes a valid stream.
  unpackImage(memSource(forge([ok])), dst);
  fs.rmSync(dst, { recursive: true });

  const hugeName = forge([ok]);
  hugeName.writeUInt32LE(0xffffffff, STREAM_HDR_LEN + 4);
  assertBadStream(hugeName, dst, /entry name length 4294967295 \(1 to 255\)/);
  assertBadStream(forge([ok, { name: 'n'.repeat(MAX_NAME_LEN + 1) }]), dst, /entry name length 256/);
  assertBadStream(forge([{ name: 'ckpt.img', size: 2n ** 63n }]), dst, /ckpt\.img is 9223372036854775808 bytes, more than 67108864/);
  assertBadStream(forge([ok, { name: 'pages.img', size: 2n ** 64n - 1n }]), dst, /pages\.img is 18446744073709551615 bytes/);
  for (const name of ['../evil', 'a/b', '.', '..', 'sp ace', '']) {
    assertBadStream(forge([ok, { name }]), dst, name === '' ? /entry name length 0/ : /bad entry name/);
  }
  assertBadStream(forge([ok, { name: Buffer.from([0xc3, 0x28]) }]), dst, /not UTF-8/);
  assertBadStream(forge([ok, { name: 'ckpt.img' }]), dst, /ckpt\.img appears twice/);
  assertBadStream(forge([{ name: 'pages.img', data: Buffer.from('p') }]), dst, /holds no ckpt\.img/);
  assertBadStream(forge([ok], 2), dst, /the end entry counts 2 files, the stream holds 1/);
  const many = [ok, ...Array.from({ length: 64 }, (_, i) => ({ name: `f${i}` }))];
  assertBadStream(forge(many), dst, /more than 64 files/);
  const endSize = forge([ok]);
  endSize.writeBigUInt64LE(2n ** 40n, endSize.length - 16);
  assertBadStream(endSize, dst, /malformed end entry/);
});

test('unpack refuses an existing image unless force, and then replaces it; never through a symlink', () => {
  const { root, data } = smallStream();
  const dst = path.join(root, 'dst');
  unpackImage(memSource(data), dst);
  const e = caught(() => unpackImage(memSource(data), dst));
  assert.equal(e.code, 'IMAGE_EXISTS');
  fs.writeFileSync(path.join(dst, 'ckpt.img'), 'old');
  unpackImage(memSource(data), dst, { force: true });
  sameDir(path.join(root, 'src'), dst);
  // A bad stream with --force leaves the old image as it was.
  assertBadStream(data.subarray(0, 40), path.join(root, 'other'));
  const before = fs.readFileSync(path.join(dst, 'pages.img'));
  const e2 = caught(() => unpackImage(memSource(data.subarray(0, 60)), dst, { force: true }));
  assert.equal(e2.code, 'BAD_IMAGE');
  assert.ok(fs.readFileSync(path.join(dst, 'pages.img')).equals(before));
  assert.equal(fs.existsSync(`${dst}.partial`), false);

  const target = path.join(root, 'target');
  fs.mkdirSync(target);
  const link = path.join(root, 'link');
  fs.symlinkSync(target, link);
  assert.equal(caught(() => unpackImage(memSource(data), link, { force: true })).code, 'USAGE');
  assert.deepEqual(fs.readdirSync(target), []);
});

test('pack refuses what is not an image, symlinks and non-regular files inside it', () => {
  const root = tmp();
  assert.equal(caught(() => pack(path.join(root, 'none'))).code, 'NO_IMAGE');
  const src = path.join(root, 'src');
  fakeImage(src, { 'ckpt.img': Buffer.from('c') });
  fs.symlinkSync('/etc/passwd', path.join(src, 'pages.img'));
  assert.match(caught(() => pack(src)).message, /pages\.img is a symbolic link/);
  fs.unlinkSync(path.join(src, 'pages.img'));
  fs.mkdirSync(path.join(src, 'sub'));
  assert.match(caught(() => pack(src)).message, /sub is not a regular file/);
});

test('pack to a file: through FILE.partial, 0600; an existing FILE needs force; a symlink never', () => {
  const { root, data } = smallStream();
  const src = path.join(root, 'src');
  const file = path.join(root, 'img.ckpt');
  packImageToFile(src, file);
  assert.ok(fs.readFileSync(file).equals(data));
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  assert.equal(fs.existsSync(`${file}.partial`), false);
  assert.equal(caught(() => packImageToFile(src, file)).code, 'IMAGE_EXISTS');
  fs.writeFileSync(file, 'old');
  packImageToFile(src, file, { force: true });
  assert.ok(fs.readFileSync(file).equals(data));
  const link = path.join(root, 'link.ckpt');
  fs.symlinkSync(path.join(root, 'elsewhere'), link);
  assert.equal(caught(() => packImageToFile(src, link, { force: true })).code, 'USAGE');
  assert.equal(fs.existsSync(path.join(root, 'elsewhere')), false);
  // A failed pack leaves neither FILE nor FILE.partial.
  const missing = path.join(root, 'missing.ckpt');
  assert.equal(caught(() => packImageToFile(path.join(root, 'nothing'), missing)).code, 'NO_IMAGE');
  assert.equal(fs.existsSync(missing) || fs.existsSync(`${missing}.partial`), false);
  const out = openOutputFile(missing, false);
  out.sink.write(Buffer.from('half'));
  out.abort();
  assert.equal(fs.existsSync(missing) || fs.existsSync(`${missing}.partial`), false);

  const dst = path.join(root, 'dst');
  unpackImageFromFile(file, dst);
  sameDir(src, dst);
  assert.equal(caught(() => unpackImageFromFile(path.join(root, 'nope'), path.join(root, 'd2'))).code, 'NO_IMAGE');
});

test('a non-blocking pipe that has nothing yet (EAGAIN) is waited on, not an error', async () => {
  const { root, data } = smallStream();
  const streamFile = path.join(root, 'stream');
  fs.writeFileSync(streamFile, data);
  const fifo = path.join(root, 'fifo');
  const ready = path.join(root, 'writer-ready');
  const mk = spawn('mkfifo', [fifo]);
  await new Promise((r) => mk.on('exit', r));
  // The writer connects, says so, waits a little (the reader gets EAGAIN meanwhile), then writes.
  const writer = spawn('sh', ['-c', 'exec 3>"$1"; : > "$2"; sleep 0.3; cat "$3" >&3', 'sh', fifo, ready, streamFile], { stdio: 'ignore' });
  const fd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  try {
    for (let i = 0; i < 500 && !fs.existsSync(ready); i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(fs.existsSync(ready), 'the writer did not connect');
    const dst = path.join(root, 'dst');
    unpackImage(fdSource(fd, 'fifo'), dst);
    sameDir(path.join(root, 'src'), dst);
  } finally {
    fs.closeSync(fd);
    writer.kill();
  }
});

test('the temporary directory of a stream: private, on /dev/shm when possible, removed', () => {
  const d = makeStreamTempDir();
  try {
    assert.equal(fs.statSync(d).mode & 0o777, 0o700);
    assert.match(path.basename(d), /^ckpt-stream-/);
    let shm = false;
    try {
      fs.accessSync('/dev/shm', fs.constants.W_OK);
      shm = fs.statSync('/dev/shm').isDirectory();
    } catch {
      // no /dev/shm
    }
    assert.equal(path.dirname(d), shm ? '/dev/shm' : os.tmpdir());
  } finally {
    removeStreamTempDir(d);
  }
  assert.equal(fs.existsSync(d), false);
});
