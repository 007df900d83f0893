/**
 * Socket syscalls ckpt makes in its own process: creating, binding and
 * connecting sockets, their options, and reading queues without consuming
 * them (MSG_PEEK). Addresses are raw struct sockaddr bytes; sockaddr.ts
 * encodes and decodes them.
 */
import { allocNative, syscall, sysError, trySyscall, type NativeMemory } from './libc.js';
import { E } from './errno.js';

/** x86_64 numbers of the socket syscalls. */
export const NET_NR = {
  socket: 41, connect: 42, accept: 43, sendto: 44, recvfrom: 45, sendmsg: 46, recvmsg: 47,
  shutdown: 48, bind: 49, listen: 50, getsockname: 51, getpeername: 52, socketpair: 53,
  setsockopt: 54, getsockopt: 55, accept4: 288, ioctl: 16,
} as const;

export const AF = { UNIX: 1, INET: 2, INET6: 10, NETLINK: 16, PACKET: 17 } as const;
export const SOCK = { STREAM: 1, DGRAM: 2, RAW: 3, SEQPACKET: 5, NONBLOCK: 0o4000, CLOEXEC: 0o2000000 } as const;
export const SOL = { SOCKET: 1, IP: 0, IPV6: 41, TCP: 6, UDP: 17, NETLINK: 270 } as const;
export const SO = {
  DEBUG: 1, REUSEADDR: 2, TYPE: 3, ERROR: 4, DONTROUTE: 5, BROADCAST: 6, SNDBUF: 7, RCVBUF: 8,
  KEEPALIVE: 9, OOBINLINE: 10, NO_CHECK: 11, PRIORITY: 12, LINGER: 13, REUSEPORT: 15,
  PASSCRED: 16, RCVLOWAT: 18, RCVTIMEO: 20, SNDTIMEO: 21, TIMESTAMP: 29, ACCEPTCONN: 30,
  SNDBUFFORCE: 32, RCVBUFFORCE: 33, PASSSEC: 34, MARK: 36, PROTOCOL: 38, DOMAIN: 39,
  PEEK_OFF: 42, BUSY_POLL: 46, INCOMING_CPU: 49,
} as const;
export const TCP_OPT = {
  NODELAY: 1, MAXSEG: 2, CORK: 3, KEEPIDLE: 4, KEEPINTVL: 5, KEEPCNT: 6, LINGER2: 8,
  DEFER_ACCEPT: 9, WINDOW_CLAMP: 10, INFO: 11, QUICKACK: 12, CONGESTION: 13,
  USER_TIMEOUT: 18, REPAIR: 19, REPAIR_QUEUE: 20, QUEUE_SEQ: 21, REPAIR_OPTIONS: 22,
  TIMESTAMP: 24, NOTSENT_LOWAT: 25, REPAIR_WINDOW: 29,
} as const;
export const MSG = { OOB: 1, PEEK: 2, TRUNC: 0x20, DONTWAIT: 0x40, CTRUNC: 8, NOSIGNAL: 0x4000, CMSG_CLOEXEC: 0x40000000 } as const;
export const SIOCINQ = 0x541b;
export const SIOCOUTQ = 0x5411;
export const SIOCOUTQNSD = 0x894b;
export const SCM_RIGHTS = 1;

let scratch: NativeMemory | undefined;
function out(): NativeMemory {
  scratch ??= allocNative(4096);
  return scratch;
}
let big: NativeMemory | undefined;
/** The buffer queues are peeked into: larger than any socket buffer ckpt accepts. */
export const PEEK_MAX = 8 * 1024 * 1024;
function bigBuf(): NativeMemory {
  big ??= allocNative(PEEK_MAX);
  return big;
}

export function socket(family: number, type: number, protocol: number): number {
  return syscall(NET_NR.socket, [family, type | SOCK.CLOEXEC, protocol], { what: `socket(${family}, ${type}, ${protocol})` });
}

export function socketpair(family: number, type: number): [number, number] {
  const mem = out();
  syscall(NET_NR.socketpair, [family, type | SOCK.CLOEXEC, 0, mem.addr], { what: `socketpair(${family}, ${type})` });
  return [mem.buf.readInt32LE(0), mem.buf.readInt32LE(4)];
}

function withAddr<T>(addr: Buffer, f: (ptr: bigint, len: number) => T): T {
  const mem = out();
  addr.copy(mem.buf, 0);
  return f(mem.addr, addr.length);
}

