// ARM64 test functions for trampoline's execution tests (C ABI: arguments in
// x0, x1, result in x0). Every function and datum lives in .text, linked at a
// page-aligned address and copied out as one flat blob (funcs.bin; symbols in
// funcs.sym), which the tests load into executable memory: PC-relative
// references inside the blob stay valid wherever it is loaded, page-aligned.
// Rebuild with ./build.sh (llvm-mc, ld.lld, llvm-objcopy, llvm-nm).
	.text
	.p2align 4

// Helpers: branch targets outside every relocated function.
	.type helper_add1,%function
helper_add1:
	add x0, x0, #1
	ret
	.size helper_add1, .-helper_add1

	.type helper_mul3,%function
helper_mul3:
	add x0, x0, x0, lsl #1
	ret
	.size helper_mul3, .-helper_mul3

	.type helper_42,%function
helper_42:
	mov x0, #42
	ret
	.size helper_42, .-helper_42

	.type helper_1000,%function
helper_1000:
	mov x0, #1000
	ret
	.size helper_1000, .-helper_1000

// f_b_out(x) = x+1: B out of the function (tail call).
	.type f_b_out,%function
f_b_out:
	nop
	b helper_add1
	.size f_b_out, .-f_b_out

// f_b_in(x) = x<5 ? x-1 : x+100: B and B.cond inside the function.
	.type f_b_in,%function
f_b_in:
	cmp x0, #5
	b.lt 1f
	add x0, x0, #100
	b 2f
1:	sub x0, x0, #1
2:	ret
	.size f_b_in, .-f_b_in

// f_bl(x) = 3x+1: BL out of the function, twice.
	.type f_bl,%function
