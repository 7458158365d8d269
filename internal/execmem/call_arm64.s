//go:build linux

#include "textflag.h"

// func call6(fn, a0, a1, a2, a3, a4, a5 uintptr) uintptr
// The 8 KiB frame is the callee's stack: RSP is moved to the frame's top
// (16-byte aligned) and restored from R20, which AAPCS64 callees preserve
// (as they do R28, Go's g register).
TEXT ·call6(SB), 0, $8192-64
	MOVD fn+0(FP), R9
	MOVD a0+8(FP), R0
	MOVD a1+16(FP), R1
	MOVD a2+24(FP), R2
	MOVD a3+32(FP), R3
	MOVD a4+40(FP), R4
	MOVD a5+48(FP), R5
	MOVD RSP, R20
	ADD  $8128, R20, R10
	AND  $~15, R10
	MOVD R10, RSP
	CALL (R9)
	MOVD R20, RSP
	MOVD R0, ret+56(FP)
	RET

// func flushICache(addr, n uintptr)
// Clean each data cache line to the point of unification, then invalidate
// each instruction cache line, with the barriers the architecture requires.
// Line sizes come from CTR_EL0 (readable from EL0 on Linux).
TEXT ·flushICache(SB), NOSPLIT, $0-16
	MOVD addr+0(FP), R0
	MOVD n+8(FP), R1
	ADD  R0, R1, R1         // R1 = end
	WORD $0xd53b0022        // MRS X2, CTR_EL0
	UBFX $16, R2, $4, R3    // DminLine (log2 words)
	MOVD $4, R4
	LSL  R3, R4, R4         // R4 = dcache line bytes
	AND  $15, R2, R3        // IminLine
	MOVD $4, R5
	LSL  R3, R5, R5         // R5 = icache line bytes
	SUB  $1, R4, R6
	BIC  R6, R0, R7         // R7 = addr rounded down to a dcache line
dloop:
	WORD $0xd50b7b27        // DC CVAU, X7
	ADD  R4, R7, R7
	CMP  R1, R7
	BLO  dloop
	WORD $0xd5033b9f        // DSB ISH
	SUB  $1, R5, R6
	BIC  R6, R0, R7
iloop:
	WORD $0xd50b7527        // IC IVAU, X7
	ADD  R5, R7, R7
	CMP  R1, R7
	BLO  iloop
	WORD $0xd5033b9f        // DSB ISH
	WORD $0xd5033fdf        // ISB
	RET
