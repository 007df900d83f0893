/**
 * Sockets: dump inspects each socket through a dup of it in ckpt
 * (pidfd_getfd) and saves it once per inode (a SOCKET record); restore makes
 * every socket in ckpt, wired to its peers, and the usual install puts it in
 * the target (files.ts). Whether a peer is inside the dump is decided from
 * every socket fd given, so the same code serves one process or a tree.
 */
import { CkptError } from '../../errors.js';
import { AF, SO, SOCK, SOL, getpeername, getsockname, getsockoptInt } from '../../sys/net.js';
import { close, pidfdGetfd, pidfdOpen } from '../../sys/syscalls.js';
import { unixDiagAll, type UnixDiag } from '../../sys/unix-diag.js';
import { describeAddr } from './addr.js';
import { lockConnections, unlockConnections, type Conn } from './firewall.js';
import { createInet, dumpInet } from './inet.js';
import { createNetlink, dumpNetlink } from './netlink.js';
import { SkState, type SavedSocket } from './records.js';
import { TCP_STATE, dumpRepair, repairOff, repairOn, tcpInfo } from './tcp-repair.js';

const IPPROTO_TCP = 6;
import { createUnix, dumpUnix } from './unix.js';

export { SOCKET_SCHEMAS, encodeSocket, loadSockets, type SavedSocket } from './records.js';

/** One socket fd of a dumped process: its number and the socket's inode. */
export interface SocketFd { pid: number; fd: number; ino: bigint }

export interface SocketDumpOptions {
  /** Save established TCP connections (TCP repair, packets held by nftables). */
  tcpEstablished?: boolean;
  /** A unix socket whose peer is outside the dump is saved (reconnected by name at restore). */
  extUnixSk?: boolean;
  log: (msg: string) => void;
}

export interface SocketDump {
  sockets: SavedSocket[];
  /** The sockets whose record goes in process `pid`'s (each socket once, with the first process that holds it). */
  ofPid(pid: number): SavedSocket[];
  /** The dump failed, or the processes run on: connections leave repair mode and their packets flow again. */
  release(): void;
  /** The image is written and the processes are killed: their connections close silently, and stay blocked until restore. */
  finish(): void;
}

const PROTO_NAMES: Record<number, string> = { [AF.PACKET]: 'a packet socket', 3: 'an AX.25 socket', 5: 'an AppleTalk socket', 38: 'an AF_ALG socket', 40: 'a vsock socket', 44: 'an XDP socket' };

export function dumpSockets(fds: SocketFd[], opts: SocketDumpOptions): SocketDump {
  const first = new Map<bigint, SocketFd>();
  for (const f of fds) if (!first.has(f.ino)) first.set(f.ino, f);
  const inImage = new Set([...first.keys()].map(Number));
  let diag: Map<number, UnixDiag> | undefined;
  const pidfds = new Map<number, number>();
  const kept: { s: SavedSocket; dup: number }[] = [];
  const sockets: SavedSocket[] = [];
  const owner = new Map<SavedSocket, number>();
  let locked: Conn[] = [];
  const repaired: number[] = [];
  const closeKept = () => { for (const k of kept) close(k.dup); kept.length = 0; };
  const release = () => {
    for (const d of repaired) { try { repairOff(d); } catch { /* the socket is gone with its process */ } }
    repaired.length = 0;
    unlockConnections(locked);
    locked = [];
    closeKept();
  };
  try {
    for (const { pid, fd, ino } of first.values()) {
      let pidfd = pidfds.get(pid);
      if (pidfd === undefined) { pidfd = pidfdOpen(pid); pidfds.set(pid, pidfd); }
      const dup = pidfdGetfd(pidfd, fd, pid);
      let keep = false;
      try {
        const where = `fd ${fd} of pid ${pid}`;
        const refuse = (what: string) => new CkptError('UNSUPPORTED_FD', `not supported yet: ${where} is ${what}`, { pid, resource: `fd ${fd}` });
        const family = getsockoptInt(dup, SOL.SOCKET, SO.DOMAIN);
        const type = getsockoptInt(dup, SOL.SOCKET, SO.TYPE);
        const protocol = getsockoptInt(dup, SOL.SOCKET, SO.PROTOCOL);
        const local = getsockname(dup);
        const peer = getpeername(dup);
        let s: SavedSocket;
        if (family === AF.UNIX) {
          diag ??= unixDiagAll();
          s = dumpUnix(dup, Number(ino), type, protocol, local, peer, { diag, inImage, extUnixSk: !!opts.extUnixSk, log: opts.log }, refuse, where);
        } else if (family === AF.INET || family === AF.INET6) {
          s = dumpInet(dup, Number(ino), family, type, protocol, local, peer, { tcpEstablished: !!opts.tcpEstablished, log: opts.log }, refuse, where);
          keep = type === SOCK.STREAM && s.fields.state === SkState.CONNECTED;
        } else if (family === AF.NETLINK) {
          s = dumpNetlink(dup, Number(ino), type, protocol, local, peer, opts.log, where);
        } else {
          throw refuse(PROTO_NAMES[family] ?? `a socket of family ${family}`);
        }
        sockets.push(s);
        owner.set(s, pid);
        if (keep) kept.push({ s, dup });
      } finally {
        if (!keep) close(dup);
      }
    }
    // Every socket passed the checks: now the established connections are frozen.
    if (kept.length) {
      const conns = kept.map((k) => ({ local: k.s.local, peer: k.s.peer! }));
      lockConnections(conns);
      locked = conns;
      const at = Date.now();
      for (const k of kept) {
        repairOn(k.dup);
        repaired.push(k.dup);
        dumpRepair(k.dup, k.s, (what) => new CkptError('UNSUPPORTED_FD', `not supported yet: TCP connection ${describeAddr(k.s.local)} → ${describeAddr(k.s.peer)} is ${what}`));
        k.s.tcp!.frozen_at_ms = BigInt(at);
      }
      opts.log(`${kept.length} established TCP connection(s) frozen in repair mode; their packets are held (nft table inet ckpt)`);
    }
  } catch (e) {
    release();
    throw e;
  } finally {
    for (const p of pidfds.values()) close(p);
  }
  return { sockets, ofPid: (pid) => sockets.filter((s) => owner.get(s) === pid), release, finish: closeKept };
}

