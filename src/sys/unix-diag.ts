/**
 * Unix sockets as the kernel's sock_diag netlink interface describes them
 * (linux/unix_diag.h): what no getsockopt tells, such as the inode of a
 * socket's peer and the connections waiting in a listener's queue.
 */
import { AF, netlinkQuery } from './net.js';

const NETLINK_SOCK_DIAG = 4;
const SOCK_DIAG_BY_FAMILY = 20;
const NLM_F_REQUEST = 1, NLM_F_DUMP = 0x300;
const UDIAG_SHOW = { NAME: 1, VFS: 2, PEER: 4, ICONS: 8, RQLEN: 0x10 } as const;
const UNIX_DIAG = { NAME: 0, VFS: 1, PEER: 2, ICONS: 3, RQLEN: 4, SHUTDOWN: 6 } as const;

export interface UnixDiag {
  ino: number;
  type: number;
  /** TCP_ESTABLISHED (1) connected, TCP_CLOSE (7) not, TCP_LISTEN (10) listening. */
  state: number;
  /** sun_path as bound: starts with a NUL byte for an abstract name; empty when unbound. */
  name: Buffer;
  /** The inode of the socket file on disk, for a name bound in the filesystem. */
  vfsIno?: number;
  vfsDev?: number;
  /** The peer's socket inode: 0 when the peer is gone, undefined when there is none. */
  peer?: number;
  /** A listener's queued connections, by the inodes of their not yet accepted ends, oldest first. */
  icons: number[];
  /** Bytes queued for reading (a listener: connections queued), and for a listener its backlog. */
  rqueue: number;
  wqueue: number;
  /** sk_shutdown: 1 receive side, 2 send side. */
  shutdown: number;
}

/** Every unix socket of this network namespace, by inode. */
export function unixDiagAll(): Map<number, UnixDiag> {
  const req = Buffer.alloc(16 + 24);
  req.writeUInt32LE(req.length, 0);
  req.writeUInt16LE(SOCK_DIAG_BY_FAMILY, 4);
  req.writeUInt16LE(NLM_F_REQUEST | NLM_F_DUMP, 6);
  req.writeUInt8(AF.UNIX, 16);
  req.writeUInt32LE(0xffffffff, 20); // every state
  req.writeUInt32LE(UDIAG_SHOW.NAME | UDIAG_SHOW.VFS | UDIAG_SHOW.PEER | UDIAG_SHOW.ICONS | UDIAG_SHOW.RQLEN, 28);
  const out = new Map<number, UnixDiag>();
  for (const m of netlinkQuery(NETLINK_SOCK_DIAG, req)) {
    const d = parseUnixDiag(m);
    out.set(d.ino, d);
  }
  return out;
}

/** One SOCK_DIAG_BY_FAMILY reply: nlmsghdr, unix_diag_msg, then attributes. */
export function parseUnixDiag(m: Buffer): UnixDiag {
  const d: UnixDiag = {
    type: m.readUInt8(17), state: m.readUInt8(18), ino: m.readUInt32LE(20),
    name: Buffer.alloc(0), icons: [], rqueue: 0, wqueue: 0, shutdown: 0,
  };
  for (let off = 32; off + 4 <= m.length;) {
    const len = m.readUInt16LE(off), type = m.readUInt16LE(off + 2);
    if (len < 4) break;
    const data = m.subarray(off + 4, off + len);
    switch (type) {
      case UNIX_DIAG.NAME: d.name = Buffer.from(data); break;
      case UNIX_DIAG.VFS: d.vfsIno = data.readUInt32LE(0); d.vfsDev = data.readUInt32LE(4); break;
      case UNIX_DIAG.PEER: d.peer = data.readUInt32LE(0); break;
      case UNIX_DIAG.ICONS: for (let i = 0; i + 4 <= data.length; i += 4) d.icons.push(data.readUInt32LE(i)); break;
      case UNIX_DIAG.RQLEN: d.rqueue = data.readUInt32LE(0); d.wqueue = data.readUInt32LE(4); break;
      case UNIX_DIAG.SHUTDOWN: d.shutdown = data.readUInt8(0); break;
    }
    off += (len + 3) & ~3;
  }
  return d;
}
