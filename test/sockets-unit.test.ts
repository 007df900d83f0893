/**
 * The pure parts of sockets: socket addresses as people and nft read them,
 * and sock_diag replies (on a reply built by hand, then on a real socket).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { describeAddr, inetAddr, isUnspecified, unixPath } from '../src/kinds/sockets/addr.js';
import { parseUnixDiag, unixDiagAll } from '../src/sys/unix-diag.js';
import { AF, SOCK, getsockname, socket, socketpair } from '../src/sys/net.js';
import { close } from '../src/sys/syscalls.js';
import { readlinkSync } from 'node:fs';

function in4(ip: number[], port: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt16LE(AF.INET, 0);
  b.writeUInt16BE(port, 2);
  Buffer.from(ip).copy(b, 4);
  return b;
}
function in6(words: number[], port: number): Buffer {
  const b = Buffer.alloc(28);
  b.writeUInt16LE(AF.INET6, 0);
  b.writeUInt16BE(port, 2);
  words.forEach((w, i) => b.writeUInt16BE(w, 8 + i * 2));
  return b;
}
function un(path: Buffer): Buffer {
  return Buffer.concat([Buffer.from([AF.UNIX, 0]), path]);
}

const linkOf = (fd: number) => readlinkSync(`/proc/self/fd/${fd}`);

describe('socket addresses', () => {
  const cases: { what: string; sa: Buffer; text: string }[] = [
    { what: 'IPv4', sa: in4([127, 0, 0, 1], 6379), text: '127.0.0.1:6379' },
    { what: 'IPv6 loopback', sa: in6([0, 0, 0, 0, 0, 0, 0, 1], 80), text: '[::1]:80' },
    { what: 'IPv6 any', sa: in6([0, 0, 0, 0, 0, 0, 0, 0], 443), text: '[::]:443' },
    { what: 'IPv6 link-local', sa: in6([0xfe80, 0, 0, 0, 0, 0, 0, 5], 22), text: '[fe80::5]:22' },
    { what: 'IPv6 without a zero run', sa: in6([1, 2, 3, 4, 5, 6, 7, 8], 1), text: '[1:2:3:4:5:6:7:8]:1' },
    { what: 'IPv4-mapped IPv6 (what the wire carries)', sa: in6([0, 0, 0, 0, 0, 0xffff, 0x7f00, 1], 9), text: '127.0.0.1:9' },
    { what: 'unix path', sa: un(Buffer.from('/run/x.sock\0')), text: '/run/x.sock' },
    { what: 'unix abstract', sa: un(Buffer.from('\0name')), text: '@name' },
    { what: 'unix unnamed', sa: un(Buffer.alloc(0)), text: '(unnamed)' },
  ];
  for (const { what, sa, text } of cases) test(`${what}: ${text}`, () => assert.equal(describeAddr(sa), text));

  test('an IPv4-mapped address is IPv4 for nft', () => assert.equal(inetAddr(in6([0, 0, 0, 0, 0, 0xffff, 0x0a00, 2], 5))?.family, 4));
  test('unspecified: 0.0.0.0:0 and [::]:0 yes; a port or an address no', () => {
    assert.ok(isUnspecified(in4([0, 0, 0, 0], 0)));
    assert.ok(isUnspecified(in6([0, 0, 0, 0, 0, 0, 0, 0], 0)));
    assert.ok(!isUnspecified(in4([0, 0, 0, 0], 1)));
    assert.ok(!isUnspecified(in4([127, 0, 0, 1], 0)));
  });
  test('unixPath stops at the first NUL of a filesystem name', () => assert.equal(unixPath(un(Buffer.from('/a\0junk'))), '/a'));
});

describe('sock_diag replies', () => {
  test('a reply built by hand: name, vfs, peer, icons, queue lengths, shutdown', () => {
    const attr = (type: number, data: Buffer) => {
      const len = 4 + data.length;
      const b = Buffer.alloc((len + 3) & ~3);
      b.writeUInt16LE(len, 0);
      b.writeUInt16LE(type, 2);
      data.copy(b, 4);
      return b;
    };
    const u32s = (...v: number[]) => { const b = Buffer.alloc(v.length * 4); v.forEach((x, i) => b.writeUInt32LE(x, i * 4)); return b; };
    const head = Buffer.alloc(32);
    head.writeUInt8(AF.UNIX, 16);
    head.writeUInt8(SOCK.STREAM, 17);
    head.writeUInt8(10, 18);
    head.writeUInt32LE(4242, 20);
    const msg = Buffer.concat([head, attr(0, Buffer.from('/tmp/l.sock')), attr(1, u32s(77, 2049)), attr(2, u32s(4243)),
      attr(3, u32s(5, 6, 7)), attr(4, u32s(3, 128)), attr(6, Buffer.from([2]))]);
    msg.writeUInt32LE(msg.length, 0);
    assert.deepEqual(parseUnixDiag(msg), {
      ino: 4242, type: SOCK.STREAM, state: 10, name: Buffer.from('/tmp/l.sock'), vfsIno: 77, vfsDev: 2049, peer: 4243,
      icons: [5, 6, 7], rqueue: 3, wqueue: 128, shutdown: 2,
    });
  });

  test('a real socketpair: each end names the other as its peer', () => {
    const [a, b] = socketpair(AF.UNIX, SOCK.STREAM);
    try {
      const inode = (fd: number) => Number(/socket:\[(\d+)\]/.exec(linkOf(fd))![1]);
      const all = unixDiagAll();
      assert.equal(all.get(inode(a))?.peer, inode(b));
      assert.equal(all.get(inode(b))?.peer, inode(a));
      assert.equal(getsockname(a).length, 2, 'an unnamed socket');
    } finally {
      close(a);
      close(b);
    }
  });

  test('an unbound datagram socket has no peer', () => {
    const fd = socket(AF.UNIX, SOCK.DGRAM, 0);
    try {
      const ino = Number(/socket:\[(\d+)\]/.exec(linkOf(fd))![1]);
      assert.equal(unixDiagAll().get(ino)?.peer, undefined);
    } finally {
      close(fd);
    }
  });
});
