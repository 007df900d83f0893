/** struct sockaddr bytes as people and nft read them. */
import { AF } from '../../sys/net.js';

export interface InetAddr { family: 4 | 6; ip: string; port: number }

/** An AF_INET or AF_INET6 address; an IPv4-mapped IPv6 address is given as IPv4 (that is what goes on the wire). */
export function inetAddr(sa: Buffer): InetAddr | undefined {
  if (sa.length < 8) return undefined;
  const family = sa.readUInt16LE(0);
  const port = sa.readUInt16BE(2);
  if (family === AF.INET) return { family: 4, ip: [...sa.subarray(4, 8)].join('.'), port };
  if (family !== AF.INET6 || sa.length < 24) return undefined;
  const a = sa.subarray(8, 24);
  if (a.subarray(0, 10).every((b) => b === 0) && a[10] === 0xff && a[11] === 0xff) return { family: 4, ip: [...a.subarray(12)].join('.'), port };
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(a.readUInt16BE(i).toString(16));
  // The longest run of zero groups (two or more) becomes '::'.
  let best = -1, bestLen = 1;
  for (let i = 0; i < 8; i++) {
    let n = 0;
    while (i + n < 8 && groups[i + n] === '0') n++;
    if (n > bestLen) { best = i; bestLen = n; }
  }
  const ip = best < 0 ? groups.join(':') : `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
  return { family: 6, ip, port };
}

/** The path of a unix address: '@name' for an abstract one, '' when unbound. */
export function unixPath(sa: Buffer): string {
  const path = sa.subarray(2);
  if (path.length === 0) return '';
  if (path[0] === 0) return '@' + path.subarray(1).toString('latin1').replace(/\0/g, '@');
  const nul = path.indexOf(0);
  return path.subarray(0, nul < 0 ? path.length : nul).toString('utf8');
}

export function describeAddr(sa: Buffer | undefined): string {
  if (!sa || sa.length < 2) return '-';
  const family = sa.readUInt16LE(0);
  if (family === AF.UNIX) return unixPath(sa) || '(unnamed)';
  if (family === AF.NETLINK && sa.length >= 12) return `portid ${sa.readUInt32LE(4)} groups 0x${sa.readUInt32LE(8).toString(16)}`;
  const a = inetAddr(sa);
  if (!a) return `family ${family}`;
  return a.family === 6 ? `[${a.ip}]:${a.port}` : `${a.ip}:${a.port}`;
}

/** The port of an inet address (0 when not bound). */
export function inetPort(sa: Buffer): number {
  return sa.length >= 4 ? sa.readUInt16BE(2) : 0;
}

/** An inet address that says nothing: family only, any address, port 0. */
export function isUnspecified(sa: Buffer): boolean {
  const family = sa.length >= 2 ? sa.readUInt16LE(0) : 0;
  if (family !== AF.INET && family !== AF.INET6) return sa.length <= 2;
  const body = family === AF.INET ? sa.subarray(2, 8) : sa.subarray(2, 24);
  return body.every((b) => b === 0);
}
