// Input for TestAgainstLLVMObjdump: every PC-relative form, both directions,
// assembled by llvm-mc at test time.
	.text
	.globl f
back:
	.quad 0x1122334455667788
	.quad 0x99aabbccddeeff00
f:
	ldr w0, back
	ldr x1, back
	ldrsw x2, back
	ldr s3, back
	ldr d4, back
	ldr q5, back
	prfm pldl1keep, back
	ldr w0, fwd
	ldr x1, fwd
	ldrsw x2, fwd
	ldr s3, fwd
	ldr d4, fwd
	ldr q5, fwd
	prfm pstl2strm, fwd
	adr x6, back
	adr x7, fwd+3
	adrp x8, fwd
	b back
	bl fwd
	b.eq back
	b.hs fwd
	cbz w9, back
	cbnz x10, fwd
	tbz w11, #3, back
	tbnz x12, #40, fwd
	br x16
	blr x17
	ret
	.p2align 4
fwd:
	.quad 0x0123456789abcdef
	.quad 0xfedcba9876543210
	ret
