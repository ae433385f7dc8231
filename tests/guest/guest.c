// SPDX-License-Identifier: MIT
/*
 * A freestanding 64-bit test guest for direct KVM (it runs on the PVM
 * host too: no interrupts, no exceptions). It reports what wisp handed
 * it on COM1 and ends by writing a status to the debug-exit port.
 * Behaviour is chosen on the command line:
 *   test=hello   print the command line and the e820 RAM total, exit 0
 *   test=echo    read one line from the serial port, print "echo: LINE"
 *   test=fault   execute ud2 with no IDT (a triple fault on hardware KVM)
 *   test=exit=N  exit with status N
 *   test=initrd  print the initrd's address, size and FNV-1a hash
 *   test=mp      validate the MP table and print its processor count
 *   test=spin    loop forever (for stop-by-signal tests)
 */
#include <stdint.h>

#define COM1 0x3f8
#define DEBUG_EXIT 0xf4

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static void putc_(char c)
{
	while (!(inb(COM1 + 5) & 0x20))
		;
	outb(COM1, (uint8_t)c);
}

static void puts_(const char *s)
{
	while (*s)
		putc_(*s++);
}

static void putu(uint64_t v)
{
	char buf[21];
	int i = 20;

	buf[i] = 0;
	do {
		buf[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	puts_(buf + i);
}

static const char *find(const char *h, const char *n)
{
	for (; *h; h++) {
		const char *a = h, *b = n;

		while (*a && *b && *a == *b)
			a++, b++;
		if (!*b)
			return h;
	}
	return 0;
}

static __attribute__((noreturn)) void done(uint8_t code)
{
	outb(DEBUG_EXIT, code);
	for (;;)
		;
}

static uint8_t sum(const uint8_t *p, uint32_t n)
{
	uint8_t s = 0;

	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

/* Finds the MP floating pointer where Linux looks (last KiB of base
 * memory), checks both checksums and counts enabled processors. */
static uint8_t check_mptable(void)
{
	const uint8_t *fp = (const uint8_t *)0x9fc00;
	const uint8_t *ct, *en;
	uint16_t count, len;
	int cpus = 0;

	if (fp[0] != '_' || fp[1] != 'M' || fp[2] != 'P' || fp[3] != '_' ||
	    sum(fp, 16)) {
		puts_("mp: no valid floating pointer\n");
		return 3;
	}
	ct = (const uint8_t *)(uintptr_t)(*(const uint32_t *)(fp + 4));
	len = *(const uint16_t *)(ct + 4);
	if (ct[0] != 'P' || ct[1] != 'C' || ct[2] != 'M' || ct[3] != 'P' ||
	    sum(ct, len)) {
		puts_("mp: bad configuration table\n");
		return 4;
	}
	count = *(const uint16_t *)(ct + 34);
	en = ct + 44;
	for (uint16_t i = 0; i < count && en < ct + len; i++) {
		if (en[0] == 0) {
			if (en[3] & 1)
				cpus++;
			en += 20;
		} else {
			en += 8;
		}
	}
	puts_("mp-cpus: ");
	putu((uint64_t)cpus);
	puts_("\n");
	return 0;
}

void guest_main(const uint8_t *zp) __attribute__((noreturn));
void guest_main(const uint8_t *zp)
{
	const char *cmdline =
		(const char *)(uintptr_t)(*(const uint32_t *)(zp + 0x228));
	uint8_t nr = zp[0x1e8];
	uint64_t ram = 0;
	const char *p;

	puts_("wisp-test-guest: up\n");
	if (zp[0x202] != 'H' || zp[0x203] != 'd' || zp[0x204] != 'r' ||
	    zp[0x205] != 'S') {
		puts_("wisp-test-guest: zero page has no HdrS\n");
		done(2);
	}
	puts_("cmdline: ");
	puts_(cmdline);
	puts_("\n");
	for (int i = 0; i < nr && i < 128; i++) {
		const uint8_t *en = zp + 0x2d0 + 20 * i;

		if (*(const uint32_t *)(en + 16) == 1)
			ram += *(const uint64_t *)(en + 8);
	}
	puts_("e820-ram-kib: ");
	putu(ram >> 10);
	puts_("\n");

	if (find(cmdline, "test=echo")) {
		char line[128];
		int n = 0;

		puts_("ready-for-input\n");
		for (;;) {
			char c;

			while (!(inb(COM1 + 5) & 1))
				;
			c = (char)inb(COM1);
			if (c == '\r' || c == '\n')
				break;
			if (n < (int)sizeof(line) - 1)
				line[n++] = c;
		}
		line[n] = 0;
		puts_("echo: ");
		puts_(line);
		puts_("\n");
	} else if (find(cmdline, "test=fault")) {
		puts_("faulting\n");
		__asm__ volatile("ud2");
	} else if (find(cmdline, "test=initrd")) {
		uint32_t addr = *(const uint32_t *)(zp + 0x218);
		uint32_t size = *(const uint32_t *)(zp + 0x21c);
		const uint8_t *b = (const uint8_t *)(uintptr_t)addr;
		uint32_t h = 2166136261u;

		for (uint32_t i = 0; i < size; i++)
			h = (h ^ b[i]) * 16777619u;
		puts_("initrd-addr: ");
		putu(addr);
		puts_("\ninitrd-size: ");
		putu(size);
		puts_("\ninitrd-fnv1a: ");
		putu(h);
		puts_("\n");
	} else if (find(cmdline, "test=mp")) {
		done(check_mptable());
	} else if (find(cmdline, "test=spin")) {
		puts_("spinning\n");
		for (;;)
			__asm__ volatile("pause");
	} else if ((p = find(cmdline, "test=exit="))) {
		uint8_t code = 0;

		for (p += 10; *p >= '0' && *p <= '9'; p++)
			code = (uint8_t)(code * 10 + (*p - '0'));
		done(code);
	}
	puts_("wisp-test-guest: done\n");
	done(0);
}
