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
	.cfi_adjust_cfa_offset 176
	stp	x19, x20, [sp, #0]
	.cfi_rel_offset x19, 0
	.cfi_rel_offset x20, 8
	stp	x21, x22, [sp, #16]
	.cfi_rel_offset x21, 16
	.cfi_rel_offset x22, 24
	stp	x23, x24, [sp, #32]
	.cfi_rel_offset x23, 32
	.cfi_rel_offset x24, 40
	stp	x25, x26, [sp, #48]
	.cfi_rel_offset x25, 48
	.cfi_rel_offset x26, 56
	stp	x27, x28, [sp, #64]
	.cfi_rel_offset x27, 64
	.cfi_rel_offset x28, 72
	stp	x29, x30, [sp, #80]
	.cfi_rel_offset x29, 80
	.cfi_rel_offset x30, 88
	stp	d8, d9, [sp, #96]
	.cfi_rel_offset d8, 96
	.cfi_rel_offset d9, 104
	stp	d10, d11, [sp, #112]
	.cfi_rel_offset d10, 112
	.cfi_rel_offset d11, 120
	stp	d12, d13, [sp, #128]
	.cfi_rel_offset d12, 128
	.cfi_rel_offset d13, 136
	stp	d14, d15, [sp, #144]
	.cfi_rel_offset d14, 144
	.cfi_rel_offset d15, 152
	mrs	x9, fpcr
	str	x9, [sp, #160]
	mov	x9, sp
	str	x9, [x0]
	ldr	x9, [x1]
	mov	sp, x9	/* the same frame on the new stack: the CFI holds */
	ldp	x19, x20, [sp, #0]
	.cfi_restore x19
	.cfi_restore x20
	ldp	x21, x22, [sp, #16]
	.cfi_restore x21
	.cfi_restore x22
	ldp	x23, x24, [sp, #32]
	.cfi_restore x23
	.cfi_restore x24
	ldp	x25, x26, [sp, #48]
	.cfi_restore x25
	.cfi_restore x26
	ldp	x27, x28, [sp, #64]
	.cfi_restore x27
	.cfi_restore x28
	ldp	x29, x30, [sp, #80]
	.cfi_restore x29
	.cfi_restore x30
	ldp	d8, d9, [sp, #96]
	.cfi_restore d8
	.cfi_restore d9
	ldp	d10, d11, [sp, #112]
	.cfi_restore d10
	.cfi_restore d11
	ldp	d12, d13, [sp, #128]
	.cfi_restore d12
	.cfi_restore d13
	ldp	d14, d15, [sp, #144]
	.cfi_restore d14
	.cfi_restore d15
	ldr	x9, [sp, #160]
	msr	fpcr, x9
	add	sp, sp, #176
	.cfi_adjust_cfa_offset -176
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
