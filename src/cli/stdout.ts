/**
 * The command line's stdout, made on first use. Node makes its stream for
 * process.stdout when it is first touched, loading its stream and net
 * modules (~4 ms of a command): a dump that prints nothing never pays that.
 */
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
