/**
 * Unix sockets: stream, datagram and seqpacket; unnamed, bound in the
 * filesystem or abstract; listening, connected or not. The peer of a
 * connected socket comes from sock_diag (UNIX_DIAG_PEER, by inode): a peer in
 * the image is made once with it (socketpair, or connect + accept through
 * the restored listener when the connection had the listener's name).
 * Queued data is peeked at dump and sent again from the peer end at restore.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CkptError } from '../../errors.js';
import { AF, SIOCOUTQ, SOCK, accept, ioctlInt, bind, connect, listen, shutdown, socket, socketpair, tryConnect } from '../../sys/net.js';
import { close } from '../../sys/syscalls.js';
import type { UnixDiag } from '../../sys/unix-diag.js';
import { unixPath } from './addr.js';
import { dumpOptions, restoreOptions } from './options.js';
import { peekQueue, sendQueue } from './queue.js';
import { NameFile, PeerWhere, Queue, SkState, type SavedSocket } from './records.js';

const TCP_LISTEN = 10;

export interface UnixDumpContext {
  diag: Map<number, UnixDiag>;
  /** Inodes of every socket the dumped processes hold. */
  inImage: Set<number>;
  extUnixSk: boolean;
  log: (msg: string) => void;
}

type Refuse = (what: string) => CkptError;

export function dumpUnix(dup: number, ino: number, type: number, protocol: number, local: Buffer, peerName: Buffer | undefined,
  ctx: UnixDumpContext, refuse: Refuse, where: string): SavedSocket {
  const d = ctx.diag.get(ino);
  if (!d) throw refuse(`a unix socket (inode ${ino}) that sock_diag does not list`);
  if (type !== SOCK.STREAM && type !== SOCK.DGRAM && type !== SOCK.SEQPACKET) throw refuse(`a unix socket of type ${type}`);
  const name = unixPath(local);
  if (name && !name.startsWith('@') && !path.isAbsolute(name)) throw refuse(`a unix socket bound to a relative path (${name})`);
  const opts = dumpOptions(dup, AF.UNIX, type, protocol);
  const fields = {
    ino: BigInt(ino), family: AF.UNIX, type, protocol, state: SkState.UNCONNECTED, backlog: 0,
    peer_where: PeerWhere.NONE, peer_ino: 0n, listener_ino: 0n, shutdown: d.shutdown,
    name_file: NameFile.NONE, file_mode: 0, file_uid: 0, file_gid: 0,
  };
  if (d.vfsIno !== undefined && name && !name.startsWith('@')) {
    let st: fs.Stats | undefined;
    try { st = fs.statSync(name); } catch { /* gone */ }
    if (st && st.ino === d.vfsIno && st.isSocket()) {
      Object.assign(fields, { name_file: NameFile.PRESENT, file_mode: st.mode & 0o7777, file_uid: st.uid, file_gid: st.gid });
    } else {
      fields.name_file = NameFile.DELETED;
    }
  }
  const saved: SavedSocket = { fields, local, peer: peerName, opts, queues: [] };
  if (d.state === TCP_LISTEN) {
    fields.state = SkState.LISTEN;
    fields.backlog = d.wqueue;
    // The queue lists each waiting connection by the inode of its connecting socket.
    for (const client of d.icons) {
      if (!ctx.inImage.has(client)) ctx.log(`warning: ${where}: a connection from outside waits in the queue of unix listener ${name}; it will be reset`);
    }
    return saved;
  }
  if (d.peer !== undefined) {
    fields.state = SkState.CONNECTED;
    fields.peer_ino = BigInt(d.peer);
    // Not yet accepted: the peer is a socket of no file (inode 0), and a listener's queue names this one.
    const listener = [...ctx.diag.values()].find((s) => s.state === TCP_LISTEN && s.icons.includes(ino));
    if (listener && ctx.inImage.has(listener.ino)) {
      fields.peer_where = PeerWhere.PENDING;
      fields.listener_ino = BigInt(listener.ino);
      if (ioctlInt(dup, SIOCOUTQ) > 0) throw refuse(`a unix socket whose connection to ${name || unixPath(peerName ?? Buffer.alloc(0))} is not accepted yet and holds data`);
    } else if (d.peer === 0 && !listener) fields.peer_where = PeerWhere.GONE;
    else if (d.peer !== 0 && ctx.inImage.has(d.peer)) fields.peer_where = PeerWhere.IMAGE;
    else if (ctx.extUnixSk) fields.peer_where = PeerWhere.EXTERNAL;
    else throw refuse(`a unix socket connected to a peer outside the dumped processes (${peerName && unixPath(peerName) ? unixPath(peerName) : `socket inode ${d.peer}`}); dump with --ext-unix-sk to reconnect it by name at restore`);
    if (fields.peer_where === PeerWhere.IMAGE && type === SOCK.DGRAM) {
      const p = ctx.diag.get(d.peer)!;
      if (p.peer !== ino && !unixPath(peerName ?? Buffer.alloc(0))) throw refuse('a unix datagram socket connected to an unnamed socket that is not its pair');
    }
  }
  if (d.rqueue > 0 || type === SOCK.DGRAM) {
    const stream = type === SOCK.STREAM;
    const msgs = peekQueue(dup, { stream, expect: type === SOCK.DGRAM ? undefined : d.rqueue, refuse });
    if (msgs.length && fields.peer_where === PeerWhere.EXTERNAL) {
      ctx.log(`warning: ${where}: ${msgs.reduce((n, m) => n + m.length, 0)} bytes queued from a peer outside the dump are dropped`);
    } else {
      saved.queues = msgs.map((data) => ({ queue: Queue.RECV, data }));
    }
  }
  return saved;
}

