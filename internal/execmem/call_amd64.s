//go:build linux

#include "textflag.h"

// func call6(fn, a0, a1, a2, a3, a4, a5 uintptr) uintptr
// The 8 KiB frame is the callee's stack: SP is moved to the frame's top
// (16-byte aligned, as SysV requires before a call) and restored from BX,
// which SysV callees preserve.
TEXT ·call6(SB), 0, $8192-64
	MOVQ fn+0(FP), AX
	MOVQ a0+8(FP), DI
	MOVQ a1+16(FP), SI
	MOVQ a2+24(FP), DX
	MOVQ a3+32(FP), CX
	MOVQ a4+40(FP), R8
	MOVQ a5+48(FP), R9
	MOVQ SP, BX
	LEAQ 8128(SP), R10
	ANDQ $~15, R10
	MOVQ R10, SP
	CALL AX
	MOVQ BX, SP
	MOVQ AX, ret+56(FP)
	RET

// func flushICache(addr, n uintptr)
// x86-64 keeps instruction fetch coherent with stores to the same address.
TEXT ·flushICache(SB), NOSPLIT, $0-16
	RET
