/** The task's filesystem context: cwd and umask. */
import { Content, defineRecord, type FieldsOf } from '../image/index.js';
import { NR } from '../sys/nr.js';
import { T } from './ids.js';
import { callAll, type RestoreTarget, type TargetCall } from './target.js';

/** content: the cwd, as ckpt's own root sees it. */
export const FS = defineRecord({ type: T.FS, name: 'fs', content: Content.NAME, fields: { umask: 'u32' } });
/** content: the root directory (chroot), when it is not '/'. */
export const FS_ROOT = defineRecord({ type: T.FS_ROOT, name: 'fs_root', content: Content.NAME, fields: {} });
export type FsFields = FieldsOf<typeof FS>;

/** cwd first (a path from ckpt's root), then chroot: the cwd stays where it is. */
export function restoreFs(t: RestoreTarget, fs: FsFields, cwd: string, root: string): void {
  t.scratch.reset();
  const calls: TargetCall[] = [{ nr: NR.chdir, args: [t.scratch.put(Buffer.from(cwd + '\0'))], what: `chdir(${cwd})` }];
  if (root !== '/') calls.push({ nr: NR.chroot, args: [t.scratch.put(Buffer.from(root + '\0'))], what: `chroot(${root})` });
  calls.push({ nr: NR.umask, args: [fs.umask], what: 'umask' });
  callAll(t, calls, { check: true });
}