/** A fresh unix socket for `s`, with its options. */
function fresh(s: SavedSocket): number {
  const fd = socket(AF.UNIX, s.fields.type, s.fields.protocol);
  try { restoreOptions(fd, s.opts); } catch (e) { close(fd); throw e; }
  return fd;
}

/** Bind to the saved name; a stale socket file left by the dumped process is replaced. */
function bindName(fd: number, s: SavedSocket): void {
  const name = unixPath(s.local);
  if (!name) return;
  if (!name.startsWith('@')) {
    let st: fs.Stats | undefined;
    try { st = fs.lstatSync(name); } catch { /* free */ }
    if (st && !st.isSocket()) throw new CkptError('FILE_CHANGED', `unix socket ${name}: the path is taken by something that is not a socket`, { path: name });
    if (st) fs.unlinkSync(name);
  }
  bind(fd, s.local, `unix ${name}`);
  if (s.fields.name_file === NameFile.PRESENT) {
    fs.chmodSync(name, s.fields.file_mode);
    fs.chownSync(name, s.fields.file_uid, s.fields.file_gid);
  } else if (s.fields.name_file === NameFile.DELETED) {
    fs.unlinkSync(name);
  }
}

/**
 * Make every unix socket in ckpt: `made` gets each socket's fd by inode.
 * Returns fds to close once the queues are written (temporary peers).
 */
