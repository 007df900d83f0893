/**
 * Per-thread state: registers, xsave area, signal mask, rseq registration and
 * clear_child_tid. A THREAD record holds REGS and XSTATE records.
 */
import { Content, defineRecord, type FieldsOf } from '../image/index.js';
import { T } from './ids.js';

export const THREAD = defineRecord({
  type: T.THREAD, name: 'thread', content: Content.ARRAY,
  fields: {
    tid: 'u32', sigmask: 'u64', clear_child_tid: 'addr',
    rseq_ptr: 'addr', rseq_len: 'u32', rseq_sig: 'u32', rseq_flags: 'u32',
  },
});
export type ThreadFields = FieldsOf<typeof THREAD>;
