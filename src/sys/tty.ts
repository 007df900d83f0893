/**
 * Terminal ioctls ckpt makes on its own fds (a pty master it took from a
 * process at dump, or made at restore). x86_64 values from asm-generic/ioctls.h.
 */
import { allocNative, syscall, trySyscall, type NativeMemory } from './libc.js';
import { NR } from './nr.js';

export const TIOC = {
  TCGETS2: 0x802c542a, TCSETS2: 0x402c542b, TIOCGWINSZ: 0x5413, TIOCSWINSZ: 0x5414,
  TIOCSCTTY: 0x540e, TIOCGPGRP: 0x540f, TIOCSPGRP: 0x5410, FIONREAD: 0x541b, TIOCPKT: 0x5420,
  TIOCGSID: 0x5429, TIOCGPTN: 0x80045430, TIOCSPTLCK: 0x40045431, TIOCGPKT: 0x80045438,
  TIOCGPTLCK: 0x80045439, TIOCGPTPEER: 0x5441,
} as const;

/** struct termios2: 4 flag words, c_line, 19 control characters, 2 speeds. */
export const TERMIOS2_SIZE = 44;
/** struct winsize: rows, cols, xpixel, ypixel (u16 each). */
export const WINSIZE_SIZE = 8;

let mem: NativeMemory | undefined;
const buf = () => (mem ??= allocNative(256));

const what = (name: string, fd: number) => ({ what: `ioctl(${name})`, resource: `fd ${fd}` });

/** An ioctl that reads an int into memory (TIOCGPTN, TIOCGPTLCK, TIOCGPKT, FIONREAD...). */
export function ioctlGetInt(fd: number, req: number, name: string): number {
  const m = buf();
  m.buf.writeInt32LE(0, 0);
  syscall(NR.ioctl, [fd, req, m.addr], what(name, fd));
  return m.buf.readInt32LE(0);
}

/** The same, returning -errno instead of throwing (TIOCGSID without a session: ENOTTY). */
export function tryIoctlGetInt(fd: number, req: number): number {
  const m = buf();
  m.buf.writeInt32LE(0, 0);
  const r = trySyscall(NR.ioctl, fd, req, m.addr);
  return r < 0 ? r : m.buf.readInt32LE(0);
}

/** An ioctl that takes a pointer to an int (TIOCSPTLCK, TIOCPKT, TIOCSPGRP). */
export function ioctlSetInt(fd: number, req: number, value: number, name: string): void {
  const m = buf();
  m.buf.writeInt32LE(value, 0);
  syscall(NR.ioctl, [fd, req, m.addr], what(name, fd));
}

/** An ioctl that fills a struct of `size` bytes (TCGETS2, TIOCGWINSZ). */
export function ioctlGetStruct(fd: number, req: number, size: number, name: string): Buffer {
  const m = buf();
  m.buf.fill(0, 0, size);
  syscall(NR.ioctl, [fd, req, m.addr], what(name, fd));
  return Buffer.from(m.buf.subarray(0, size));
}

/** An ioctl that reads a struct (TCSETS2, TIOCSWINSZ). */
export function ioctlSetStruct(fd: number, req: number, data: Buffer, name: string): void {
  const m = buf();
  data.copy(m.buf, 0);
  syscall(NR.ioctl, [fd, req, m.addr], what(name, fd));
}

/** TIOCGPTPEER: open the slave of a pty master, with `flags`, without a path. */
export function openPtyPeer(master: number, flags: number): number {
  return syscall(NR.ioctl, [master, TIOC.TIOCGPTPEER, flags], what('TIOCGPTPEER', master));
}
