/* Long-mode entry: wisp has set up flat segments, identity paging and a
 * stack; rsi holds the zero page, which is the first C argument here. */
	.section .text.start, "ax"
	.globl _start
_start:
	mov	%rsi, %rdi
	mov	$stack_top, %rsp
	call	guest_main
	/* guest_main never returns; if it does, report failure. */
	mov	$0xf4, %dx
	mov	$0xff, %al
	out	%al, %dx
1:	jmp	1b

	.section .bss
	.balign 16
	.space 16384
stack_top:
