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

void guest_main(const uint8_t *zp) __attribute__((noreturn));
void guest_main(const uint8_t *zp)
{
	const char *cmdline = (const char *)(uintptr_t)(*(const uint32_t *)(zp + 0x228));
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
	} else if ((p = find(cmdline, "test=exit="))) {
		uint8_t code = 0;

		for (p += 10; *p >= '0' && *p <= '9'; p++)
			code = (uint8_t)(code * 10 + (*p - '0'));
		done(code);
	}
	puts_("wisp-test-guest: done\n");
	done(0);
}
