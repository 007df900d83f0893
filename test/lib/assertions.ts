import assert from 'node:assert/strict';

/** A report must be a PASS; the FAIL line (what differed) becomes the assertion message. */
export function assertPass(report: string): void {
  assert.match(report, /^PASS counter=\d+/, `the program's self-check failed: ${report}`);
}
