/**
 * The ckpt command line: parse flags, call the library, print. Every failure
 * is one line on stderr and a non-zero exit; never a stack trace.
 */
import { CkptError, isCkptError } from '../errors.js';
import { COMMANDS, usage, commandHelp } from './commands.js';
import { exitCodeOf } from './exit.js';
import { completionCommand } from './completion.js';
import { endReport } from './report.js';
import { VERSION } from '../version.js';
import { startup } from './startup.js';
import { exitNow } from '../sys/libc.js';
import { stdout, writeLine } from './stdout.js';
import { uptimeMs } from '../clock.js';

startup.cli = uptimeMs();

// `ckpt completion bash` reads every command's help: it is added last, so it knows them all.
COMMANDS.completion = completionCommand(COMMANDS);

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h') { stdout().write(usage()); return name ? 0 : 2; }
  if (name === '--version' || name === '-V') { stdout().write(`ckpt ${VERSION}\n`); return 0; }
  if (name === 'help') {
    const what = rest[0];
    if (what === undefined) { stdout().write(usage()); return 0; }
    const h = commandHelp(what);
    if (!h) throw new CkptError('USAGE', `unknown command '${what}' (see ckpt --help)`);
    stdout().write(h);
    return 0;
  }
  const cmd = COMMANDS[name];
  if (!cmd) throw new CkptError('USAGE', `unknown command '${name}' (see ckpt --help)`);
  return cmd.run(rest);
}

// Last of the exit listeners (the loader's come first). Node emits 'exit' on
// its own only once its loop has nothing left, writes queued to a pipe
// included, so what its teardown would still do is free memory and stop
// threads. Unless node was asked for something it writes as it exits
// (--cpu-prof, coverage).
if (process.execArgv.length === 0 && !process.env.NODE_OPTIONS && !process.env.NODE_V8_COVERAGE) {
  process.on('exit', (code) => exitNow(code));
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; endReport({ code }); },
  (e: unknown) => {
    if (isCkptError(e)) {
      writeLine(2, `ckpt: ${e.message}\n`);
      // Stopped by signal N: 128+N, as a shell reports a command that signal N ended.
      const code = e.code === 'INTERRUPTED' && e.data.signal ? 128 + e.data.signal : exitCodeOf(e.code);
      process.exitCode = code;
      endReport({ code, error: e.message });
    } else {
      const msg = e instanceof Error ? e.message : String(e);
      writeLine(2, `ckpt: internal error: ${msg.split('\n')[0]}\n`);
      if (process.env.CKPT_DEBUG && e instanceof Error) writeLine(2, `${e.stack}\n`);
      process.exitCode = 70;
      endReport({ code: 70, error: `internal error: ${msg.split('\n')[0]}` });
    }
  },
);