f_bl:
	stp x29, x30, [sp, #-16]!
	mov x29, sp
	bl helper_mul3
	bl helper_add1
	ldp x29, x30, [sp], #16
	ret
	.size f_bl, .-f_bl

// f_bl_in(x) = x+7: BL to a subroutine inside the function.
	.type f_bl_in,%function
f_bl_in:
	stp x29, x30, [sp, #-16]!
	bl 1f
	ldp x29, x30, [sp], #16
	ret
1:	add x0, x0, #7
	ret
	.size f_bl_in, .-f_bl_in

// f_bcond(x, y) = x==y ? 42 : (x>y unsigned ? 1000 : 7): B.cond out.
	.type f_bcond,%function
f_bcond:
	cmp x0, x1
	b.eq helper_42
	b.hi helper_1000
	mov x0, #7
	ret
	.size f_bcond, .-f_bcond

// f_cbz(x, y) = x==0 ? 1000 : (y32!=0 ? 42 : 5): CBZ, CBNZ out.
	.type f_cbz,%function
f_cbz:
	cbz x0, helper_1000
	cbnz w1, helper_42
	mov x0, #5
	ret
	.size f_cbz, .-f_cbz

// f_tbz(x) = bit40 clear ? x+1 : (bit3 set ? 3x : 9): TBZ, TBNZ out.
	.type f_tbz,%function
f_tbz:
	tbz x0, #40, helper_add1
	tbnz w0, #3, helper_mul3
	mov x0, #9
	ret
	.size f_tbz, .-f_tbz

// f_adr(x) = 3*(x + data_q[0] + 3): ADR of data (byte granular) and of code.
	.type f_adr,%function
f_adr:
	adr x1, data_q
	ldr x1, [x1]
	add x0, x0, x1
	adr x3, data_w+3
	ldrb w3, [x3]
	add x0, x0, x3
	adr x2, helper_mul3
	br x2
	.size f_adr, .-f_adr

// f_adrp(x) = x + data_q[1] + data_w: ADRP+ADD and ADRP+LDR pairs.
	.type f_adrp,%function
f_adrp:
	adrp x1, data_q
	add x1, x1, :lo12:data_q
	ldr x1, [x1, #8]
	adrp x2, data_w
	ldr w2, [x2, :lo12:data_w]
	add x0, x0, x1
	add x0, x0, x2
	ret
	.size f_adrp, .-f_adrp

// f_ldr_lit(x): x plus every kind of literal load (W, X, SW, S, D, Q, PRFM).
	.type f_ldr_lit,%function
f_ldr_lit:
	ldr w1, lit_w
	ldr x2, lit_x
	ldrsw x3, lit_sw
	prfm pldl1keep, lit_x
	ldr s0, lit_s
	ldr d1, lit_d
	ldr q2, lit_q
	fcvtzs x4, s0
	fcvtzs x5, d1
	mov x6, v2.d[0]
	mov x7, v2.d[1]
	add x0, x0, x1
	add x0, x0, x2
	add x0, x0, x3
	add x0, x0, x4
	add x0, x0, x5
	add x0, x0, x6
	add x0, x0, x7
	ret
	.size f_ldr_lit, .-f_ldr_lit

// f_x16(x, y) = y==0 ? 42 : x+5, with x16 live across a CBZ and a SIMD
// literal load: their absolute forms must not use x16 as scratch.
	.type f_x16,%function
f_x16:
	mov x16, x0
	cbz x1, helper_42
	ldr q0, lit_q
	mov x2, v0.d[0]
	add x0, x16, x2
	ret
	.size f_x16, .-f_x16

// f_x17(x, y): the same with x17 live: the absolute forms must use x16.
	.type f_x17,%function
f_x17:
	mov x17, x0
	cbz x1, helper_42
	ldr q0, lit_q
	mov x2, v0.d[0]
	add x0, x17, x2
	ret
	.size f_x17, .-f_x17

// f_x16x17(x, y) = y==0 ? 42 : x+y via x16 and x17: a far CBZ is refused.
	.type f_x16x17,%function
f_x16x17:
	mov x16, x0
	mov x17, x1
	cbz x1, helper_42
	add x0, x16, x17
	ret
	.size f_x16x17, .-f_x16x17

// f_switch(x): gcc's jump-table dispatch (byte offsets from a code label).
	.type f_switch,%function
f_switch:
	cmp w0, #3
	b.hi 9f
	adrp x1, switch_table
	add x1, x1, :lo12:switch_table
	ldrb w1, [x1, w0, uxtw]
	adr x2, .Lcase0
	add x1, x2, w1, sxtb #2
	br x1
.Lcase0:
	mov x0, #3
	ret
.Lcase1:
	mov x0, #9
	ret
.Lcase2:
	mov x0, #17
	ret
.Lcase3:
	mov x0, #4
	ret
9:	mov x0, #99
	ret
	.size f_switch, .-f_switch

// f_detour(x) = 2x+3 with a frame: the detour test's target.
	.type f_detour,%function
f_detour:
	stp x29, x30, [sp, #-32]!
	mov x29, sp
	str x19, [sp, #16]
	mov x19, x0
	add x0, x19, x19
	add x0, x0, #3
	ldr x19, [sp, #16]
	ldp x29, x30, [sp], #32
	ret
	.size f_detour, .-f_detour

// f_loop_in(x) = x*(x+1)/2 (x>0) by a loop inside the first 16 bytes: a far
// detour moves it whole.
	.type f_loop_in,%function
f_loop_in:
	mov x1, #0
1:	add x1, x1, x0
	subs x0, x0, #1
	b.ne 1b
	mov x0, x1
	ret
	.size f_loop_in, .-f_loop_in

// f_loop_into(x): the same, but the loop's branch comes after the first 16
// bytes and goes back into them: a far detour must refuse it.
	.type f_loop_into,%function
f_loop_into:
	mov x1, #0
1:	add x1, x1, x0
	sub x0, x0, #1
	cmp x0, #0
	b.ne 1b
	mov x0, x1
	ret
	.size f_loop_into, .-f_loop_into

// f_bti(x) = x+21, starting with BTI c (a landing pad a detour keeps first).
	.type f_bti,%function
f_bti:
	hint #34
	stp x29, x30, [sp, #-16]!
	mov x29, sp
	add x0, x0, #21
	ldp x29, x30, [sp], #16
	ret
	.size f_bti, .-f_bti

	.p2align 4
data_q:
	.quad 0x1000, 0x20000
data_w:
	.word 0x30000300
	.p2align 3
lit_x:
	.quad 0x123456789
lit_w:
	.word 0xfffffff0
lit_sw:
	.word 0xfffffff0
lit_s:
	.float 2.5
	.p2align 3
lit_d:
	.double 1000.75
	.p2align 4
lit_q:
	.quad 5, 0x700000000
switch_table:
	.byte (.Lcase0-.Lcase0)/4, (.Lcase1-.Lcase0)/4, (.Lcase2-.Lcase0)/4, (.Lcase3-.Lcase0)/4
