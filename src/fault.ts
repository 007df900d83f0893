/**
 * Fault injection for tests: CKPT_FAULT=dump:pages (say) makes that step fail
 * as a real failure would, so that a test can walk every step and prove
 * that nothing is lost.
 */
import { CkptError } from './errors.js';

export const FAULT_STEPS = {
  dump: ['freeze', 'proc', 'remote', 'pages', 'write', 'commit'],
  restore: ['load', 'seed', 'clone', 'map', 'pages', 'files', 'signals', 'creds', 'verify', 'detach'],
} as const;

export type FaultStep = `dump:${(typeof FAULT_STEPS.dump)[number]}` | `restore:${(typeof FAULT_STEPS.restore)[number]}`;

export function fault(step: FaultStep): void {
  if (process.env.CKPT_FAULT === step) throw new CkptError('INTERNAL', `injected fault at ${step} (CKPT_FAULT)`);
}
