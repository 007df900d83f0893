/**
 * The uts namespace of a container: its hostname and domainname.
 *
 * Dump reads them with uname(2) from ckpt's own thread after a setns into
 * the target's uts namespace (sys/ns.ts): no remote call, no scratch memory
 * in the target, and the answer is the kernel's own. (Reading
 * /proc/PID/root/proc/sys/kernel/hostname would not do: that file shows the
 * uts namespace of the reader, not of the process.) Restore sets them with
 * remote sethostname/setdomainname in the restored init, which is in its
 * new uts namespace by then.
 */
import { Content, defineRecord, type FieldsOf } from '../image/index.js';
import { inNamespaceOf, utsNames } from '../sys/ns.js';
import { NR } from '../sys/nr.js';
import { T } from './ids.js';
import type { RestoreTarget } from './target.js';

/** Each name is at most 64 bytes (__NEW_UTS_LEN), NUL-padded here. */
export const UTS_NS = defineRecord({ type: T.UTS_NS, name: 'uts_ns', content: Content.VOID, fields: { hostname: 'str65', domainname: 'str65' } });
export type UtsFields = FieldsOf<typeof UTS_NS>;

export function dumpUts(pid: number): UtsFields {
  return inNamespaceOf(pid, 'uts', utsNames);
}

export function restoreUts(t: RestoreTarget, u: UtsFields): void {
  t.scratch.reset();
  const host = Buffer.from(u.hostname);
  const domain = Buffer.from(u.domainname);
  t.remote.call(NR.sethostname, [t.scratch.put(host), host.length], `sethostname(${u.hostname})`);
  t.remote.call(NR.setdomainname, [t.scratch.put(domain), domain.length], `setdomainname(${u.domainname})`);
}
