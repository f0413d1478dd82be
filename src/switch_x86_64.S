/* The x86-64 context switch itself is inline asm at each switch site
 * (pact__asm_switch in context.h): no call, no ret. What stays here is the
 * stub a new context starts in. */
	.text

/* The first switch to a new context jumps here with rsp at entry, then
 * arg (16-aligned: the call leaves the ABI's alignment at entry's start).
 * Entry never returns; if it did, trap rather than run off the stack.
 * The nop before it is never run: an unwinder that meets this address in
 * a context's first frame, mid-switch, looks it up one byte back, as a
 * return address, and must find this stub's rules there: rip undefined,
 * the end of the stack. */
	.p2align 4
	.cfi_startproc
	.cfi_undefined rip
	nop
	.globl	pact__asm_start
	.hidden	pact__asm_start
	.type	pact__asm_start, @function
pact__asm_start:
#if defined(__CET__) && (__CET__ & 1)
	endbr64		/* a jump target under indirect-branch tracking */
#endif
	movq	8(%rsp), %rdi
	callq	*(%rsp)
	ud2
	.cfi_endproc
	.size	pact__asm_start, .-pact__asm_start

	.section .note.GNU-stack,"",@progbits
