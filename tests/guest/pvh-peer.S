/* A minimal PVH guest (32-bit entry from a XEN_ELFNOTE_PHYS32_ENTRY note)
 * used as the peer workload in bench/direct-start.py: QEMU's microvm loads
 * PVH kernels but not wisp's 64-bit-entry test guest. It prints the same
 * first line as the test guest, then (unless built with -DSPIN) writes 0
 * to the debug-exit port. */
	.section .note.Xen, "a"
	.balign 4
	.long 4, 4, 18
	.asciz "Xen"
	.long _start32
	.section .text, "ax"
	.code32
	.globl _start32
_start32:
	mov $msg, %esi
1:	movb (%esi), %al
	test %al, %al
	jz 2f
	mov $0x3f8, %dx
	out %al, %dx
	inc %esi
	jmp 1b
2:
#ifndef SPIN
	mov $0xf4, %dx
	xor %al, %al
	out %al, %dx
#endif
3:	jmp 3b
	.section .rodata
msg: .asciz "wisp-test-guest: up\n"
