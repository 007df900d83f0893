/** `ckpt run`: its own flag parsing, since everything after the command belongs to the command. */
import fs from 'node:fs';
import { CkptError } from '../errors.js';

export const runCommand = {
  summary: 'start a command as PID 1 of a new container (pid, mount, uts, ipc namespaces)',
  help: `ckpt run [-d] [--] CMD [ARGS...]

Start CMD as the init (PID 1) of new pid, mount, uts and ipc namespaces, with
its own /proc, and print its host pid as the first line on stdout. The
container keeps the host's network, hostname and domainname, cwd and root;
CMD gets ckpt's environment and ckpt's fds 0, 1 and 2 (no other fd).
Without -d, ckpt waits and exits with CMD's status (128+N if signal N
killed it). ckpt dump -t PID dumps the whole container.
  -d, --detach            return as soon as CMD runs
`,
  async run(args: string[]): Promise<number> {
    let detach = false;
    let i = 0;
    for (; i < args.length; i++) {
      const a = args[i];
      if (a === '--') { i++; break; }
      if (a === '-d' || a === '--detach') { detach = true; continue; }
      if (a.startsWith('-')) throw new CkptError('USAGE', `run: unknown option '${a}' (see ckpt help run)`);
      break;
    }
    const argv = args.slice(i);
    if (argv.length === 0) throw new CkptError('USAGE', 'run: no command given: ckpt run [-d] [--] CMD [ARGS...]');
    // Loaded only for this command: the others never pay for it.
    const { startContainer } = await import('../container/run.js');
    const { waitForExit } = await import('../restore/restore.js');
    const pid = startContainer({ argv, onStart: (p) => fs.writeSync(1, `${p}\n`) });
    return detach ? 0 : waitForExit(pid);
  },
};
