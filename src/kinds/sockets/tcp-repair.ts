/**
 * Established TCP connections through the kernel's TCP repair mode
 * (TCP_REPAIR, linux/tcp.h): at dump the sequence numbers, both queues, the
 * window and the negotiated options are read from a socket put in repair
 * mode (which also makes its close silent); at restore a socket in repair
 * mode is bound and "connected" without a packet, given the same numbers
 * and queues, and let go. The peer sees nothing, provided its packets were
 * held meanwhile (firewall.ts).
 */
import { CkptError } from '../../errors.js';
import {
  SIOCINQ, SIOCOUTQ, SIOCOUTQNSD, SO, SOCK, SOL, TCP_OPT, bind, connect, getsockopt, ioctlInt, peekMsg,
  setsockopt, setsockoptInt, socket,
} from '../../sys/net.js';
import { close } from '../../sys/syscalls.js';
import { describeAddr } from './addr.js';
import { restoreOptions } from './options.js';
import { peekQueue, sendQueue } from './queue.js';
import { Queue, type SavedSocket, type TcpRepairFields } from './records.js';

export const TCP_STATE = { ESTABLISHED: 1, SYN_SENT: 2, SYN_RECV: 3, FIN_WAIT1: 4, FIN_WAIT2: 5, TIME_WAIT: 6, CLOSE: 7, CLOSE_WAIT: 8, LAST_ACK: 9, LISTEN: 10, CLOSING: 11 } as const;
const REPAIR_ON = 1, REPAIR_OFF = 0, REPAIR_OFF_NO_WP = -1;
const NO_QUEUE = 0, RECV_QUEUE = 1, SEND_QUEUE = 2;
const TCPI_OPT = { TIMESTAMPS: 1, SACK: 2, WSCALE: 4 } as const;
const TCPOPT = { MSS: 2, WINDOW: 3, SACK_PERM: 4, TIMESTAMP: 8 } as const;

/** struct tcp_info's first bytes: state, options, window scales. */
export function tcpInfo(fd: number): { state: number; options: number; sndWscale: number; rcvWscale: number } {
  const b = getsockopt(fd, SOL.TCP, TCP_OPT.INFO, 104);
  return { state: b[0], options: b[5], sndWscale: b[6] & 0xf, rcvWscale: b[6] >> 4 };
}

export function repairOn(fd: number): void { setsockoptInt(fd, SOL.TCP, TCP_OPT.REPAIR, REPAIR_ON, 'TCP_REPAIR'); }
export function repairOff(fd: number): void { setsockoptInt(fd, SOL.TCP, TCP_OPT.REPAIR, REPAIR_OFF, 'TCP_REPAIR'); }
/** Out of repair mode without the window probe (for a socket not connected). */
export function repairOffQuiet(fd: number): void { setsockoptInt(fd, SOL.TCP, TCP_OPT.REPAIR, REPAIR_OFF_NO_WP, 'TCP_REPAIR'); }

function queueSeq(fd: number, queue: number): number {
  setsockoptInt(fd, SOL.TCP, TCP_OPT.REPAIR_QUEUE, queue, 'TCP_REPAIR_QUEUE');
  return getsockopt(fd, SOL.TCP, TCP_OPT.QUEUE_SEQ).readUInt32LE(0);
}

/** Read a connection already in repair mode: fills `s.tcp` and its queues. */
export function dumpRepair(fd: number, s: SavedSocket, refuse: (what: string) => CkptError): void {
  const info = tcpInfo(fd);
  const inq = ioctlInt(fd, SIOCINQ), outq = ioctlInt(fd, SIOCOUTQ), unsent = ioctlInt(fd, SIOCOUTQNSD);
  const snd = queueSeq(fd, SEND_QUEUE);
  const sendData = outq > 0 ? peekMsg(fd).data ?? Buffer.alloc(0) : Buffer.alloc(0);
  if (sendData.length !== outq) throw new CkptError('INTERNAL', `TCP send queue: read ${sendData.length} bytes, the kernel says ${outq}`);
  const rcv = queueSeq(fd, RECV_QUEUE);
  const recv = inq > 0 ? peekQueue(fd, { stream: true, expect: inq, refuse }) : [];
  setsockoptInt(fd, SOL.TCP, TCP_OPT.REPAIR_QUEUE, NO_QUEUE, 'TCP_REPAIR_QUEUE');
  const mss = getsockopt(fd, SOL.TCP, TCP_OPT.MAXSEG).readUInt32LE(0);
  const ts = info.options & TCPI_OPT.TIMESTAMPS ? getsockopt(fd, SOL.TCP, TCP_OPT.TIMESTAMP).readUInt32LE(0) : 0;
  const w = getsockopt(fd, SOL.TCP, TCP_OPT.REPAIR_WINDOW, 20);
  s.tcp = {
    tcp_state: info.state, snd_seq: snd, rcv_seq: rcv, mss, snd_wscale: info.sndWscale, rcv_wscale: info.rcvWscale,
    options: info.options, timestamp: ts,
    snd_wl1: w.readUInt32LE(0), snd_wnd: w.readUInt32LE(4), max_window: w.readUInt32LE(8), rcv_wnd: w.readUInt32LE(12), rcv_wup: w.readUInt32LE(16), frozen_at_ms: 0n,
  };
  s.queues = [
    ...recv.map((data) => ({ queue: Queue.RECV, data })),
    ...(outq > unsent ? [{ queue: Queue.SENT, data: sendData.subarray(0, outq - unsent) }] : []),
    ...(unsent > 0 ? [{ queue: Queue.UNSENT, data: sendData.subarray(outq - unsent) }] : []),
  ];
}

