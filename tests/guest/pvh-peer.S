/* A minimal PVH guest (32-bit entry from a XEN_ELFNOTE_PHYS32_ENTRY note)
 * used as the peer workload in bench/direct-start.py (QEMU's microvm loads
 * PVH kernels but not wisp's 64-bit-entry test guest) and by the direct
 * test of the PVH entry. It prints the same first line as the test guest,
 * then what it found at its entry: whether paging is on (CR0.PG), ebx,
 * and whether ebx points at an hvm_start_info (its magic); then (unless
 * built with -DSPIN) it writes 0 to the debug-exit port. There is no
 * stack at the PVH entry, so nothing here calls. */
	.section .note.Xen, "a"
	.balign 4
	.long 4, 4, 18
	.asciz "Xen"
	.long _start32

/* Prints the NUL-terminated string at \str on COM1 (clobbers eax, edx,
 * esi). */
	.macro puts str
	mov $\str, %esi
1:	movb (%esi), %al
	test %al, %al
	jz 2f
	mov $0x3f8, %dx
	out %al, %dx
	inc %esi
	jmp 1b
2:
	.endm

	.section .text, "ax"
	.code32
	.globl _start32
_start32:
	mov %ebx, %edi		/* start_info, before anything clobbers it */
	mov %cr0, %ebp
	puts msg
	puts m_paging
	test $0x80000000, %ebp
	jnz 3f
	puts m_off
	jmp 4f
3:	puts m_on
4:	puts m_ebx
	mov %edi, %ecx
	mov $8, %ebx
5:	rol $4, %ecx
	mov %ecx, %eax
	and $0xf, %eax
	movb hex(%eax), %al
	mov $0x3f8, %dx
	out %al, %dx
	dec %ebx
	jnz 5b
	puts m_si
	cmpl $0x336ec578, (%edi)	/* HVM_START_MAGIC */
	jne 6f
	puts m_ok
	jmp 7f
6:	puts m_bad
7:
#ifndef SPIN
	mov $0xf4, %dx
	xor %al, %al
	out %al, %dx
#endif
8:	jmp 8b
	.section .rodata
msg: .asciz "wisp-test-guest: up\n"
m_paging: .asciz "pvh-paging: "
m_off: .asciz "off\n"
m_on: .asciz "on\n"
m_ebx: .asciz "pvh-ebx: 0x"
m_si: .asciz "\npvh-start-info: "
m_ok: .asciz "magic ok\n"
m_bad: .asciz "magic bad\n"
hex: .ascii "0123456789abcdef"
