//go:build windows && amd64

#include "textflag.h"

// func directCall6(fn, a0, a1, a2, a3, a4, a5 uintptr) uintptr
//
// Calls fn with the Windows x64 convention on the goroutine's own stack,
// without entersyscall: the goroutine keeps its P, so nothing of the
// scheduler runs around the call. The 16 KiB frame is the callee's stack:
// SP moves to the frame's top (16-byte aligned), leaving the 32-byte
// shadow space and the fifth and sixth arguments below it; BX, which
// Windows callees preserve, keeps the Go SP.
TEXT ·directCall6(SB), 0, $16384-64
	MOVQ fn+0(FP), AX
	MOVQ a0+8(FP), CX
	MOVQ a1+16(FP), DX
	MOVQ a2+24(FP), R8
	MOVQ a3+32(FP), R9
	MOVQ a4+40(FP), R10
	MOVQ a5+48(FP), R11
	MOVQ SP, BX
	LEAQ 16320(SP), R12
	ANDQ $~15, R12
	SUBQ $48, R12
	MOVQ R12, SP
	MOVQ R10, 32(SP)
	MOVQ R11, 40(SP)
	CALL AX
	MOVQ BX, SP
	MOVQ AX, ret+56(FP)
	RET
