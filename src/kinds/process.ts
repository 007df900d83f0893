/** A PROCESS record groups everything of one process (its task, mm, vmas, fds, threads...). */
import { Content, defineRecord } from '../image/index.js';
import { T } from './ids.js';

export const PROCESS = defineRecord({ type: T.PROCESS, name: 'process', content: Content.ARRAY, fields: { pid: 'u32' } });