/** bind(2); returns 0 or -errno for callers that handle EADDRINUSE themselves. */
export function tryBind(fd: number, addr: Buffer): number {
  return withAddr(addr, (p, l) => trySyscall(NET_NR.bind, fd, p, l));
}
export function bind(fd: number, addr: Buffer, what: string): void {
  withAddr(addr, (p, l) => syscall(NET_NR.bind, [fd, p, l], { what: `bind(${what})`, resource: `socket fd ${fd}` }));
}
/** connect(2); returns 0 or -errno (EINPROGRESS and the like are the caller's). */
export function tryConnect(fd: number, addr: Buffer): number {
  return withAddr(addr, (p, l) => trySyscall(NET_NR.connect, fd, p, l));
}
export function connect(fd: number, addr: Buffer, what: string): void {
  withAddr(addr, (p, l) => syscall(NET_NR.connect, [fd, p, l], { what: `connect(${what})`, resource: `socket fd ${fd}` }));
}
export function listen(fd: number, backlog: number): void {
  syscall(NET_NR.listen, [fd, backlog], { what: `listen(${backlog})`, resource: `socket fd ${fd}` });
}
export function accept(fd: number): number {
  return syscall(NET_NR.accept4, [fd, 0, 0, SOCK.CLOEXEC], { what: 'accept4', resource: `socket fd ${fd}` });
}
export function shutdown(fd: number, how: number): void {
  syscall(NET_NR.shutdown, [fd, how], { what: `shutdown(${how})`, resource: `socket fd ${fd}` });
}

function nameCall(nr: number, fd: number): Buffer | undefined {
  const mem = out();
  mem.buf.writeUInt32LE(256, 512);
  const r = trySyscall(nr, fd, mem.addr, mem.addr + 512n);
  if (r === -E.ENOTCONN) return undefined;
  if (r < 0) syscall(nr, [fd, mem.addr, mem.addr + 512n], { what: nr === NET_NR.getsockname ? 'getsockname' : 'getpeername', resource: `socket fd ${fd}` });
  return Buffer.from(mem.buf.subarray(0, Math.min(mem.buf.readUInt32LE(512), 256)));
}
export function getsockname(fd: number): Buffer { return nameCall(NET_NR.getsockname, fd) ?? Buffer.alloc(0); }
/** The peer's address, or undefined when not connected. */
export function getpeername(fd: number): Buffer | undefined { return nameCall(NET_NR.getpeername, fd); }

/** getsockopt(2) into up to `size` bytes; undefined when the option does not exist (ENOPROTOOPT, EOPNOTSUPP). */
export function tryGetsockopt(fd: number, level: number, name: number, size = 4): Buffer | undefined {
  const mem = out();
  mem.buf.fill(0, 0, size);
  mem.buf.writeUInt32LE(size, 1024);
  const r = trySyscall(NET_NR.getsockopt, fd, level, name, mem.addr, mem.addr + 1024n);
  if (r === -E.ENOPROTOOPT || r === -E.EOPNOTSUPP || r === -E.EINVAL) return undefined;
  if (r < 0) syscall(NET_NR.getsockopt, [fd, level, name, mem.addr, mem.addr + 1024n], { what: `getsockopt(${level}, ${name})`, resource: `socket fd ${fd}` });
  return Buffer.from(mem.buf.subarray(0, mem.buf.readUInt32LE(1024)));
}
export function getsockopt(fd: number, level: number, name: number, size = 4): Buffer {
  const mem = out();
  mem.buf.fill(0, 0, size);
  mem.buf.writeUInt32LE(size, 1024);
  syscall(NET_NR.getsockopt, [fd, level, name, mem.addr, mem.addr + 1024n], { what: `getsockopt(${level}, ${name})`, resource: `socket fd ${fd}` });
  return Buffer.from(mem.buf.subarray(0, mem.buf.readUInt32LE(1024)));
}
export function getsockoptInt(fd: number, level: number, name: number): number {
  return getsockopt(fd, level, name).readInt32LE(0);
}
export function setsockopt(fd: number, level: number, name: number, value: Buffer, what?: string): void {
  const mem = out();
  value.copy(mem.buf, 0);
  syscall(NET_NR.setsockopt, [fd, level, name, mem.addr, value.length], { what: `setsockopt(${what ?? `${level}, ${name}`})`, resource: `socket fd ${fd}` });
}
export function setsockoptInt(fd: number, level: number, name: number, value: number, what?: string): void {
  const b = Buffer.alloc(4);
  b.writeInt32LE(value, 0);
  setsockopt(fd, level, name, b, what);
}

/** An int ioctl that fills an int: SIOCINQ, SIOCOUTQ, SIOCOUTQNSD. */
export function ioctlInt(fd: number, req: number): number {
  const mem = out();
  syscall(NET_NR.ioctl, [fd, req, mem.addr], { what: `ioctl(0x${req.toString(16)})`, resource: `socket fd ${fd}` });
  return mem.buf.readInt32LE(0);
}

