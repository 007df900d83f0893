/**
 * Netlink sockets (NETLINK_ROUTE and the others): the same protocol, bound
 * again to the same port id and multicast groups when that port id is free
 * (the kernel gives a new one otherwise). Messages queued for the program
 * are not carried over: they describe the kernel's state at dump time.
 */
import { AF, SIOCINQ, bind, connect, ioctlInt, socket, tryBind } from '../../sys/net.js';
import { close } from '../../sys/syscalls.js';
import { E } from '../../sys/errno.js';
import { describeAddr } from './addr.js';
import { dumpOptions, restoreOptions } from './options.js';
import { PeerWhere, SkState, type SavedSocket } from './records.js';

export function dumpNetlink(dup: number, ino: number, type: number, protocol: number, local: Buffer, peer: Buffer | undefined,
  log: (msg: string) => void, where: string): SavedSocket {
  let queued = 0;
  try { queued = ioctlInt(dup, SIOCINQ); } catch { /* not every kernel answers */ }
  if (queued > 0) log(`warning: ${where}: ${queued} bytes of netlink messages queued on protocol ${protocol} are dropped`);
  const connected = peer !== undefined && peer.length >= 8 && peer.readUInt32LE(4) !== 0;
  return {
    fields: {
      ino: BigInt(ino), family: AF.NETLINK, type, protocol, state: connected ? SkState.CONNECTED : SkState.UNCONNECTED, backlog: 0,
      peer_where: connected ? PeerWhere.EXTERNAL : PeerWhere.NONE, peer_ino: 0n, listener_ino: 0n, shutdown: 0,
      name_file: 0, file_mode: 0, file_uid: 0, file_gid: 0,
    },
    local, peer: connected ? peer : undefined, opts: dumpOptions(dup, AF.NETLINK, type, protocol), queues: [],
  };
}

export function createNetlink(s: SavedSocket, log: (msg: string) => void): number {
  const fd = socket(AF.NETLINK, s.fields.type, s.fields.protocol);
  try {
    restoreOptions(fd, s.opts);
    const portid = s.local.length >= 12 ? s.local.readUInt32LE(4) : 0;
    const groups = s.local.length >= 12 ? s.local.readUInt32LE(8) : 0;
    if (portid !== 0 || groups !== 0) {
      const r = tryBind(fd, s.local);
      if (r === -E.EADDRINUSE) {
        const any = Buffer.from(s.local);
        any.writeUInt32LE(0, 4);
        bind(fd, any, `netlink ${describeAddr(any)}`);
        log(`netlink socket (protocol ${s.fields.protocol}): port id ${portid} is taken; it has a new one`);
      } else if (r < 0) {
        bind(fd, s.local, `netlink ${describeAddr(s.local)}`);
      }
    }
    if (s.peer) connect(fd, s.peer, `netlink ${describeAddr(s.peer)}`);
    return fd;
  } catch (e) {
    close(fd);
    throw e;
  }
}
