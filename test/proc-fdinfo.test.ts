import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseFdinfo, parseFdinfoPairs, type Fdinfo } from '../src/proc/index.js';

const FIXTURES = new URL('../../test/fixtures/proc/', import.meta.url);
const fixture = (name: string): string => readFileSync(new URL(name, FIXTURES), 'utf8');

// captured from a python3 process holding one of each (see the fixture file names)
const cases: Array<{ file: string; want: Fdinfo }> = [
  {
    file: 'fdinfo-eventfd.txt',
    want: { pos: 0, flags: 0o4002, mntId: 17, ino: 17,
      extra: { 'eventfd-count': '7', 'eventfd-id': '2', 'eventfd-semaphore': '0' }, lines: [] },
  },
  {
    file: 'fdinfo-epoll.txt',
    want: { pos: 0, flags: 0o2000002, mntId: 17, ino: 17, extra: {},
      lines: ['tfd:        3 events: 80000019 data:                3  pos:0 ino:11 sdev:10'] },
  },
  {
    file: 'fdinfo-inotify.txt',
    want: { pos: 0, flags: 0, mntId: 17, ino: 17, extra: {}, lines: [
      'inotify wd:2 ino:13 sdev:fe00000 mask:2 ignored_mask:0 fhandle-bytes:8 fhandle-type:1 f_handle:1300000000000000',
      'inotify wd:1 ino:3f7e8 sdev:fe00000 mask:300 ignored_mask:0 fhandle-bytes:8 fhandle-type:1 f_handle:e8f7030000000000',
    ] },
  },
  {
    file: 'fdinfo-timerfd.txt',
    want: { pos: 0, flags: 0o2, mntId: 17, ino: 17, lines: [], extra: {
      clockid: '1', ticks: '0', 'settime flags': '00', it_value: '(91, 770349136)', it_interval: '(5, 0)' } },
  },
  {
    file: 'fdinfo-signalfd.txt',
    want: { pos: 0, flags: 0o4002, mntId: 17, ino: 17, extra: { sigmask: '0000000000000a00' }, lines: [] },
  },
  { file: 'fdinfo-file.txt', want: { pos: 10, flags: 0o2102002, mntId: 27, ino: 2146456, extra: {}, lines: [] } },
];

test('fdinfo: one of each kind', () => {
  for (const { file, want } of cases) assert.deepEqual(parseFdinfo(fixture(file)), want, file);
});

test('fdinfo: stdin (O_LARGEFILE read-only)', () => {
  assert.deepEqual(parseFdinfo(fixture('fdinfo-stdin.txt')), { pos: 0, flags: 0o100000, mntId: 24, ino: 3, extra: {}, lines: [] });
});

test('fdinfo: a lone lock line and repeated keys go to lines; no ino is fine', () => {
  const text = 'pos:\t0\nflags:\t0100002\nmnt_id:\t5\nlock:\t1: POSIX  ADVISORY  WRITE 9 fe:00:12 0 EOF\nx: 1\nx: 2\n';
  assert.deepEqual(parseFdinfo(text), {
    pos: 0, flags: 0o100002, mntId: 5, ino: undefined, extra: {},
    lines: ['lock:\t1: POSIX  ADVISORY  WRITE 9 fe:00:12 0 EOF', 'x: 1', 'x: 2'],
  });
});

test('fdinfo: missing or malformed common fields throw', () => {
  for (const bad of ['pos:\t0\nflags:\t02\n', 'pos:\t0\nflags:\t09\nmnt_id:\t1\n', 'no colon\n']) {
    assert.throws(() => parseFdinfo(bad), { code: 'INTERNAL' }, bad);
  }
});

test('fdinfo: pairs of a per-object line', () => {
  assert.deepEqual(parseFdinfoPairs('tfd:        3 events: 80000019 data:                3  pos:0 ino:11 sdev:10'),
    { tfd: '3', events: '80000019', data: '3', pos: '0', ino: '11', sdev: '10' });
  assert.deepEqual(parseFdinfoPairs(cases[2]!.want.lines[1]!), {
    wd: '1', ino: '3f7e8', sdev: 'fe00000', mask: '300', ignored_mask: '0',
    'fhandle-bytes': '8', 'fhandle-type': '1', f_handle: 'e8f7030000000000',
  });
});
