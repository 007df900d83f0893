/**
 * IPv4 and IPv6 sockets: UDP (bound, connected) and TCP (not connected,
 * listening, and established with --tcp-established through tcp-repair.ts).
 * Restore binds the new socket to the same address and port with the saved
 * options. Datagrams queued on a UDP socket and connections waiting in a
 * listener's accept queue are not carried over (a warning says so).
 */
import { CkptError } from '../../errors.js';
import { SIOCINQ, SO, SOCK, SOL, TCP_OPT, bind, connect, getsockopt, ioctlInt, listen, setsockoptInt, socket } from '../../sys/net.js';
import { close } from '../../sys/syscalls.js';
import { describeAddr, isUnspecified } from './addr.js';
import { dumpOptions, optInt, restoreOptions } from './options.js';
import { PeerWhere, SkState, type SavedSocket } from './records.js';
import { TCP_STATE, createRepaired, tcpInfo } from './tcp-repair.js';

const IPPROTO_TCP = 6, IPPROTO_UDP = 17;

export interface InetDumpContext {
  tcpEstablished: boolean;
  log: (msg: string) => void;
}

const STATE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(TCP_STATE).map(([k, v]) => [v, k]));

export function dumpInet(dup: number, ino: number, family: number, type: number, protocol: number, local: Buffer, peer: Buffer | undefined,
  ctx: InetDumpContext, refuse: (what: string) => CkptError, where: string): SavedSocket {
  const tcp = type === SOCK.STREAM && protocol === IPPROTO_TCP;
  const udp = type === SOCK.DGRAM && protocol === IPPROTO_UDP;
  if (!tcp && !udp) throw refuse(`an ${family === 2 ? 'IPv4' : 'IPv6'} socket of type ${type}, protocol ${protocol} (only TCP and UDP are supported)`);
  const s: SavedSocket = {
    fields: {
      ino: BigInt(ino), family, type, protocol, state: peer ? SkState.CONNECTED : SkState.UNCONNECTED, backlog: 0,
      peer_where: peer ? PeerWhere.EXTERNAL : PeerWhere.NONE, peer_ino: 0n, listener_ino: 0n, shutdown: 0,
      name_file: 0, file_mode: 0, file_uid: 0, file_gid: 0,
    },
    local, peer, opts: dumpOptions(dup, family, type, protocol), queues: [],
  };
  if (udp) {
    const queued = ioctlInt(dup, SIOCINQ);
    if (queued > 0) ctx.log(`warning: ${where}: ${queued} bytes of datagrams queued on UDP socket ${describeAddr(local)} are dropped`);
    return s;
  }
  const info = tcpInfo(dup);
  if (info.state === TCP_STATE.LISTEN) {
    s.fields.state = SkState.LISTEN;
    // For a listener, tcp_info's unacked is the accept queue and sacked its backlog.
    const b = tcpInfoWords(dup);
    s.fields.backlog = b.sacked;
    if (b.unacked > 0) ctx.log(`warning: ${where}: ${b.unacked} connection(s) waiting in the accept queue of ${describeAddr(local)} will be reset`);
    return s;
  }
  if (info.state === TCP_STATE.CLOSE) return s;
  const conn = `${describeAddr(local)} → ${describeAddr(peer)}`;
  if (info.state !== TCP_STATE.ESTABLISHED) throw refuse(`a TCP connection in state ${STATE_NAMES[info.state] ?? info.state} (${conn})`);
  if (!ctx.tcpEstablished) throw refuse(`an established TCP connection (${conn}): dump with --tcp-established to save it`);
  // The repair itself comes later, once every fd has passed these checks (index.ts).
  return s;
}

function tcpInfoWords(fd: number): { unacked: number; sacked: number } {
  const b = getsockopt(fd, SOL.TCP, TCP_OPT.INFO, 104);
  return { unacked: b.readUInt32LE(24), sacked: b.readUInt32LE(28) };
}

/**
 * Bind (and listen) with SO_REUSEADDR held on meanwhile, as CRIU does: the
 * port is the one this socket had, and its old connections may linger in
 * TIME_WAIT. The saved value is set after, so accepted sockets inherit it.
 * (TIME_WAIT connections of a listener without SO_REUSEADDR still refuse it.)
 */
function bindAndListen(fd: number, s: SavedSocket): void {
  const what = describeAddr(s.local);
  setsockoptInt(fd, SOL.SOCKET, SO.REUSEADDR, 1, 'SO_REUSEADDR');
  bind(fd, s.local, what);
  if (s.fields.state === SkState.LISTEN) listen(fd, s.fields.backlog);
  setsockoptInt(fd, SOL.SOCKET, SO.REUSEADDR, optInt(s.opts, SOL.SOCKET, SO.REUSEADDR, 0), 'SO_REUSEADDR');
}

/** A new socket in ckpt that is the saved one. */
export function createInet(s: SavedSocket): number {
  if (s.tcp) return createRepaired(s);
  const fd = socket(s.fields.family, s.fields.type, s.fields.protocol);
  try {
    restoreOptions(fd, s.opts);
    if (!isUnspecified(s.local)) bindAndListen(fd, s);
    else if (s.fields.state === SkState.LISTEN) listen(fd, s.fields.backlog);
    if (s.peer && s.fields.type === SOCK.DGRAM) connect(fd, s.peer, describeAddr(s.peer));
    else if (s.peer) throw new CkptError('BAD_IMAGE', `bad image: TCP socket ${describeAddr(s.local)} → ${describeAddr(s.peer)} has no repair state`);
    return fd;
  } catch (e) {
    close(fd);
    throw e;
  }
}
