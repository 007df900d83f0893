/**
 * A socket's receive queue read without consuming it: SO_PEEK_OFF set to 0,
 * then MSG_PEEK message after message (each peek moves the offset on), then
 * the program's own peek offset put back.
 */
import { CkptError } from '../../errors.js';
import { MSG, SO, SOL, peekMsg, setsockoptInt, tryGetsockopt, trySend } from '../../sys/net.js';
import { close } from '../../sys/syscalls.js';
import { E } from '../../sys/errno.js';

export interface PeekOptions {
  /** Stream: one run of bytes; otherwise one buffer per message. */
  stream: boolean;
  /** Bytes the kernel says are queued, when it says (stream, seqpacket): stop there. */
  expect?: number;
  /** Refuse with this: "not supported yet: fd N of pid P is <what>". */
  refuse: (what: string) => CkptError;
}

export function peekQueue(fd: number, o: PeekOptions): Buffer[] {
  const saved = tryGetsockopt(fd, SOL.SOCKET, SO.PEEK_OFF)?.readInt32LE(0) ?? -1;
  setsockoptInt(fd, SOL.SOCKET, SO.PEEK_OFF, 0, 'SO_PEEK_OFF');
  const out: Buffer[] = [];
  let total = 0;
  try {
    for (let n = 0; o.expect === undefined || total < o.expect; n++) {
      const m = peekMsg(fd);
      for (const f of m.fds) close(f);
      if (m.fds.length) throw o.refuse('a socket with file descriptors in flight (SCM_RIGHTS)');
      if (!m.data) break;
      if (m.flags & MSG.TRUNC) throw o.refuse('a socket with a message over 8 MiB queued');
      // 0 bytes: the end of a stream whose peer shut down (or an empty datagram, kept).
      if (m.data.length === 0 && (o.stream || o.expect !== undefined || n > 100_000)) break;
      out.push(m.data);
      total += m.data.length;
    }
  } finally {
    setsockoptInt(fd, SOL.SOCKET, SO.PEEK_OFF, saved, 'SO_PEEK_OFF');
  }
  if (o.expect !== undefined && total !== o.expect) {
    throw new CkptError('INTERNAL', `socket queue: read ${total} bytes, the kernel says ${o.expect} are queued`);
  }
  return o.stream ? (total ? [Buffer.concat(out)] : []) : out;
}

/**
 * Write saved messages (or a stream run) through `fd` so that they land in
 * the peer's receive queue, in order, each exactly once. `to`: the address to
 * send each datagram to, for a socket that is not connected.
 */
export function sendQueue(fd: number, msgs: Buffer[], stream: boolean, what: string, to?: Buffer): void {
  for (const m of msgs) {
    let off = 0;
    do {
      const n = trySend(fd, m.subarray(off), MSG.DONTWAIT | MSG.NOSIGNAL, to);
      if (n < 0) {
        throw new CkptError('SYSCALL', `${n === -E.EAGAIN ? 'EAGAIN (the socket buffer is full)' : `errno ${-n}`}: sending the queued data of ${what} failed`, { syscall: 'sendto', errno: -n });
      }
      off += n;
    } while (stream && off < m.length);
  }
}
