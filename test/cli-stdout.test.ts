/**
 * cli/stdout.ts writeLine: the CLI's -v and --json lines, written with write(2)
 * rather than through node's stream. Everything arrives, in order, through a
 * pipe left non-blocking that fills up (EAGAIN: the rest goes through node's
 * stream, which waits), and a reader that went away costs nothing.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const STDOUT_JS = fileURLToPath(new URL('../src/cli/stdout.js', import.meta.url));
const SYSCALLS_JS = fileURLToPath(new URL('../src/sys/syscalls.js', import.meta.url));
const CONSTANTS_JS = fileURLToPath(new URL('../src/sys/constants.js', import.meta.url));

/** Run `body` (with writeLine, fcntl, O and F in scope) in a child whose stderr is a pipe; resolves its exit code and what it wrote there. */
function child(body: string, readAfterMs: number, readBytes = Infinity): Promise<{ code: number | null; stderr: Buffer }> {
  const script = `
    const { writeLine } = await import(${JSON.stringify(STDOUT_JS)});
    const { fcntl } = await import(${JSON.stringify(SYSCALLS_JS)});
    const { O, F } = await import(${JSON.stringify(CONSTANTS_JS)});
    ${body}`;
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
    const timer = setTimeout(() => { c.kill('SIGKILL'); reject(new Error('the child did not end')); }, 20_000);
    const chunks: Buffer[] = [];
    let got = 0;
    c.stderr!.pause();
    setTimeout(() => {
      c.stderr!.on('data', (d: Buffer) => {
        if (got < readBytes) chunks.push(d);
        got += d.length;
        if (got >= readBytes) c.stderr!.destroy();
      });
      c.stderr!.resume();
    }, readAfterMs);
    c.on('error', reject);
    c.on('close', (code) => { clearTimeout(timer); resolve({ code, stderr: Buffer.concat(chunks) }); });
  });
}

test('writeLine: a non-blocking pipe that fills up still gets every byte, in order', async () => {
  const { code, stderr } = await child(`
    fcntl(2, F.SETFL, fcntl(2, F.GETFL) | O.NONBLOCK);
    writeLine(2, 'a'.repeat(300000) + '\\n');
    writeLine(2, 'b'.repeat(1000) + '\\n');
    writeLine(2, 'end\\n');`, 300);
  assert.equal(code, 0);
  assert.equal(stderr.toString(), 'a'.repeat(300000) + '\n' + 'b'.repeat(1000) + '\n' + 'end\n');
});

test('writeLine: a reader that went away (EPIPE) is no error', async () => {
  const { code } = await child(`
    await new Promise((r) => setTimeout(r, 500));
    for (let i = 0; i < 100; i++) writeLine(2, 'x'.repeat(10000) + '\\n');
    writeLine(1, 'done\\n');`, 0, 1);
  assert.equal(code, 0);
});
