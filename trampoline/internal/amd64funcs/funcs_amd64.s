// Test functions for the trampoline execution tests. SysV C ABI: argument
// in DI, result in AX; leaves, no Go stack use. See doc.go for the markers.

#include "textflag.h"

#define SPLIT BYTE $0x0f; BYTE $0x1f; BYTE $0x44; BYTE $0x00; BYTE $0x00
#define FEND BYTE $0x0f; BYTE $0x0b
#define NOP16 BYTE $0x90; BYTE $0x90; BYTE $0x90; BYTE $0x90; BYTE $0x90; BYTE $0x90; BYTE $0x90; BYTE $0x90; BYTE $0x90; BYTE $0x90; BYTE $0x90; BYTE $0x90; BYTE $0x90; BYTE $0x90; BYTE $0x90; BYTE $0x90

DATA ·k1+0(SB)/8, $0x1111
GLOBL ·k1(SB), RODATA, $8

DATA ·helperPtr+0(SB)/8, $·helper(SB)
GLOBL ·helperPtr(SB), RODATA, $8

DATA ·f64+0(SB)/8, $2.5
GLOBL ·f64(SB), RODATA, $8

DATA ·vec+0(SB)/8, $7
DATA ·vec+8(SB)/8, $8
DATA ·vec+16(SB)/8, $3
DATA ·vec+24(SB)/8, $4
GLOBL ·vec(SB), RODATA, $32

DATA ·funcs+0(SB)/8, $·helper(SB)
DATA ·funcs+8(SB)/8, $·movRIP(SB)
DATA ·funcs+16(SB)/8, $·leaRIP(SB)
DATA ·funcs+24(SB)/8, $·cmpRIP(SB)
DATA ·funcs+32(SB)/8, $·callMemRIP(SB)
DATA ·funcs+40(SB)/8, $·sseRIP(SB)
DATA ·funcs+48(SB)/8, $·avxRIP(SB)
DATA ·funcs+56(SB)/8, $·jccRel8Out(SB)
DATA ·funcs+64(SB)/8, $·jccRel32Out(SB)
DATA ·funcs+72(SB)/8, $·loopIn(SB)
DATA ·funcs+80(SB)/8, $·jrcxzOut(SB)
DATA ·funcs+88(SB)/8, $·callRel32(SB)
DATA ·funcs+96(SB)/8, $·callInside(SB)
DATA ·funcs+104(SB)/8, $·endbr(SB)
DATA ·funcs+112(SB)/8, $·thunkRel32(SB)
DATA ·funcs+120(SB)/8, $·jmpRel8In(SB)
DATA ·funcs+128(SB)/8, $·loopBackIntoRun(SB)
DATA ·funcs+136(SB)/8, $·retEarly(SB)
DATA ·funcs+144(SB)/8, $·replacement(SB)
DATA ·funcs+152(SB)/8, $·redZone(SB)
DATA ·funcs+160(SB)/8, $·jccBackOut8(SB)
DATA ·funcs+168(SB)/8, $·jccBackOut32(SB)
GLOBL ·funcs(SB), RODATA, $176

TEXT ·addresses(SB), NOSPLIT, $0-8
	LEAQ ·funcs(SB), AX
	MOVQ AX, ret+0(FP)
	RET

// helper(x) = x + 100
TEXT ·helper(SB), NOSPLIT|NOFRAME, $0-0
	LEAQ 100(DI), AX
	RET
	FEND

// mov rax,[rip+k1]
TEXT ·movRIP(SB), NOSPLIT|NOFRAME, $0-0
	MOVQ ·k1(SB), AX
	ADDQ DI, AX
	RET
	FEND

// lea rcx,[rip+k1]
TEXT ·leaRIP(SB), NOSPLIT|NOFRAME, $0-0
	LEAQ ·k1(SB), CX
	MOVQ (CX), AX
	ADDQ DI, AX
	RET
	FEND

// cmp [rip+k1],imm32 (immediate after the displacement); cmp [rip+k1],rdi
TEXT ·cmpRIP(SB), NOSPLIT|NOFRAME, $0-0
	CMPQ ·k1(SB), $0x1111
	JNE bad
	CMPQ ·k1(SB), DI
	JEQ eq
	MOVQ $1, AX
	RET
eq:
	MOVQ $2, AX
	RET
bad:
	MOVQ $99, AX
	RET
	FEND

// call [rip+helperPtr]
TEXT ·callMemRIP(SB), NOSPLIT|NOFRAME, $0-0
	CALL *·helperPtr(SB)
	ADDQ $1, AX
	RET
	FEND

// movsd xmm0,[rip+f64]; movaps xmm1,[rip+vec]
TEXT ·sseRIP(SB), NOSPLIT|NOFRAME, $0-0
	MOVSD ·f64(SB), X0
	CVTTSD2SQ X0, AX
	MOVAPS ·vec(SB), X1
	MOVQ X1, CX
	ADDQ CX, AX
	ADDQ DI, AX
	RET
	FEND