export function createUnix(socks: SavedSocket[], made: Map<bigint, number>, log: (msg: string) => void): void {
  const byIno = new Map(socks.map((s) => [s.fields.ino, s]));
  // The end that sends a socket's queued data, when it is not the saved peer itself.
  const writer = new Map<bigint, number>();
  const temps: number[] = [];
  const put = (s: SavedSocket, fd: number) => made.set(s.fields.ino, fd);
  try {
    // 1. Sockets not connected: listeners, bound datagram sockets, bare ones.
    for (const s of socks) {
      if (s.fields.state === SkState.CONNECTED) continue;
      const fd = fresh(s);
      put(s, fd);
      bindName(fd, s);
      if (s.fields.state === SkState.LISTEN) listen(fd, s.fields.backlog);
    }
    const listenerNamed = (name: Buffer | undefined) => name && unixPath(name)
      ? socks.find((l) => l.fields.state === SkState.LISTEN && l.local.equals(name)) : undefined;
    // 2. Connections with both ends in the image.
    for (const s of socks) {
      if (made.has(s.fields.ino) || s.fields.peer_where !== PeerWhere.IMAGE) continue;
      const p = byIno.get(s.fields.peer_ino);
      if (!p) throw new CkptError('BAD_IMAGE', `bad image: unix socket ${s.fields.ino} is connected to socket ${s.fields.peer_ino}, which the image does not hold`);
      const mutual = p.fields.peer_ino === s.fields.ino && p.fields.state === SkState.CONNECTED;
      if (s.fields.type === SOCK.DGRAM && !mutual) {
        // Connected to a named datagram socket (connected below, once that one exists).
        const fd = fresh(s);
        put(s, fd);
        bindName(fd, s);
        continue;
      }
      if (!mutual) throw new CkptError('BAD_IMAGE', `bad image: unix socket ${s.fields.ino} and its peer ${p.fields.ino} disagree`);
      if (made.has(p.fields.ino)) continue;
      // Which end had connected to a listener that is in the image: connect + accept keep the names.
      const l = s.fields.type === SOCK.DGRAM ? undefined : listenerNamed(s.peer) ?? listenerNamed(p.peer);
      if (l) {
        const [client, server] = l.local.equals(s.peer ?? Buffer.alloc(0)) ? [s, p] : [p, s];
        const c = fresh(client);
        put(client, c);
        bindName(c, client);
        connect(c, l.local, `unix ${unixPath(l.local)}`);
        const a = accept(made.get(l.fields.ino)!);
        put(server, a);
        restoreOptions(a, server.opts);
      } else {
        const [a, b] = socketpair(AF.UNIX, s.fields.type);
        put(s, a);
        put(p, b);
        restoreOptions(a, s.opts);
        restoreOptions(b, p.opts);
        // A datagram pair may have names of its own (a stream's are its listener's, and that is gone).
        if (s.fields.type === SOCK.DGRAM) { bindName(a, s); bindName(b, p); }
      }
    }
    // Datagram sockets connected to a named one.
    for (const s of socks) {
      if (s.fields.type !== SOCK.DGRAM || s.fields.peer_where !== PeerWhere.IMAGE) continue;
      const p = byIno.get(s.fields.peer_ino)!;
      if (p.fields.peer_ino === s.fields.ino && p.fields.state === SkState.CONNECTED) continue; // a pair
      connect(made.get(s.fields.ino)!, p.local, `unix ${unixPath(p.local)}`);
    }
    // 3. Connections still in a listener's queue, in the order they came.
    for (const s of socks) {
      if (s.fields.peer_where !== PeerWhere.PENDING) continue;
      const l = byIno.get(s.fields.listener_ino);
      if (!l) throw new CkptError('BAD_IMAGE', `bad image: unix socket ${s.fields.ino} waits on listener ${s.fields.listener_ino}, which the image does not hold`);
      const fd = fresh(s);
      put(s, fd);
      bindName(fd, s);
      connect(fd, l.local, `unix ${unixPath(l.local)}`);
    }
    // 4. A peer that was closed, or (--ext-unix-sk) one outside the dump.
    for (const s of socks) {
      const w = s.fields.peer_where;
      if (made.has(s.fields.ino) || (w !== PeerWhere.GONE && w !== PeerWhere.EXTERNAL)) continue;
      const name = s.peer ? unixPath(s.peer) : '';
      if (w === PeerWhere.EXTERNAL && name) {
        const fd = fresh(s);
        put(s, fd);
        bindName(fd, s);
        const r = tryConnect(fd, s.peer!);
        if (r < 0) throw new CkptError('SYSCALL', `cannot reconnect unix socket ${s.fields.ino} to ${name} (errno ${-r}): the peer outside the dump is gone`, { errno: -r, syscall: 'connect' });
        log(`unix socket ${s.fields.ino}: reconnected to ${name} (a new connection for the peer)`);
        continue;
      }
      // Connected to nothing: a pair whose other end is closed once the queued data is in.
      const [a, b] = socketpair(AF.UNIX, s.fields.type);
      put(s, a);
      restoreOptions(a, s.opts);
      writer.set(s.fields.ino, b);
      temps.push(b);
    }
    // Queued data, from the end that sent it.
    for (const s of socks) {
      const msgs = s.queues.filter((q) => q.queue === Queue.RECV).map((q) => q.data);
      if (!msgs.length) continue;
      const what = `unix socket ${unixPath(s.local) || s.fields.ino}`;
      const stream = s.fields.type === SOCK.STREAM;
      const peerFd = writer.get(s.fields.ino) ?? (s.fields.peer_where === PeerWhere.IMAGE ? made.get(s.fields.peer_ino) : undefined);
      const mutual = peerFd !== undefined && (writer.has(s.fields.ino) || byIno.get(s.fields.peer_ino)?.fields.peer_ino === s.fields.ino);
      if (mutual) { sendQueue(peerFd, msgs, stream, what); continue; }
      if (s.fields.type === SOCK.DGRAM && unixPath(s.local)) {
        // A named datagram socket receives from anyone: a temporary socket sends to its name.
        const t = socket(AF.UNIX, SOCK.DGRAM, 0);
        temps.push(t);
        sendQueue(t, msgs, false, what, s.local);
        continue;
      }
      throw new CkptError('BAD_IMAGE', `bad image: ${what} has queued data but no way to send it`);
    }
    for (const s of socks) {
      const how = s.fields.shutdown & 3;
      if (how && s.fields.peer_where !== PeerWhere.GONE) shutdown(made.get(s.fields.ino)!, how - 1);
    }
  } finally {
    for (const t of temps) close(t);
  }
}