export interface Peeked {
  /** The bytes, or undefined when nothing is queued (EAGAIN). */
  data?: Buffer;
  /** msg_flags: MSG_TRUNC when the message was larger than the buffer. */
  flags: number;
  /** File descriptors that came with the message (SCM_RIGHTS): already in ckpt, the caller closes them. */
  fds: number[];
}

/**
 * recvmsg(MSG_PEEK | MSG_DONTWAIT) of the next message, or the next stream
 * bytes from the socket's peek offset, with room for SCM_RIGHTS.
 */
export function peekMsg(fd: number, extraFlags = 0): Peeked {
  const mem = out();
  const data = bigBuf();
  const CTL = 2048, CTL_LEN = 1024, IOV = 64;
  // struct iovec at IOV; struct msghdr at 0 (56 bytes).
  mem.buf.writeBigUInt64LE(data.addr, IOV);
  mem.buf.writeBigUInt64LE(BigInt(data.size), IOV + 8);
  mem.buf.fill(0, 0, 56);
  mem.buf.writeBigUInt64LE(mem.addr + BigInt(IOV), 16); // msg_iov
  mem.buf.writeBigUInt64LE(1n, 24);                     // msg_iovlen
  mem.buf.writeBigUInt64LE(mem.addr + BigInt(CTL), 32); // msg_control
  mem.buf.writeBigUInt64LE(BigInt(CTL_LEN), 40);        // msg_controllen
  const flags0 = MSG.PEEK | MSG.DONTWAIT | MSG.CMSG_CLOEXEC | extraFlags;
  const r = trySyscall(NET_NR.recvmsg, fd, mem.addr, flags0);
  if (r === -E.EAGAIN) return { flags: 0, fds: [] };
  if (r < 0) syscall(NET_NR.recvmsg, [fd, mem.addr, flags0], { what: 'recvmsg(MSG_PEEK)', resource: `socket fd ${fd}` });
  const flags = mem.buf.readInt32LE(48);
  const ctlLen = Number(mem.buf.readBigUInt64LE(40));
  const fds: number[] = [];
  // struct cmsghdr: len u64, level i32, type i32, data; each aligned to 8.
  for (let off = 0; off + 16 <= ctlLen;) {
    const len = Number(mem.buf.readBigUInt64LE(CTL + off));
    if (len < 16) break;
    const level = mem.buf.readInt32LE(CTL + off + 8), type = mem.buf.readInt32LE(CTL + off + 12);
    if (level === SOL.SOCKET && type === SCM_RIGHTS) {
      for (let i = 16; i + 4 <= len; i += 4) fds.push(mem.buf.readInt32LE(CTL + off + i));
    }
    off += (len + 7) & ~7;
  }
  return { data: Buffer.from(data.buf.subarray(0, r)), flags, fds };
}

/** send(2) without blocking; returns bytes sent or -errno. */
export function trySend(fd: number, data: Buffer, flags = MSG.DONTWAIT | MSG.NOSIGNAL, to?: Buffer): number {
  const mem = bigBuf();
  if (data.length > mem.size) return -E.EINVAL;
  data.copy(mem.buf, 0);
  if (!to) return trySyscall(NET_NR.sendto, fd, mem.addr, data.length, flags, 0, 0);
  const a = out();
  to.copy(a.buf, 0);
  return trySyscall(NET_NR.sendto, fd, mem.addr, data.length, flags, a.addr, to.length);
}

/**
 * One netlink request and every reply message until NLMSG_DONE, on a fresh
 * socket of `protocol` (NETLINK_SOCK_DIAG for socket diagnostics).
 */
export function netlinkQuery(protocol: number, request: Buffer): Buffer[] {
  const fd = socket(AF.NETLINK, SOCK.DGRAM, protocol);
  try {
    const addr = Buffer.alloc(12);
    addr.writeUInt16LE(AF.NETLINK, 0);
    const n = trySend(fd, request, MSG.NOSIGNAL, addr);
    if (n < 0) throw sysError(-n, 'sendto(netlink)');
    const msgs: Buffer[] = [];
    const mem = bigBuf();
    for (;;) {
      const r = syscall(NET_NR.recvfrom, [fd, mem.addr, mem.size, 0, 0, 0], { what: 'recvfrom(netlink)' });
      for (let off = 0; off + 16 <= r;) {
        const len = mem.buf.readUInt32LE(off);
        const type = mem.buf.readUInt16LE(off + 4);
        if (len < 16) return msgs;
        if (type === 3 /* NLMSG_DONE */) return msgs;
        if (type === 2 /* NLMSG_ERROR */) {
          const err = mem.buf.readInt32LE(off + 16);
          if (err !== 0) throw sysError(-err, 'netlink request');
          return msgs;
        }
        msgs.push(Buffer.from(mem.buf.subarray(off, off + len)));
        off += (len + 3) & ~3;
      }
    }
  } finally {
    trySyscall(3, fd);
  }
}
