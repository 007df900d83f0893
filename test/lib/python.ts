/**
 * An unmodified python3 as a test subject: it appends 0, 1, 2... to W/lines,
 * one line every 50 ms, opening and closing the file each time. A restored
 * copy must carry on with the next integer: no gap, no repeat.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startProgram, type StartedProgram } from './processes.js';

/** The system interpreter, not a version manager's shim script. */
export const PYTHON = '/usr/bin/python3';

const SCRIPT = `
import os, sys, time
path = os.path.join(sys.argv[1], 'lines')
i = 0
while True:
    with open(path, 'a') as f:
        f.write(f'{i}\\n')
    i += 1
    time.sleep(0.05)
`;

export function appendingPython(dir: string): StartedProgram {
  return startProgram(PYTHON, ['-c', SCRIPT, dir]);
}

/** The complete lines of W/lines as numbers (a line still being written is left out). */
export function readAppendedLines(dir: string): number[] {
  let text: string;
  try {
    text = readFileSync(join(dir, 'lines'), 'utf8');
  } catch {
    return [];
  }
  const complete = text.slice(0, text.lastIndexOf('\n') + 1);
  return complete.split('\n').filter((l) => l !== '').map(Number);
}

/** 0, 1, 2, ... n-1: reports the first gap or repeat. */
export function assertConsecutive(lines: number[]): void {
  const bad = lines.findIndex((value, i) => value !== i);
  assert.equal(bad, -1, `line ${bad} holds ${lines[bad]}, expected ${bad} (around: ${lines.slice(Math.max(0, bad - 3), bad + 3).join(',')})`);
}
