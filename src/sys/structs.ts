/**
 * x86_64 kernel ABI layouts, each declared once with its encode and decode.
 * All little-endian; 64-bit values are bigint.
 */

/** struct user_regs_struct (arch/x86/include/asm/user_64.h): 27 × u64. */
export const USER_REGS_NAMES = [
  'r15', 'r14', 'r13', 'r12', 'rbp', 'rbx', 'r11', 'r10', 'r9', 'r8', 'rax', 'rcx', 'rdx',
  'rsi', 'rdi', 'orig_rax', 'rip', 'cs', 'eflags', 'rsp', 'ss', 'fs_base', 'gs_base',
  'ds', 'es', 'fs', 'gs',
] as const;
export type RegName = (typeof USER_REGS_NAMES)[number];
export type UserRegs = Record<RegName, bigint>;
export const USER_REGS_SIZE = USER_REGS_NAMES.length * 8; // 216

// Through a DataView: its 64-bit accessors are builtins that make one bigint each, where
// Buffer's read and write in JavaScript with several, in code that runs cold at each
// ptrace stop (getRegs/setRegs of every remote call).
const viewOf = (buf: Buffer) => new DataView(buf.buffer, buf.byteOffset, buf.byteLength);

export function decodeUserRegs(buf: Buffer, off = 0): UserRegs {
  const view = viewOf(buf);
  const r = {} as UserRegs;
  for (let i = 0; i < USER_REGS_NAMES.length; i++) r[USER_REGS_NAMES[i]] = view.getBigUint64(off + i * 8, true);
  return r;
}

export function encodeUserRegs(r: UserRegs, buf: Buffer = Buffer.alloc(USER_REGS_SIZE), off = 0): Buffer {
  const view = viewOf(buf);
  for (let i = 0; i < USER_REGS_NAMES.length; i++) view.setBigUint64(off + i * 8, BigInt.asUintN(64, r[USER_REGS_NAMES[i]]), true);
  return buf;
}

/** struct iovec { void *base; size_t len; } */
export const IOVEC_SIZE = 16;
export function encodeIovec(buf: Buffer, index: number, base: number | bigint, len: number): void {
  const at = index * IOVEC_SIZE;
  if (typeof base === 'bigint') buf.writeBigUInt64LE(base, at);
  else { buf.writeUInt32LE(base % 0x100000000, at); buf.writeUInt32LE(Math.floor(base / 0x100000000), at + 4); }
  buf.writeUInt32LE(len % 0x100000000, at + 8);
  buf.writeUInt32LE(Math.floor(len / 0x100000000), at + 12);
}

/** struct clone_args (include/uapi/linux/sched.h), version 2: 88 bytes. */
export interface CloneArgs {
  flags: bigint; pidfd: bigint; child_tid: bigint; parent_tid: bigint; exit_signal: bigint;
  stack: bigint; stack_size: bigint; tls: bigint; set_tid: bigint; set_tid_size: bigint; cgroup: bigint;
}
const CLONE_ARGS_FIELDS: (keyof CloneArgs)[] = [
  'flags', 'pidfd', 'child_tid', 'parent_tid', 'exit_signal', 'stack', 'stack_size', 'tls',
  'set_tid', 'set_tid_size', 'cgroup',
];
export const CLONE_ARGS_SIZE = CLONE_ARGS_FIELDS.length * 8;
export function encodeCloneArgs(a: Partial<CloneArgs>): Buffer {
  const buf = Buffer.alloc(CLONE_ARGS_SIZE);
  CLONE_ARGS_FIELDS.forEach((k, i) => buf.writeBigUInt64LE(a[k] ?? 0n, i * 8));
  return buf;
}

/** struct prctl_mm_map (include/uapi/linux/prctl.h): 104 bytes. */
export interface PrctlMmMap {
  start_code: number; end_code: number; start_data: number; end_data: number;
  start_brk: number; brk: number; start_stack: number; arg_start: number; arg_end: number;
  env_start: number; env_end: number; auxv: number; auxv_size: number; exe_fd: number;
}
export const PRCTL_MM_MAP_SIZE = 104;
export function encodePrctlMmMap(m: PrctlMmMap): Buffer {
  const buf = Buffer.alloc(PRCTL_MM_MAP_SIZE);
  const addrs = [m.start_code, m.end_code, m.start_data, m.end_data, m.start_brk, m.brk,
    m.start_stack, m.arg_start, m.arg_end, m.env_start, m.env_end, m.auxv];
  addrs.forEach((v, i) => buf.writeBigUInt64LE(BigInt(v), i * 8));
  buf.writeUInt32LE(m.auxv_size, 96);
  buf.writeUInt32LE(m.exe_fd, 100);
  return buf;
}

/** The kernel's struct sigaction on x86_64 (not glibc's): 32 bytes. */
export interface KernelSigaction { handler: bigint; flags: bigint; restorer: bigint; mask: bigint }
export const KSIGACTION_SIZE = 32;
export function decodeSigaction(buf: Buffer, off = 0): KernelSigaction {
  return {
    handler: buf.readBigUInt64LE(off), flags: buf.readBigUInt64LE(off + 8),
    restorer: buf.readBigUInt64LE(off + 16), mask: buf.readBigUInt64LE(off + 24),
  };
}
export function encodeSigaction(a: KernelSigaction): Buffer {
  const buf = Buffer.alloc(KSIGACTION_SIZE);
  buf.writeBigUInt64LE(a.handler, 0); buf.writeBigUInt64LE(a.flags, 8);
  buf.writeBigUInt64LE(a.restorer, 16); buf.writeBigUInt64LE(a.mask, 24);
  return buf;
}

/** struct ptrace_rseq_configuration: 24 bytes. */
export interface RseqConfig { rseq_abi_pointer: bigint; rseq_abi_size: number; signature: number; flags: number }
export const RSEQ_CONFIG_SIZE = 24;
export function decodeRseqConfig(buf: Buffer): RseqConfig {
  return {
    rseq_abi_pointer: buf.readBigUInt64LE(0), rseq_abi_size: buf.readUInt32LE(8),
    signature: buf.readUInt32LE(12), flags: buf.readUInt32LE(16),
  };
}

/**
 * In the ptrace layout (struct user_xstateregs) the software-reserved bytes at
 * offset 464 start with the XCR0 mask (USER_XSTATE_XCR0_WORD = 0): the
 * features this CPU and kernel enable. The xsave header (offset 512) starts
 * with xstate_bv: the features in use.
 */
export const XSAVE_SW_BYTES_OFFSET = 464;
export const XSAVE_HEADER_OFFSET = 512;
export function xsaveFeatures(area: Buffer): { xfeatures: bigint; xstateBv: bigint } {
  if (area.length < XSAVE_HEADER_OFFSET + 8) return { xfeatures: 3n, xstateBv: 3n };
  return {
    xfeatures: area.readBigUInt64LE(XSAVE_SW_BYTES_OFFSET),
    xstateBv: area.readBigUInt64LE(XSAVE_HEADER_OFFSET),
  };
}
