/* The x86-64 (System V) context switch: save what the ABI says a callee
 * preserves -- rbx, rbp, r12-r15, the stack pointer, and the control bits
 * of MXCSR and the x87 FPU -- and load another context's. No system call,
 * no signal mask: about a dozen instructions each way. */
	.text

/* void pact__asm_swap(pact__asm_ctx *from, const pact__asm_ctx *to) */
	.globl	pact__asm_swap
	.hidden	pact__asm_swap
	.type	pact__asm_swap, @function
	.p2align 4
pact__asm_swap:
	.cfi_startproc
	pushq	%rbp
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	subq	$8, %rsp
	stmxcsr	(%rsp)
	fnstcw	4(%rsp)
	movq	%rsp, (%rdi)
	movq	(%rsi), %rsp
	ldmxcsr	(%rsp)
	fldcw	4(%rsp)
	addq	$8, %rsp
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	ret
	.cfi_endproc
	.size	pact__asm_swap, .-pact__asm_swap

/* A new context's first return lands here: entry (r12) gets arg (rbx).
 * Entry never returns; if it did, trap rather than run off the stack. */
	.globl	pact__asm_start
	.hidden	pact__asm_start
	.type	pact__asm_start, @function
	.p2align 4
pact__asm_start:
	.cfi_startproc
	.cfi_undefined rip
	movq	%rbx, %rdi
	callq	*%r12
	ud2
	.cfi_endproc
	.size	pact__asm_start, .-pact__asm_start

	.section .note.GNU-stack,"",@progbits
