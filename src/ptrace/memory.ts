/**
 * Small reads and writes of a tracee's memory through /proc/PID/mem, which
 * (unlike process_vm_*v) reaches pages without read or write permission.
 * Bulk page data goes through process_vm_readv/writev instead (sys/syscalls).
 */
import fs from 'node:fs';
import { CkptError } from '../errors.js';

export class TraceeMemory {
  private fd: number;
  constructor(readonly pid: number) {
    try {
      this.fd = fs.openSync(`/proc/${pid}/mem`, 'r+');
    } catch (e) {
      throw new CkptError('SYSCALL', `${(e as NodeJS.ErrnoException).code}: open /proc/${pid}/mem failed, pid ${pid}`, { pid, syscall: 'open' });
    }
  }

  read(addr: number | bigint, len: number, into: Buffer = Buffer.alloc(len), off = 0): Buffer {
    const n = this.io('read', addr, into, off, len);
    if (n !== len) throw this.short('read', addr, len, n);
    return into;
  }

  write(addr: number | bigint, data: Buffer): void {
    const n = this.io('write', addr, data, 0, data.length);
    if (n !== data.length) throw this.short('write', addr, data.length, n);
  }

  /** Read up to len bytes; returns how many were readable. */
  tryRead(addr: number | bigint, into: Buffer, off: number, len: number): number {
    try { return this.io('read', addr, into, off, len); } catch { return 0; }
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }

  private io(op: 'read' | 'write', addr: number | bigint, buf: Buffer, off: number, len: number): number {
    const pos = Number(addr);
    try {
      return op === 'read' ? fs.readSync(this.fd, buf, off, len, pos) : fs.writeSync(this.fd, buf, off, len, pos);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
      throw new CkptError('SYSCALL', `${code}: ${op} of ${len} bytes at 0x${pos.toString(16)} in /proc/${this.pid}/mem failed, pid ${this.pid}`, { pid: this.pid, syscall: op === 'read' ? 'pread' : 'pwrite' });
    }
  }

  private short(op: string, addr: number | bigint, len: number, n: number): CkptError {
    return new CkptError('SYSCALL', `EFAULT: short ${op} at 0x${Number(addr).toString(16)} (${n} of ${len} bytes), pid ${this.pid}`, { pid: this.pid, syscall: op });
  }
}
