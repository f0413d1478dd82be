/* The aarch64 (AAPCS64) context switch: save what a callee preserves --
 * x19-x28, the frame pointer x29, the link register x30, d8-d15, the
 * stack pointer and FPCR -- and load another context's. */
	.text

/* void pact__asm_swap(pact__asm_ctx *from, const pact__asm_ctx *to) */
	.globl	pact__asm_swap
	.hidden	pact__asm_swap
	.type	pact__asm_swap, %function
	.p2align 4
pact__asm_swap:
	.cfi_startproc
	sub	sp, sp, #176
	stp	x19, x20, [sp, #0]
	stp	x21, x22, [sp, #16]
	stp	x23, x24, [sp, #32]
	stp	x25, x26, [sp, #48]
	stp	x27, x28, [sp, #64]
	stp	x29, x30, [sp, #80]
	stp	d8, d9, [sp, #96]
	stp	d10, d11, [sp, #112]
	stp	d12, d13, [sp, #128]
	stp	d14, d15, [sp, #144]
	mrs	x9, fpcr
	str	x9, [sp, #160]
	mov	x9, sp
	str	x9, [x0]
	ldr	x9, [x1]
	mov	sp, x9
	ldp	x19, x20, [sp, #0]
	ldp	x21, x22, [sp, #16]
	ldp	x23, x24, [sp, #32]
	ldp	x25, x26, [sp, #48]
	ldp	x27, x28, [sp, #64]
	ldp	x29, x30, [sp, #80]
	ldp	d8, d9, [sp, #96]
	ldp	d10, d11, [sp, #112]
	ldp	d12, d13, [sp, #128]
	ldp	d14, d15, [sp, #144]
	ldr	x9, [sp, #160]
	msr	fpcr, x9
	add	sp, sp, #176
	ret
	.cfi_endproc
	.size	pact__asm_swap, .-pact__asm_swap

/* A new context's first return lands here: entry (x20) gets arg (x19).
 * Entry never returns; if it did, trap. */
	.globl	pact__asm_start
	.hidden	pact__asm_start
	.type	pact__asm_start, %function
	.p2align 4
pact__asm_start:
	.cfi_startproc
	.cfi_undefined x30
	mov	x0, x19
	blr	x20
	brk	#0
	.cfi_endproc
	.size	pact__asm_start, .-pact__asm_start

	.section .note.GNU-stack,"",%progbits
