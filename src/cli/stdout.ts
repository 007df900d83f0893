/**
 * The command line's stdout and stderr. Node makes its stream for
 * process.stdout or process.stderr when it is first touched, loading its
 * stream and net modules (~4 ms of a command): a dump that prints nothing
 * never pays that, and one that prints a line (-v, --json) writes it itself
 * (writeLine).
 */
import fs from 'node:fs';

let hooked = false;

export function stdout(): NodeJS.WriteStream {
  const s = process.stdout;
  if (!hooked) {
    hooked = true;
    // A reader that went away (ckpt show | head) is not an error of ours.
    s.on('error', (e: NodeJS.ErrnoException) => { if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0); });
  }
  return s;
}

/** Whether fd 1 or 2 left writeLine for node's stream, for good (the order of what is said stays). */
const streamed = [false, false, false];

/**
 * Write `text` to fd 1 or 2 now, with write(2). Node's own stream writes
 * there synchronously too on Linux (a TTY, a pipe or a file), so the two may
 * take turns. A reader that went away (EPIPE), or a closed fd, takes nothing,
 * as from node's stream. An fd someone left non-blocking (EAGAIN) goes to
 * node's stream, which waits for it.
 */
export function writeLine(fd: 1 | 2, text: string): void {
  const stream = () => (fd === 1 ? stdout() : process.stderr);
  if (streamed[fd]) { stream().write(text); return; }
  const bytes = Buffer.from(text);
  let done = 0;
  try {
    while (done < bytes.length) done += fs.writeSync(fd, bytes, done);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') return;
    streamed[fd] = true;
    stream().write(bytes.subarray(done));
  }
}
