import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseMaps, parseSmaps, PROT_READ, PROT_WRITE, PROT_EXEC, type Vma } from '../src/proc/index.js';

const FIXTURES = new URL('../../test/fixtures/proc/', import.meta.url);
const fixture = (name: string): string => readFileSync(new URL(name, FIXTURES), 'utf8');

const RW = PROT_READ | PROT_WRITE;
const vma = (v: Partial<Vma>): Vma => ({
  start: 0, end: 0, prot: 0, shared: false, pgoff: 0, major: 0, minor: 0, ino: 0, path: '', deleted: false, ...v,
});

test('maps: python3 process with spaces, deleted files, vdso and vsyscall', () => {
  const vmas = parseMaps(fixture('maps-python.txt'));
  assert.equal(vmas.length, 142);
  const byPath = (p: string): Vma => vmas.find((v) => v.path === p)!;
  const cases: Array<{ name: string; got: Vma; want: Vma }> = [
    {
      name: 'first line, the executable',
      got: vmas[0]!,
      want: vma({ start: 0x562885a77000, end: 0x562885a78000, prot: PROT_READ, major: 0xfe, ino: 26723,
        path: '/root/.pyenv/versions/3.11.7/bin/python3.11' }),
    },
    { name: 'heap', got: byPath('[heap]'), want: vma({ start: 0x5628af445000, end: 0x5628af639000, prot: RW, path: '[heap]' }) },
    {
      name: 'shared anonymous is /dev/zero (deleted)',
      got: byPath('/dev/zero'),
      want: vma({ start: 0x7fa1875ba000, end: 0x7fa1875bd000, prot: RW, shared: true, minor: 1, ino: 1026, path: '/dev/zero', deleted: true }),
    },
    {
      name: 'deleted private file with a space',
      got: byPath('/tmp/cap/gone soon.bin'),
      want: vma({ start: 0x7fa1875bd000, end: 0x7fa1875be000, prot: RW, pgoff: 0x1000, major: 0xfe, ino: 2146459,
        path: '/tmp/cap/gone soon.bin', deleted: true }),
    },
    {
      name: 'shared file whose name has spaces and parentheses',
      got: byPath('/tmp/cap/with space (x).bin'),
      want: vma({ start: 0x7fa1875ec000, end: 0x7fa1875ee000, prot: RW, shared: true, major: 0xfe, ino: 2146457,
        path: '/tmp/cap/with space (x).bin' }),
    },
    { name: 'vvar_vclock', got: byPath('[vvar_vclock]'), want: vma({ start: 0x7fa1875fb000, end: 0x7fa1875fd000, prot: PROT_READ, path: '[vvar_vclock]' }) },
    { name: 'vdso', got: byPath('[vdso]'), want: vma({ start: 0x7fa1875fd000, end: 0x7fa1875ff000, prot: PROT_READ | PROT_EXEC, path: '[vdso]' }) },
  ];
  for (const c of cases) assert.deepEqual(c.got, c.want, c.name);

  const vsyscall = vmas[vmas.length - 1]!;
  assert.equal(vsyscall.path, '[vsyscall]');
  assert.equal(vsyscall.prot, PROT_EXEC);
  assert.ok(vsyscall.start > 2 ** 63, 'parsed, if inexactly');
  for (const v of vmas.slice(0, -1)) {
    assert.ok(Number.isSafeInteger(v.start) && Number.isSafeInteger(v.end) && v.start < v.end, v.path);
  }
  const anon = vmas.filter((v) => v.path === '' && v.ino === 0);
  assert.ok(anon.length > 0, 'anonymous VMAs have path ""');
});

test('maps: hand-made edge cases', () => {
  const want: Array<Partial<Vma>> = [
    { path: '/memfd:my buffer', deleted: true, shared: true, minor: 1, ino: 5 },
    { path: '[anon:arena  two spaces]', deleted: false },
    { path: '/srv/dir with  spaces/lib.so ', major: 0x103, minor: 2, ino: 1234567, pgoff: 0x3000, prot: PROT_READ },
    { path: '', prot: 0, ino: 0 },
    { path: '/tmp/new\\012line', prot: PROT_READ | PROT_EXEC, ino: 42 },
    { path: '/dev/foo (deleted)', deleted: true, pgoff: 0x7ffffffff000, major: 0xfe, minor: 1, ino: 99999999999 },
    { path: '[vsyscall]', prot: PROT_EXEC },
  ];
  const vmas = parseMaps(fixture('maps-edge.txt'));
  assert.equal(vmas.length, want.length);
  vmas.forEach((v, i) => {
    for (const [k, val] of Object.entries(want[i]!)) assert.deepEqual(v[k as keyof Vma], val, `line ${i + 1} ${k}`);
  });
  assert.equal(vmas[0]!.start, 0x7f0000000000);
  assert.equal(vmas[0]!.end, 0x7f0000001000);
});

test('maps: another process (cat) and empty text', () => {
  const vmas = parseMaps(fixture('maps-cat.txt'));
  assert.ok(vmas.some((v) => v.path === '/usr/bin/cat' && v.prot === (PROT_READ | PROT_EXEC)));
  assert.deepEqual(parseMaps(''), []);
});

test('maps: malformed lines throw', () => {
  for (const bad of ['garbage', '7f00-7f01 rwxq 0 00:00 0', '7f00-7f01 rw-p 0 00:00']) {
    assert.throws(() => parseMaps(bad + '\n'), { code: 'INTERNAL' }, bad);
  }
});

test('smaps: same VMAs as maps, with fields and VmFlags', () => {
  const smaps = parseSmaps(fixture('smaps-python.txt'));
  assert.equal(smaps.length, 142);
  for (const s of smaps) {
    assert.ok('Rss' in s.fields && 'Size' in s.fields && 'Swap' in s.fields, s.path);
    assert.ok(s.vmFlags.length > 0, s.path);
    assert.equal(s.fields['Size'], (s.end - s.start) / 1024, s.path);
  }
  const gone = smaps.find((s) => s.path === '/tmp/cap/gone soon.bin')!;
  assert.equal(gone.deleted, true);
  assert.equal(gone.fields['Anonymous'], 4, 'the copied-on-write page');
  assert.equal(gone.fields['Private_Dirty'], 4);
  assert.deepEqual(gone.vmFlags, ['rd', 'wr', 'mr', 'mw', 'me', 'ac']);
  const shared = smaps.find((s) => s.path === '/tmp/cap/with space (x).bin')!;
  assert.deepEqual(shared.vmFlags, ['rd', 'wr', 'sh', 'mr', 'mw', 'me', 'ms']);
  assert.equal(shared.fields['THPeligible'], 0);
  const stack = smaps.find((s) => s.path === '[stack]')!;
  assert.ok(stack.vmFlags.includes('gd'), 'stack grows down');
});

test('smaps: text before the first VMA throws', () => {
  assert.throws(() => parseSmaps('Rss: 4 kB\n'), { code: 'INTERNAL' });
});
