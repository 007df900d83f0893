/** The task's filesystem context: cwd and umask. */
import { Content, defineRecord, type FieldsOf } from '../image/index.js';
import { NR } from '../sys/nr.js';
import { T } from './ids.js';
import type { RestoreTarget } from './target.js';

export const FS = defineRecord({ type: T.FS, name: 'fs', content: Content.NAME, fields: { umask: 'u32' } });
export type FsFields = FieldsOf<typeof FS>;

export function restoreFs(t: RestoreTarget, fs: FsFields, cwd: string): void {
  t.scratch.reset();
  t.remote.call(NR.chdir, [t.scratch.put(Buffer.from(cwd + '\0'))], `chdir(${cwd})`);
  t.remote.call(NR.umask, [fs.umask]);
}