/** Listeners first: they own the ports their accepted connections share. */
const rank = (s: SavedSocket) => (s.fields.state === SkState.LISTEN ? 0 : s.fields.state === SkState.UNCONNECTED ? 1 : 2);

/**
 * Make every saved socket in ckpt, by inode. The caller installs them and
 * closes ckpt's copies (closeSockets).
 */
export function createSockets(sockets: SavedSocket[], log: (msg: string) => void): Map<bigint, number> {
  const made = new Map<bigint, number>();
  try {
    createUnix(sockets.filter((s) => s.fields.family === AF.UNIX), made, log);
    const inet = sockets.filter((s) => s.fields.family === AF.INET || s.fields.family === AF.INET6).sort((a, b) => rank(a) - rank(b));
    for (const s of inet) made.set(s.fields.ino, createInet(s));
    for (const s of sockets.filter((x) => x.fields.family === AF.NETLINK)) made.set(s.fields.ino, createNetlink(s, log));
    const other = sockets.find((s) => !made.has(s.fields.ino));
    if (other) throw new CkptError('BAD_IMAGE', `bad image: socket ${other.fields.ino} of family ${other.fields.family}`);
    return made;
  } catch (e) {
    closeSockets(made);
    throw e;
  }
}

/**
 * A restore failed: its TCP connections go back into repair mode before
 * ckpt drops the last reference, so they close without a packet and leave
 * nothing behind (a FIN_WAIT socket would hold the connection's addresses
 * against the next attempt).
 */
export function abortSockets(made: Map<bigint, number>): void {
  for (const fd of made.values()) {
    try {
      if (getsockoptInt(fd, SOL.SOCKET, SO.PROTOCOL) === IPPROTO_TCP && tcpInfo(fd).state === TCP_STATE.ESTABLISHED) repairOn(fd);
    } catch { /* closed as it is */ }
  }
}

export function closeSockets(made: Map<bigint, number>): void {
  for (const fd of made.values()) close(fd);
  made.clear();
}

/**
 * Once the restored processes run: the packets of their TCP connections
 * flow again. Logs how long each connection was frozen (wall clock since the
 * dump froze it: meaningful when both ran on this host).
 */
export function releaseSockets(sockets: SavedSocket[], log: (msg: string) => void): void {
  const tcp = sockets.filter((s) => s.tcp);
  if (!tcp.length) return;
  unlockConnections(tcp.map((s) => ({ local: s.local, peer: s.peer! })));
  const now = Date.now();
  for (const s of tcp) {
    log(`TCP connection ${describeAddr(s.local)} → ${describeAddr(s.peer)}: frozen ${now - Number(s.tcp!.frozen_at_ms)} ms (dump to restore)`);
  }
}
