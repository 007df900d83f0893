/**
 * The records of a socket: one SOCKET per socket (by inode, like PIPE), in
 * PROCESS; its addresses, non-default options, queued data and TCP repair
 * state are its children. FD records of kind SOCKET point to it by inode.
 */
import { CkptError } from '../../errors.js';
import { Content, childrenOf, defineRecord, encode, maybeChildOf, type FieldsOf, type ImageRecord, type TypedRecord } from '../../image/index.js';
import { T } from '../ids.js';
import { describeAddr } from './addr.js';

/** How a socket stands: what restore must do to bring it back. */
export enum SkState { UNCONNECTED = 0, LISTEN = 1, CONNECTED = 2 }
/** Where a connected socket's peer was at dump time. */
export enum PeerWhere {
  NONE = 0,
  /** A socket in the image: both ends are made once, together. */
  IMAGE = 1,
  /** Outside the dumped processes (allowed with --ext-unix-sk): reconnected by name, or left closed. */
  EXTERNAL = 2,
  /** Closed: the socket comes back connected to nothing, after its queued data. */
  GONE = 3,
  /** A connection not yet accepted, in the queue of a listener in the image (listener_ino). */
  PENDING = 4,
}
/** A unix socket bound in the filesystem: whether its socket file was still there. */
export enum NameFile { NONE = 0, PRESENT = 1, DELETED = 2 }

export const SOCKET = defineRecord({
  type: T.SOCKET, name: 'socket', content: Content.ARRAY,
  fields: {
    ino: 'u64', family: 'u32', type: 'u32', protocol: 'u32', state: 'u32', backlog: 'u32',
    peer_where: 'u32', peer_ino: 'u64', listener_ino: 'u64',
    /** sk_shutdown: 1 no more receives, 2 no more sends. */
    shutdown: 'u32', name_file: 'u32', file_mode: 'u32', file_uid: 'u32', file_gid: 'u32',
  },
});
/** A struct sockaddr: which 0 is the socket's own address, 1 its peer's. */
export const SOCKET_ADDR = defineRecord({ type: T.SOCKET_ADDR, name: 'socket_addr', content: Content.DATA, fields: { which: 'u32' } });
/** One option that differs from a fresh socket's: getsockopt bytes as setsockopt takes them. */
export const SOCKET_OPT = defineRecord({ type: T.SOCKET_OPT, name: 'socket_opt', content: Content.DATA, fields: { level: 'u32', optname: 'u32' } });
/**
 * Queued bytes, in order: for a datagram or seqpacket socket one record per
 * message; for a stream one run. queue: 0 receive queue, 1 TCP send queue
 * already sent (not yet acknowledged), 2 TCP send queue not yet sent.
 */
export const SOCKET_QUEUE = defineRecord({ type: T.SOCKET_QUEUE, name: 'socket_queue', content: Content.DATA, fields: { queue: 'u32' } });
export enum Queue { RECV = 0, SENT = 1, UNSENT = 2 }
/** An established TCP connection as TCP repair mode reads it. */
export const TCP_REPAIR = defineRecord({
  type: T.TCP_REPAIR, name: 'tcp_repair', content: Content.VOID,
  fields: {
    tcp_state: 'u32', snd_seq: 'u32', rcv_seq: 'u32', mss: 'u32', snd_wscale: 'u32', rcv_wscale: 'u32',
    options: 'u32', timestamp: 'u32', snd_wl1: 'u32', snd_wnd: 'u32', max_window: 'u32', rcv_wnd: 'u32', rcv_wup: 'u32',
    /** When the dump froze it (ms since the epoch): restore logs how long it was frozen. */
    frozen_at_ms: 'u64',
  },
});

export type SocketFields = FieldsOf<typeof SOCKET>;
export type TcpRepairFields = FieldsOf<typeof TCP_REPAIR>;
export interface SockOpt { level: number; name: number; value: Buffer }
export interface SavedSocket {
  fields: SocketFields;
  local: Buffer;
  peer?: Buffer;
  opts: SockOpt[];
  queues: { queue: Queue; data: Buffer }[];
  tcp?: TcpRepairFields;
}

export const SOCKET_SCHEMAS = [SOCKET, SOCKET_ADDR, SOCKET_OPT, SOCKET_QUEUE, TCP_REPAIR] as const;

export function encodeSocket(s: SavedSocket): Buffer {
  return encode(SOCKET, s.fields, [
    encode(SOCKET_ADDR, { which: 0 }, s.local),
    ...(s.peer ? [encode(SOCKET_ADDR, { which: 1 }, s.peer)] : []),
    ...s.opts.map((o) => encode(SOCKET_OPT, { level: o.level, optname: o.name }, o.value)),
    ...s.queues.map((q) => encode(SOCKET_QUEUE, { queue: q.queue }, q.data)),
    ...(s.tcp ? [encode(TCP_REPAIR, s.tcp)] : []),
  ]);
}

/** The SOCKET records of a PROCESS record. */
export function loadSockets(proc: ImageRecord): SavedSocket[] {
  return childrenOf(proc, SOCKET).map(loadSocket);
}

function loadSocket(r: TypedRecord<typeof SOCKET>): SavedSocket {
  const addrs = childrenOf(r, SOCKET_ADDR);
  const local = addrs.find((a) => a.fields.which === 0);
  if (!local) throw new CkptError('BAD_IMAGE', `bad image: socket record at offset ${r.offset} has no address`, { offset: r.offset });
  return {
    fields: r.fields,
    local: local.data ?? Buffer.alloc(0),
    peer: addrs.find((a) => a.fields.which === 1)?.data ?? undefined,
    opts: childrenOf(r, SOCKET_OPT).map((o) => ({ level: o.fields.level, name: o.fields.optname, value: o.data ?? Buffer.alloc(0) })),
    queues: childrenOf(r, SOCKET_QUEUE).map((q) => ({ queue: q.fields.queue, data: q.data ?? Buffer.alloc(0) })),
    tcp: maybeChildOf(r, TCP_REPAIR)?.fields,
  };
}

const FAMILIES: Record<number, string> = { 1: 'unix', 2: 'inet', 10: 'inet6', 16: 'netlink' };
const TYPES: Record<number, string> = { 1: 'stream', 2: 'dgram', 3: 'raw', 5: 'seqpacket' };

/** A SOCKET record as `ckpt show` prints it. */
export function showSocket(r: TypedRecord<typeof SOCKET>): Record<string, string | number> {
  const s = loadSocket(r);
  const f = s.fields;
  const queued = (q: Queue) => s.queues.filter((x) => x.queue === q).reduce((n, x) => n + x.data.length, 0);
  return {
    ino: Number(f.ino), family: FAMILIES[f.family] ?? f.family, type: TYPES[f.type] ?? f.type,
    state: SkState[f.state] ?? f.state, local: describeAddr(s.local), peer: s.peer ? describeAddr(s.peer) : '-',
    peer_where: PeerWhere[f.peer_where] ?? f.peer_where,
    queued: queued(Queue.RECV), ...(s.tcp ? { send_queue: queued(Queue.SENT) + queued(Queue.UNSENT), snd_seq: s.tcp.snd_seq, rcv_seq: s.tcp.rcv_seq } : {}),
  };
}
