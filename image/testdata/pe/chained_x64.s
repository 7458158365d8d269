# A function split in two ranges whose second range has chained unwind info
# (UNW_FLAG_CHAININFO), as MSVC emits for cold blocks: llvm-mc's
# .seh_startchained/.seh_endchained make the second RUNTIME_FUNCTION.
	.text
	.globl	split_func
	.def	split_func; .scl 2; .type 32; .endef
	.p2align 4
split_func:
	.seh_proc split_func
	pushq	%rbx
	.seh_pushreg %rbx
	subq	$32, %rsp
	.seh_stackalloc 32
	.seh_endprologue
	testl	%ecx, %ecx
	je	split_cold
split_back:
	addq	$32, %rsp
	popq	%rbx
	retq
	.seh_startchained
	.seh_endprologue
split_cold:
	movl	$1, %eax
	jmp	split_back
	.seh_endchained
	.seh_endproc

# A frame-pointer function: its UNWIND_INFO has FrameRegister=RBP and a
# nonzero FrameOffset, which saferwall/pe decodes wrongly.
	.globl	frame_func
	.def	frame_func; .scl 2; .type 32; .endef
	.p2align 4
frame_func:
	.seh_proc frame_func
	pushq	%rbp
	.seh_pushreg %rbp
	subq	$64, %rsp
	.seh_stackalloc 64
	leaq	32(%rsp), %rbp
	.seh_setframe %rbp, 32
	.seh_endprologue
	movl	%ecx, %eax
	addq	$64, %rsp
	popq	%rbp
	retq
	.seh_endproc
