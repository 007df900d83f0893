/**
 * Socket options: each one a program may have set is read, and saved when it
 * differs from what a fresh socket of the same kind has. Restore sets the
 * saved ones on the new socket before it is bound.
 */
import { AF, SO, SOCK, SOL, TCP_OPT, getsockopt, setsockopt, socket, tryGetsockopt } from '../../sys/net.js';
import { close } from '../../sys/syscalls.js';
import type { SockOpt } from './records.js';

const IP_TOS = 1, IP_TTL = 2, IP_FREEBIND = 15, IP_TRANSPARENT = 19;
const IPV6_UNICAST_HOPS = 16, IPV6_V6ONLY = 26, IPV6_TCLASS = 67;

/** [level, name, size in bytes] */
type Opt = readonly [number, number, number];

const COMMON: Opt[] = [
  [SOL.SOCKET, SO.REUSEADDR, 4], [SOL.SOCKET, SO.REUSEPORT, 4], [SOL.SOCKET, SO.KEEPALIVE, 4],
  [SOL.SOCKET, SO.BROADCAST, 4], [SOL.SOCKET, SO.SNDBUF, 4], [SOL.SOCKET, SO.RCVBUF, 4],
  [SOL.SOCKET, SO.PRIORITY, 4], [SOL.SOCKET, SO.RCVLOWAT, 4], [SOL.SOCKET, SO.LINGER, 8],
  [SOL.SOCKET, SO.RCVTIMEO, 16], [SOL.SOCKET, SO.SNDTIMEO, 16], [SOL.SOCKET, SO.PASSCRED, 4],
  [SOL.SOCKET, SO.MARK, 4], [SOL.SOCKET, SO.OOBINLINE, 4], [SOL.SOCKET, SO.TIMESTAMP, 4],
  [SOL.SOCKET, SO.PEEK_OFF, 4], [SOL.SOCKET, SO.DONTROUTE, 4],
];
const TCP: Opt[] = [
  [SOL.TCP, TCP_OPT.NODELAY, 4], [SOL.TCP, TCP_OPT.CORK, 4], [SOL.TCP, TCP_OPT.KEEPIDLE, 4],
  [SOL.TCP, TCP_OPT.KEEPINTVL, 4], [SOL.TCP, TCP_OPT.KEEPCNT, 4], [SOL.TCP, TCP_OPT.USER_TIMEOUT, 4],
  [SOL.TCP, TCP_OPT.DEFER_ACCEPT, 4], [SOL.TCP, TCP_OPT.NOTSENT_LOWAT, 4], [SOL.TCP, TCP_OPT.LINGER2, 4],
];
const IPV4: Opt[] = [[SOL.IP, IP_TOS, 4], [SOL.IP, IP_TTL, 4], [SOL.IP, IP_FREEBIND, 4], [SOL.IP, IP_TRANSPARENT, 4]];
const IPV6: Opt[] = [[SOL.IPV6, IPV6_V6ONLY, 4], [SOL.IPV6, IPV6_UNICAST_HOPS, 4], [SOL.IPV6, IPV6_TCLASS, 4]];

function optionsOf(family: number, type: number): Opt[] {
  const list = [...COMMON];
  if (family === AF.INET || family === AF.INET6) {
    list.push(...(family === AF.INET ? IPV4 : IPV6));
    if (type === SOCK.STREAM) list.push(...TCP);
  }
  return list;
}

function readAll(fd: number, list: Opt[]): (Buffer | undefined)[] {
  return list.map(([level, name, size]) => tryGetsockopt(fd, level, name, size));
}

/** The options of socket `fd` that differ from a fresh socket(family, type, protocol). */
export function dumpOptions(fd: number, family: number, type: number, protocol: number): SockOpt[] {
  const list = optionsOf(family, type);
  const now = readAll(fd, list);
  const fresh = socket(family, type, protocol);
  let base: (Buffer | undefined)[];
  try { base = readAll(fresh, list); } finally { close(fresh); }
  const out: SockOpt[] = [];
  list.forEach(([level, name], i) => {
    const v = now[i];
    if (v && !(base[i] && v.equals(base[i]!))) out.push({ level, name, value: v });
  });
  return out;
}

/**
 * Set saved options on a new socket. Buffer sizes are set with the FORCE
 * variants (ckpt may exceed the sysctl maximum as the original could have)
 * and halved: the kernel doubles what it is given.
 */
export function restoreOptions(fd: number, opts: SockOpt[]): void {
  for (const o of opts) {
    if (o.level === SOL.SOCKET && (o.name === SO.SNDBUF || o.name === SO.RCVBUF)) {
      const b = Buffer.alloc(4);
      b.writeInt32LE(Math.floor(o.value.readInt32LE(0) / 2), 0);
      setsockopt(fd, SOL.SOCKET, o.name === SO.SNDBUF ? SO.SNDBUFFORCE : SO.RCVBUFFORCE, b, o.name === SO.SNDBUF ? 'SO_SNDBUFFORCE' : 'SO_RCVBUFFORCE');
    } else {
      setsockopt(fd, o.level, o.name, o.value);
    }
  }
}

/** The saved value of one option as an int, or `dflt` when it was not saved (default). */
export function optInt(opts: SockOpt[], level: number, name: number, dflt: number): number {
  const o = opts.find((x) => x.level === level && x.name === name);
  return o ? o.value.readInt32LE(0) : dflt;
}

/** getsockopt of an int option that must exist. */
export function readInt(fd: number, level: number, name: number): number {
  return getsockopt(fd, level, name).readInt32LE(0);
}
