/**
 * The seed: a tiny static ELF of ckpt's own making from which every restored
 * process is grown. It has no libc, no TLS and no rseq; it loops on pause()
 * and carries a `syscall; int3` gadget for remote syscalls.
 */
import fs from 'node:fs';
import { memfdCreate, close } from '../sys/syscalls.js';
import { spawnClean } from '../sys/libc.js';

export const SEED_BASE = 0x400000;
const EHDR_SIZE = 64;
const PHDR_SIZE = 56;
const CODE_OFF = EHDR_SIZE + 2 * PHDR_SIZE;

// _start: mov eax, 34 (pause); syscall; jmp _start
// gadget: syscall; int3
const CODE = Buffer.from([0xb8, 0x22, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xeb, 0xf7, 0x0f, 0x05, 0xcc]);
/** Address of the `syscall; int3` gadget inside the seed. */
export const SEED_GADGET = SEED_BASE + CODE_OFF + 9;
/** The same two instructions, for trampolines elsewhere. */
export const GADGET_BYTES = Buffer.from([0x0f, 0x05, 0xcc]);

export function buildSeedElf(): Buffer {
  const size = CODE_OFF + CODE.length;
  const elf = Buffer.alloc(size);
  elf.write('\x7fELF', 0, 'latin1');
  elf[4] = 2; // ELFCLASS64
  elf[5] = 1; // little-endian
  elf[6] = 1; // EV_CURRENT
  elf.writeUInt16LE(2, 16);       // ET_EXEC
  elf.writeUInt16LE(62, 18);      // EM_X86_64
  elf.writeUInt32LE(1, 20);       // e_version
  elf.writeBigUInt64LE(BigInt(SEED_BASE + CODE_OFF), 24); // e_entry
  elf.writeBigUInt64LE(BigInt(EHDR_SIZE), 32);           // e_phoff
  elf.writeUInt16LE(EHDR_SIZE, 52);
  elf.writeUInt16LE(PHDR_SIZE, 54);
  elf.writeUInt16LE(2, 56);       // e_phnum
  // PT_LOAD, R+X, the whole file at SEED_BASE.
  let p = EHDR_SIZE;
  elf.writeUInt32LE(1, p); elf.writeUInt32LE(5, p + 4);
  elf.writeBigUInt64LE(0n, p + 8);
  elf.writeBigUInt64LE(BigInt(SEED_BASE), p + 16);
  elf.writeBigUInt64LE(BigInt(SEED_BASE), p + 24);
  elf.writeBigUInt64LE(BigInt(size), p + 32);
  elf.writeBigUInt64LE(BigInt(size), p + 40);
  elf.writeBigUInt64LE(0x1000n, p + 48);
  // PT_GNU_STACK, RW: a non-executable stack.
  p += PHDR_SIZE;
  elf.writeUInt32LE(0x6474e551, p); elf.writeUInt32LE(6, p + 4);
  elf.writeBigUInt64LE(16n, p + 48);
  CODE.copy(elf, CODE_OFF);
  return elf;
}

const MFD_CLOEXEC = 1;

/** Start a seed process (a child of ckpt) and return its pid. */
export function spawnSeed(): number {
  const fd = memfdCreate('ckpt-seed', MFD_CLOEXEC);
  try {
    fs.writeSync(fd, buildSeedElf());
    return spawnClean(`/proc/self/fd/${fd}`, ['ckpt-seed'], []);
  } finally {
    close(fd);
  }
}