// vmovdqu ymm0,[rip+vec] (VEX)
TEXT ·avxRIP(SB), NOSPLIT|NOFRAME, $0-0
	VMOVDQU ·vec(SB), Y0
	VEXTRACTF128 $1, Y0, X1
	MOVQ X1, AX
	VZEROUPPER
	ADDQ DI, AX
	RET
	FEND

// jl rel8 from the run to outside it
TEXT ·jccRel8Out(SB), NOSPLIT|NOFRAME, $0-0
	CMPQ DI, $10
	JLT small
	SPLIT
	MOVQ $1, AX
	RET
small:
	MOVQ $2, AX
	RET
	FEND

// jl rel32 from the run to outside it
TEXT ·jccRel32Out(SB), NOSPLIT|NOFRAME, $0-0
	CMPQ DI, $10
	JLT small
	SPLIT
	MOVQ $1, AX
	RET
	NOP16; NOP16; NOP16; NOP16; NOP16; NOP16; NOP16; NOP16; NOP16
small:
	MOVQ $2, AX
	RET
	FEND

// loop rel8 backward, inside the run
TEXT ·loopIn(SB), NOSPLIT|NOFRAME, $0-0
	LEAQ 1(DI), CX
	XORL AX, AX
top:
	ADDQ $3, AX
	LOOP top
	RET
	FEND

// jrcxz from the run to outside it
TEXT ·jrcxzOut(SB), NOSPLIT|NOFRAME, $0-0
	MOVQ DI, CX
	JCXZQ zero
	SPLIT
	MOVQ $1, AX
	RET
zero:
	MOVQ $7, AX
	RET
	FEND

// call rel32 in the moved bytes, to outside the run
TEXT ·callRel32(SB), NOSPLIT|NOFRAME, $0-0
	CALL ·helper(SB)
	ADDQ $1, AX
	RET
	FEND

// call rel32 to a target inside the run
TEXT ·callInside(SB), NOSPLIT|NOFRAME, $0-0
	// call +5 (the Go assembler cannot CALL a label): add rax,1 is 4
	// bytes and ret 1, so the target is the LEAQ.
	BYTE $0xe8; LONG $5
	ADDQ $1, AX
	RET
	LEAQ 5(DI), AX
	RET
	FEND

// endbr64 at the entry
TEXT ·endbr(SB), NOSPLIT|NOFRAME, $0-0
	BYTE $0xf3; BYTE $0x0f; BYTE $0x1e; BYTE $0xfa
	MOVQ ·k1(SB), AX
	ADDQ DI, AX
	RET
	FEND

// entry is already a jump (a hook someone placed)
TEXT ·thunkRel32(SB), NOSPLIT|NOFRAME, $0-0
	JMP ·movRIP(SB)
	FEND

// jmp rel8 and jcc rel8 forward, inside the run
TEXT ·jmpRel8In(SB), NOSPLIT|NOFRAME, $0-0
	MOVQ DI, AX
	JMP l1
	BYTE $0xcc
l1:
	TESTQ $1, DI
	JEQ even
	ADDQ $1, AX
even:
	ADDQ $4, AX
	RET
	FEND

// a loop whose head is inside the moved bytes (past the first byte) and whose
// back edge is outside them: must be refused
TEXT ·loopBackIntoRun(SB), NOSPLIT|NOFRAME, $0-0
	MOVQ DI, CX
	XORL AX, AX
top:
	ADDQ $2, AX
	SPLIT
	DECQ CX
	JNE top
	RET
	FEND

// ret inside the first 5 bytes: too short for a jump
TEXT ·retEarly(SB), NOSPLIT|NOFRAME, $0-0
	XORL AX, AX
	RET
	FEND

// replacement(x) = (*origPtr)(x) + 1000: a detour's replacement calling the
// original through its trampoline
TEXT ·replacement(SB), NOSPLIT|NOFRAME, $0-0
	MOVQ ·origPtr(SB), AX
	CALL AX
	ADDQ $1000, AX
	RET
	FEND

// a leaf keeping values in the red zone across a RIP-relative load: moved
// far, the load goes through a scratch register saved below the red zone
TEXT ·redZone(SB), NOSPLIT|NOFRAME, $0-0
	MOVQ $5, -8(SP)
	MOVQ $7, -128(SP)
	MOVQ ·k1(SB), SI
	LEAQ (SI)(DI*1), AX
	ADDQ -8(SP), AX
	ADDQ -128(SP), AX
	RET
	FEND

// a run in the middle of a function (between the two SPLITs) whose jne rel8
// goes backward, outside the run
TEXT ·jccBackOut8(SB), NOSPLIT|NOFRAME, $0-0
	LEAQ 1(DI), CX
	XORL AX, AX
top:
	ADDQ $3, AX
	SPLIT
	DECQ CX
	JNE top
	SPLIT
	RET
	FEND

// the same with jne rel32 backward
TEXT ·jccBackOut32(SB), NOSPLIT|NOFRAME, $0-0
	LEAQ 1(DI), CX
	XORL AX, AX
top:
	ADDQ $3, AX
	NOP16; NOP16; NOP16; NOP16; NOP16; NOP16; NOP16; NOP16; NOP16
	SPLIT
	DECQ CX
	JNE top
	SPLIT
	RET
	FEND
