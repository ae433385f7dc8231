/* A PVH guest (32-bit entry, ebx = hvm_start_info) that checks the third
 * route to the ACPI tables: start_info.rsdp_paddr (offset 32) must point
 * at a revision-2 RSDP with a valid checksum. Prints "pvh-rsdp: ok",
 * "pvh-rsdp: none" (rsdp_paddr is 0, as with --acpi off) or
 * "pvh-rsdp: bad", then writes 0 (1 for bad) to the debug-exit port. No
 * stack is assumed: the print is a macro. */
	.section .note.Xen, "a"
	.balign 4
	.long 4, 4, 18
	.asciz "Xen"
	.long _start32

	.macro PRINT msg
	mov $\msg, %esi
100:	movb (%esi), %al
	test %al, %al
	jz 101f
	mov $0x3f8, %dx
	out %al, %dx
	inc %esi
	jmp 100b
101:
	.endm

	.section .text, "ax"
	.code32
	.globl _start32
_start32:
	mov 32(%ebx), %edi		/* rsdp_paddr, low half */
	mov 36(%ebx), %eax		/* high half: must be 0 */
	or %edi, %eax
	jz none
	cmpl $0, 36(%ebx)
	jne bad
	cmpl $0x20445352, (%edi)	/* "RSD " */
	jne bad
	cmpl $0x20525450, 4(%edi)	/* "PTR " */
	jne bad
	cmpb $2, 15(%edi)		/* revision */
	jne bad
	xor %eax, %eax
	xor %ecx, %ecx
1:	addb (%edi,%ecx), %al		/* ACPI 1.0 checksum: 20 bytes */
	inc %ecx
	cmp $20, %ecx
	jne 1b
	test %al, %al
	jnz bad
	PRINT msg_ok
	xor %al, %al
	jmp out
none:
	PRINT msg_none
	xor %al, %al
	jmp out
bad:
	PRINT msg_bad
	mov $1, %al
out:
	mov $0xf4, %dx
	out %al, %dx
2:	jmp 2b

	.section .rodata
msg_ok: .asciz "pvh-rsdp: ok\n"
msg_none: .asciz "pvh-rsdp: none\n"
msg_bad: .asciz "pvh-rsdp: bad\n"
