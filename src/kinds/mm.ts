/**
 * The mm fields (code, data, brk, stack, args, env, auxv, exe) restored in one
 * prctl(PR_SET_MM, PR_SET_MM_MAP): the only PR_SET_MM option that works
 * without CAP_SYS_RESOURCE.
 */
import { Content, defineRecord, type FieldsOf } from '../image/index.js';
import type { Stat } from '../proc/index.js';
import { NR } from '../sys/nr.js';
import { PR, PR_SET_MM_MAP } from '../sys/constants.js';
import { encodePrctlMmMap, PRCTL_MM_MAP_SIZE } from '../sys/structs.js';
import { T } from './ids.js';
import type { RestoreTarget } from './target.js';

export const MM = defineRecord({
  type: T.MM, name: 'mm', content: Content.ARRAY,
  fields: {
    start_code: 'addr', end_code: 'addr', start_data: 'addr', end_data: 'addr',
    start_brk: 'addr', brk: 'addr', start_stack: 'addr', arg_start: 'addr', arg_end: 'addr',
    env_start: 'addr', env_end: 'addr',
  },
});
export const AUXV = defineRecord({ type: T.AUXV, name: 'auxv', content: Content.DATA, fields: {} });
export const EXE = defineRecord({ type: T.EXE, name: 'exe', content: Content.NAME, fields: {} });
export type MmFields = FieldsOf<typeof MM>;

/** The mm fields: /proc/PID/stat has all but the current brk (a remote brk(0)). */
export function mmFields(stat: Stat, brk: number): MmFields {
  return {
    start_code: stat.startcode, end_code: stat.endcode, start_data: stat.start_data,
    end_data: stat.end_data, start_brk: stat.start_brk, brk, start_stack: stat.startstack,
    arg_start: stat.arg_start, arg_end: stat.arg_end, env_start: stat.env_start, env_end: stat.env_end,
  };
}

/** prctl(PR_SET_MM_MAP) with the saved fields, auxv and exe (opened in the target). */
export function restoreMm(t: RestoreTarget, mm: MmFields, auxv: Buffer, exePath: string): void {
  const exePathAddr = t.scratch.put(Buffer.from(exePath + '\0'));
  const exeFd = t.remote.call(NR.openat, [-100, exePathAddr, 0, 0], `openat(${exePath})`);
  try {
    const auxvAddr = t.scratch.put(auxv);
    const map = encodePrctlMmMap({ ...mm, auxv: auxvAddr, auxv_size: auxv.length, exe_fd: exeFd });
    const mapAddr = t.scratch.put(map);
    t.remote.call(NR.prctl, [PR.SET_MM, PR_SET_MM_MAP, mapAddr, PRCTL_MM_MAP_SIZE, 0], 'prctl(PR_SET_MM, PR_SET_MM_MAP)');
  } finally {
    t.remote.call(NR.close, [exeFd], 'close(exe)');
  }
}