const u32 = (n: number) => n >>> 0;

/** A new socket in ckpt that is the saved connection, out of repair mode. */
export function createRepaired(s: SavedSocket): number {
  const t: TcpRepairFields = s.tcp!;
  const what = `TCP ${describeAddr(s.local)} → ${describeAddr(s.peer)}`;
  const fd = socket(s.fields.family, SOCK.STREAM, s.fields.protocol);
  try {
    // Options first: SO_REUSEADDR after TCP_REPAIR would undo the forced reuse that lets
    // this socket share its port with the restored listener.
    restoreOptions(fd, s.opts);
    repairOn(fd);
    const bytes = (q: Queue) => s.queues.filter((x) => x.queue === q).reduce((n, x) => n + x.data.length, 0);
    const sent = bytes(Queue.SENT), unsent = bytes(Queue.UNSENT), inq = bytes(Queue.RECV);
    // The sequence numbers where the queues start; writing the queues moves them to the saved ones.
    setsockoptInt(fd, SOL.TCP, TCP_OPT.REPAIR_QUEUE, SEND_QUEUE, 'TCP_REPAIR_QUEUE');
    setsockoptInt(fd, SOL.TCP, TCP_OPT.QUEUE_SEQ, u32(t.snd_seq - sent - unsent) | 0, 'TCP_QUEUE_SEQ');
    setsockoptInt(fd, SOL.TCP, TCP_OPT.REPAIR_QUEUE, RECV_QUEUE, 'TCP_REPAIR_QUEUE');
    setsockoptInt(fd, SOL.TCP, TCP_OPT.QUEUE_SEQ, u32(t.rcv_seq - inq) | 0, 'TCP_QUEUE_SEQ');
    bind(fd, s.local, what);
    connect(fd, s.peer!, what);
    const opts: [number, number][] = [[TCPOPT.MSS, t.mss]];
    if (t.options & TCPI_OPT.WSCALE) opts.push([TCPOPT.WINDOW, t.snd_wscale | (t.rcv_wscale << 16)]);
    if (t.options & TCPI_OPT.SACK) opts.push([TCPOPT.SACK_PERM, 0]);
    if (t.options & TCPI_OPT.TIMESTAMPS) opts.push([TCPOPT.TIMESTAMP, 0]);
    const ob = Buffer.alloc(opts.length * 8);
    opts.forEach(([code, val], i) => { ob.writeUInt32LE(code, i * 8); ob.writeUInt32LE(u32(val), i * 8 + 4); });
    setsockopt(fd, SOL.TCP, TCP_OPT.REPAIR_OPTIONS, ob, 'TCP_REPAIR_OPTIONS');
    if (t.options & TCPI_OPT.TIMESTAMPS) setsockoptInt(fd, SOL.TCP, TCP_OPT.TIMESTAMP, t.timestamp | 0, 'TCP_TIMESTAMP');
    const data = (q: Queue) => s.queues.filter((x) => x.queue === q).map((x) => x.data);
    setsockoptInt(fd, SOL.TCP, TCP_OPT.REPAIR_QUEUE, RECV_QUEUE, 'TCP_REPAIR_QUEUE');
    sendQueue(fd, data(Queue.RECV), true, `${what} (receive queue)`);
    setsockoptInt(fd, SOL.TCP, TCP_OPT.REPAIR_QUEUE, SEND_QUEUE, 'TCP_REPAIR_QUEUE');
    sendQueue(fd, data(Queue.SENT), true, `${what} (send queue)`);
    setsockoptInt(fd, SOL.TCP, TCP_OPT.REPAIR_QUEUE, NO_QUEUE, 'TCP_REPAIR_QUEUE');
    const w = Buffer.alloc(20);
    [t.snd_wl1, t.snd_wnd, t.max_window, t.rcv_wnd, t.rcv_wup].forEach((v, i) => w.writeUInt32LE(u32(v), i * 4));
    setsockopt(fd, SOL.TCP, TCP_OPT.REPAIR_WINDOW, w, 'TCP_REPAIR_WINDOW');
    repairOff(fd);
    // Leaving repair mode clears SO_REUSEADDR.
    const reuse = s.opts.find((o) => o.level === SOL.SOCKET && o.name === SO.REUSEADDR);
    if (reuse) setsockopt(fd, SOL.SOCKET, SO.REUSEADDR, reuse.value, 'SO_REUSEADDR');
    // Bytes the program had written but the kernel had not sent yet: sent now, as it would have.
    sendQueue(fd, data(Queue.UNSENT), true, `${what} (unsent data)`);
    return fd;
  } catch (e) {
    // Still in repair mode if it failed there: the close sends nothing to the peer.
    close(fd);
    throw e;
  }
}
