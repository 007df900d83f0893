import { CkptError } from '../errors.js';

/** Lines of a /proc text file, without the empty one after the final newline. */
export function lines(text: string): string[] {
  const all = text.split('\n');
  if (all[all.length - 1] === '') all.pop();
  return all;
}

/** Malformed /proc text: the kernel printed something this parser does not know. */
export function badProc(file: string, what: string): CkptError {
  return new CkptError('INTERNAL', `${file}: cannot parse ${what}`, { resource: file });
}
