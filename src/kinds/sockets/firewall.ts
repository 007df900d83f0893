/**
 * Holding the packets of frozen TCP connections (--tcp-established). From
 * the moment a connection is put in repair mode at dump until it is restored,
 * no socket answers for it: a packet from the peer would make the kernel
 * reset it, and a restore that fails could send a FIN. nftables drops both
 * directions of each connection meanwhile: table `inet ckpt`, sets `conn4`
 * and `conn6` of (address . port . address . port), one rule per hook.
 * The table outlives ckpt on purpose: the block must last from dump to restore.
 */
import { builtin } from '../../builtin.js';
import { CkptError } from '../../errors.js';
import { inetAddr } from './addr.js';

export interface Conn { local: Buffer; peer: Buffer }

const TABLE = 'inet ckpt';
const SETUP = [
  `add table ${TABLE}`,
  `add set ${TABLE} conn4 { type ipv4_addr . inet_service . ipv4_addr . inet_service ; }`,
  `add set ${TABLE} conn6 { type ipv6_addr . inet_service . ipv6_addr . inet_service ; }`,
  ...['input', 'output'].flatMap((hook) => [
    `add chain ${TABLE} ${hook} { type filter hook ${hook} priority -150 ; policy accept ; }`,
    `add rule ${TABLE} ${hook} ip saddr . tcp sport . ip daddr . tcp dport @conn4 drop`,
    `add rule ${TABLE} ${hook} ip6 saddr . tcp sport . ip6 daddr . tcp dport @conn6 drop`,
  ]),
];

function nft(script: string): { ok: boolean; err: string } {
  const { spawnSync } = builtin<typeof import('node:child_process')>('node:child_process');
  const r = spawnSync('nft', ['-f', '-'], { input: script, encoding: 'utf8' });
  if (r.error) throw new CkptError('UNSUPPORTED', `--tcp-established needs nft (Debian package nftables) to hold the packets of frozen connections: ${(r.error as NodeJS.ErrnoException).code}`);
  return { ok: r.status === 0, err: (r.stderr ?? '').trim().split('\n')[0] ?? '' };
}

/** Both directions of a connection, as set elements. */
function elements(c: Conn): { set: 'conn4' | 'conn6'; elems: string[] } {
  const l = inetAddr(c.local), p = inetAddr(c.peer);
  if (!l || !p) throw new CkptError('INTERNAL', 'firewall: a connection without inet addresses');
  return {
    set: l.family === 4 ? 'conn4' : 'conn6',
    elems: [`${l.ip} . ${l.port} . ${p.ip} . ${p.port}`, `${p.ip} . ${p.port} . ${l.ip} . ${l.port}`],
  };
}

function script(verb: 'add' | 'delete', conns: Conn[]): string {
  return conns.map((c) => {
    const { set, elems } = elements(c);
    return `${verb} element ${TABLE} ${set} { ${elems.join(', ')} }`;
  }).join('\n') + '\n';
}

/** Drop every packet of these connections until unlockConnections. */
export function lockConnections(conns: Conn[]): void {
  if (!conns.length) return;
  if (!nft(`list table ${TABLE}\n`).ok) {
    const r = nft(SETUP.join('\n') + '\n');
    if (!r.ok) throw new CkptError('PERMISSION', `cannot create nftables table ${TABLE} to hold frozen TCP connections: ${r.err}`);
  }
  const r = nft(script('add', conns));
  if (!r.ok) throw new CkptError('PERMISSION', `cannot block the packets of frozen TCP connections with nft: ${r.err}`);
}

/** Let their packets through again; a connection that is not blocked here (another host) is fine. */
export function unlockConnections(conns: Conn[]): void {
  // One connection at a time: nft refuses a whole batch for one missing element.
  for (const c of conns) nft(script('delete', [c]));
}
