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
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset rbp, 0
	pushq	%rbx
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset rbx, 0
	pushq	%r12
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset r12, 0
	pushq	%r13
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset r13, 0
	pushq	%r14
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset r14, 0
	pushq	%r15
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset r15, 0
	subq	$8, %rsp
	.cfi_adjust_cfa_offset 8
	stmxcsr	(%rsp)
	fnstcw	4(%rsp)
	movq	%rsp, (%rdi)
	movq	(%rsi), %rsp	/* the same frame on the new stack: the CFI holds */
	ldmxcsr	(%rsp)
	fldcw	4(%rsp)
	addq	$8, %rsp
	.cfi_adjust_cfa_offset -8
	popq	%r15
	.cfi_adjust_cfa_offset -8
	.cfi_restore r15
	popq	%r14
	.cfi_adjust_cfa_offset -8
	.cfi_restore r14
	popq	%r13
	.cfi_adjust_cfa_offset -8
	.cfi_restore r13
	popq	%r12
	.cfi_adjust_cfa_offset -8
	.cfi_restore r12
	popq	%rbx
	.cfi_adjust_cfa_offset -8
	.cfi_restore rbx
	popq	%rbp
	.cfi_adjust_cfa_offset -8
	.cfi_restore rbp
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
