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
 *   test=serialpost n=N  the 8250's posted THR writes (test_direct.py
 *                counts the exits in state dumps): N pattern bytes with
 *                IER 0 (LSR polled before each, as Linux's console does),
 *                "sp-raw:" and N more without polling (they fill the
 *                coalesced ring), "sp-a-done", wait for an input byte;
 *                "sp-idle" (8 bytes, polled); N bytes with IER.THRI set,
 *                each followed by polling IIR for the THR-empty
 *                interrupt, "sp-b-done", wait for a byte; N bytes in
 *                loopback (MCR.LOOP) read back through RBR and compared,
 *                "sp-c-ok N" or "sp-c-bad"; a polled line, then "sp-end"
 *                with no LSR read after it, and spin (no more exits)
 *   test=acpi    route=zp|scan [act=s5|reset|ged]: find the RSDP through
 *                the zero page or the 0xE0000 scan, walk XSDT, MADT,
 *                FADT and DSDT and print what they say; then enter S5,
 *                reset, or wait for the power button and enter S5
 *   test=kbd     print "kbd-ready", poll the i8042 for 4 keyboard bytes
 *                and print them in hex ("kbd: 1d 38 e0 53")
 *   test=tick    loop forever on port I/O, printing "tick N" every 2000
 *                reads (for pause/resume tests: the count stops, then
 *                goes on); touch=MiB first writes that much RAM from
 *                16 MiB up
 *   test=clock   enable kvmclock (KVM's CPUID leaves, MSRs 0x4b564d00/01),
 *                print "clock-wall SEC NSEC", then forever "clock NS" every
 *                50 ms of kvmclock time, and "clock-stopped NS" when KVM
 *                set PVCLOCK_GUEST_STOPPED (which it then clears, as
 *                Linux's watchdog does)
 *   test=ioreq-order|ioreq-read|ioreq-fault|ioreq-reattach
 *                exercise the wisp-ioreq-test server's window at base=HEX
 *   test=bench   op=write|read|blkread addr=HEX n=N: time N accesses
 *                (rdtsc) and print cycles per operation; blkread with
 *                iommu=map|strict|lazy runs behind --iommu
 *   test=blkflush 64 writes and a FLUSH, then spin (test_direct.py kills
 *                wisp and checks the image)
 *   test=blkloop n=N  N 4 KiB writes with progress lines, then read
 *                back and verified (for snapshots taken during I/O)
 *   test=iommuloop n=N  the disk behind the IOMMU as test=iommu, then N
 *                writes and read-backs through the mapped IOVA with
 *                progress lines (for snapshots)
 *   test=blk     drive the first virtio-mmio device (or the one at
 *                blkbase=HEX) as a virtio-blk disk
 *                by polling: write, read back, flush, GET_ID, and a read
 *                past the end (want IOERR); prints blk-* lines
 *   test=cpuid   print the hypervisor leaves: "kvm-sig: KVMKVMKVM" and
 *                "kvm-features: N" (CPUID 0x40000001 EAX, decimal)
 *   test=iommu   with --iommu and one disk: drive the virtio-iommu in
 *                the first window, attach the disk (second window,
 *                endpoint 1), map its rings and a data IOVA, read into
 *                it, read into an unmapped IOVA (want IOERR and a fault
 *                record), unmap and read again (want IOERR); iommu-*
 *                lines
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

static uint64_t parse_u(const char *p)
{
	uint64_t v = 0;

	while (*p >= '0' && *p <= '9')
		v = v * 10 + (uint64_t)(*p++ - '0');
	return v;
}

static char sp_byte(uint64_t i)
{
	return (i % 64) == 63 ? '\n' : (char)('a' + i % 26);
}

static void wait_input_byte(void)
{
	while (!(inb(COM1 + 5) & 1))
		;
	(void)inb(COM1);
}

/* A driver whose THR-empty interrupt is on: write, then poll IIR until
 * it reports the interrupt (which the read acknowledges). */
static void putc_thri(char c)
{
	outb(COM1, (uint8_t)c);
	while ((inb(COM1 + 2) & 0x0f) != 0x02)
		;
}

static void serialpost_test(uint64_t n)
{
	uint64_t bad = 0;

	outb(COM1 + 1, 0);
	puts_("sp-a:\n");
	for (uint64_t i = 0; i < n; i++)
		putc_(sp_byte(i));
	/* No LSR read in between: the ring fills, and KVM lets the write
	 * that finds it full exit (wisp drains the ring before it). */
	puts_("\nsp-raw:\n");
	for (uint64_t i = 0; i < n; i++)
		outb(COM1, (uint8_t)sp_byte(i));
	puts_("\nsp-a-done\n");
	wait_input_byte();
	puts_("sp-idle\n");
	outb(COM1 + 1, 0x02);
	for (uint64_t i = 0; i < n; i++)
		putc_thri(sp_byte(i));
	for (const char *m = "\nsp-b-done\n"; *m; m++)
		putc_thri(*m);
	wait_input_byte();
	outb(COM1 + 1, 0);
	outb(COM1 + 4, 0x18); /* LOOP | OUT2 */
	for (uint64_t i = 0; i < n; i++) {
		char c = sp_byte(i);

		outb(COM1, (uint8_t)c);
		while (!(inb(COM1 + 5) & 1))
			;
		bad += inb(COM1) != (uint8_t)c;
	}
	outb(COM1 + 4, 0x08);
	if (bad) {
		puts_("sp-c-bad ");
		putu(bad);
	} else {
		puts_("sp-c-ok ");
		putu(n);
	}
	/* Enough polled bytes to post again, then a line with no exit
	 * after it: only the flush timer can deliver it. */
	puts_("\nsp-polled-tail-0123456789abcdefghijklmnopqrstuvwxyz\n");
	for (const char *m = "sp-end\n"; *m; m++)
		outb(COM1, (uint8_t)*m);
	for (;;)
		__asm__ volatile("pause");
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

/* Polls, with interrupts off: the bytes are what the VMM typed. */
static void kbd(void)
{
	static const char hex[] = "0123456789abcdef";

	puts_("kbd-ready\n");
	puts_("kbd:");
	for (int n = 0; n < 4; n++) {
		uint8_t v;

		while (!(inb(0x64) & 1))
			;
		v = inb(0x60);
		putc_(' ');
		putc_(hex[v >> 4]);
		putc_(hex[v & 15]);
	}
	puts_("\n");
}

/* Port I/O, not compute: on PVM a compute loop runs slowly, and every
 * read here is an exit, so the ticks stop while the vCPU is parked. */
static __attribute__((noreturn)) void tick(void)
{
	for (uint64_t n = 0;; n++) {
		for (int i = 0; i < 2000; i++)
			(void)inb(COM1 + 5);
		puts_("tick ");
		putu(n);
		puts_("\n");
	}
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

/* --- a polling virtio-blk driver over virtio-mmio (no interrupts) --- */

#define VMMIO 0xd0000000ul
#define QSZ 8
/* Ring memory and buffers in a quiet spot of guest RAM (4 MiB up). */
#define RING_DESC 0x400000ul
#define RING_AVAIL 0x401000ul
#define RING_USED 0x402000ul
#define REQ_HDR 0x403000ul
#define REQ_DATA 0x404000ul
#define REQ_STATUS 0x405000ul

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};

/* The blk driver's window and data buffer address (an IOVA behind the
 * IOMMU). */
static uint64_t blk_base = VMMIO;
static uint64_t data_addr = REQ_DATA;

static volatile uint32_t *mreg(uint32_t off)
{
	return (volatile uint32_t *)(blk_base + off);
}

static uint16_t avail_idx;

/* One request: header, optional data (dir: 0 none, 1 device reads, 2
 * device writes), status. Returns the status byte or 0xff on timeout. */
static uint8_t blk_req(uint32_t type, uint64_t sector, uint32_t len, int dir)
{
	volatile struct desc *d = (volatile struct desc *)RING_DESC;
	volatile uint16_t *avail = (volatile uint16_t *)RING_AVAIL;
	volatile uint16_t *used = (volatile uint16_t *)RING_USED;
	volatile uint8_t *status = (volatile uint8_t *)REQ_STATUS;
	uint32_t *hdr = (uint32_t *)REQ_HDR;
	uint16_t want;
	int n = 0;

	hdr[0] = type;
	hdr[1] = 0;
	*(uint64_t *)(hdr + 2) = sector;
	*status = 0xee;
	d[n] = (struct desc){ REQ_HDR, 16, 1, (uint16_t)(n + 1) };
	n++;
	if (dir) {
		d[n] = (struct desc){ data_addr, len,
				      (uint16_t)(1 | (dir == 2 ? 2 : 0)),
				      (uint16_t)(n + 1) };
		n++;
	}
	d[n] = (struct desc){ REQ_STATUS, 1, 2, 0 };
	avail[2 + avail_idx % QSZ] = 0;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	avail[1] = ++avail_idx;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	*mreg(0x50) = 0; /* QueueNotify: caught by the ioeventfd lane */
	want = avail_idx;
	for (unsigned long spin = 0; used[1] != want; spin++) {
		if (spin > 2000000000ul)
			return 0xff;
		__asm__ volatile("pause");
	}
	return *status;
}

/* platform: accept VIRTIO_F_ACCESS_PLATFORM (the disk is behind an
 * IOMMU; every address it is given is an IOVA). */
static uint8_t blk_setup(int platform)
{
	if (*mreg(0) != 0x74726976 || *mreg(4) != 2 || *mreg(8) != 2) {
		puts_("blk: no virtio-mmio block device\n");
		return 3;
	}
	*mreg(0x70) = 0; /* reset */
	*mreg(0x70) = 1 | 2; /* ACKNOWLEDGE | DRIVER */
	*mreg(0x24) = 1; /* DriverFeaturesSel: high word */
	*mreg(0x20) = 1 | (platform ? 2 : 0); /* VERSION_1, ACCESS_PLATFORM */
	*mreg(0x24) = 0;
	*mreg(0x20) = 1u << 9; /* FLUSH */
	*mreg(0x70) = 1 | 2 | 8;
	if (!(*mreg(0x70) & 8)) {
		puts_("blk: FEATURES_OK refused\n");
		return 4;
	}
	for (unsigned long a = RING_DESC; a < REQ_STATUS + 0x1000; a += 8)
		*(volatile uint64_t *)a = 0;
	*mreg(0x30) = 0;
	if (*mreg(0x34) < QSZ)
		return 5;
	*mreg(0x38) = QSZ;
	*mreg(0x80) = (uint32_t)RING_DESC;
	*mreg(0x84) = 0;
	*mreg(0x90) = (uint32_t)RING_AVAIL;
	*mreg(0x94) = 0;
	*mreg(0xa0) = (uint32_t)RING_USED;
	*mreg(0xa4) = 0;
	*mreg(0x44) = 1;
	*mreg(0x70) = 1 | 2 | 8 | 4; /* DRIVER_OK */
	return 0;
}

static uint8_t check_blk_setup(void)
{
	return blk_setup(0);
}

static uint8_t check_blk(void)
{
	uint8_t *data = (uint8_t *)REQ_DATA;
	uint64_t cap;
	uint8_t st;

	st = check_blk_setup();
	if (st)
		return st;
	cap = *mreg(0x100) | ((uint64_t)*mreg(0x104) << 32);
	puts_("blk-capacity: ");
	putu(cap);
	puts_("\n");

	for (int i = 0; i < 512; i++)
		data[i] = (uint8_t)(i * 7 + 3);
	st = blk_req(1, 1, 512, 1); /* OUT sector 1 */
	puts_("blk-write-status: ");
	putu(st);
	for (int i = 0; i < 512; i++)
		data[i] = 0;
	st = blk_req(0, 1, 512, 2); /* IN sector 1 */
	puts_("\nblk-read-status: ");
	putu(st);
	for (int i = 0; i < 512; i++)
		if (data[i] != (uint8_t)(i * 7 + 3)) {
			puts_("\nblk: read-back mismatch\n");
			return 6;
		}
	puts_("\nblk-readback: ok\nblk-flush-status: ");
	putu(blk_req(4, 0, 0, 0));
	for (int i = 0; i < 20; i++)
		data[i] = 0;
	puts_("\nblk-getid-status: ");
	putu(blk_req(8, 0, 20, 2));
	data[20] = 0;
	puts_("\nblk-id: ");
	puts_((const char *)data);
	puts_("\nblk-beyond-status: ");
	putu(blk_req(0, cap, 512, 2));
	puts_("\nblk-isr: ");
	putu(*mreg(0x60) & 1);
	puts_("\n");
	return 0;
}

/* test=blkflush: 64 writes of 4 KiB (sectors 0..511, byte i of sector s
 * is s * 31 + i), then FLUSH; prints the statuses, "blk-flushed" once the
 * FLUSH completed, and spins: the test kills wisp at that point and reads
 * the image. */
static void check_blk_flush(void)
{
	uint8_t *data = (uint8_t *)REQ_DATA;
	uint8_t st, bad = 0;

	if (check_blk_setup()) {
		puts_("blk-flush-setup: failed\n");
		return;
	}
	for (uint64_t r = 0; r < 64; r++) {
		for (int i = 0; i < 4096; i++)
			data[i] = (uint8_t)((r * 8 + (uint64_t)i / 512) * 31 +
					    (uint64_t)i % 512);
		st = blk_req(1, r * 8, 4096, 1);
		if (st)
			bad = st;
	}
	puts_("blk-writes-status: ");
	putu(bad);
	puts_("\nblk-flush-status: ");
	putu(blk_req(4, 0, 0, 0));
	puts_("\nblk-flushed\n");
	for (;;)
		__asm__ volatile("pause");
}

static uint64_t arg_num(const char *cmdline, const char *key, uint64_t dflt);

/* test=blkloop n=N: N writes of 4 KiB (request r at sector r * 8, byte
 * i is (r * 7 + i) mod 251), "blkloop R" every 64, then every block read
 * back and compared; "blkloop-verify: ok" (or the first bad request)
 * and exit 0 (or 1). A snapshot taken in the middle and restored in a
 * new wisp must finish the same way: the disk and the guest's progress
 * agree. */
static uint8_t blk_loop(uint64_t n)
{
	uint8_t *data = (uint8_t *)REQ_DATA;

	if (check_blk_setup()) {
		puts_("blkloop-setup: failed\n");
		return 2;
	}
	for (uint64_t r = 0; r < n; r++) {
		uint8_t st;

		for (int i = 0; i < 4096; i++)
			data[i] = (uint8_t)((r * 7 + (uint64_t)i) % 251);
		st = blk_req(1, r * 8, 4096, 1);
		if (st) {
			puts_("blkloop-write-status: ");
			putu(st);
			puts_("\n");
			return 1;
		}
		if (r % 64 == 0) {
			puts_("blkloop ");
			putu(r);
			puts_("\n");
		}
	}
	for (uint64_t r = 0; r < n; r++) {
		if (blk_req(0, r * 8, 4096, 2))
			return 1;
		for (int i = 0; i < 4096; i++)
			if (data[i] != (uint8_t)((r * 7 + (uint64_t)i) % 251)) {
				puts_("blkloop-verify: bad at ");
				putu(r);
				puts_("\n");
				return 1;
			}
	}
	puts_("blkloop-verify: ok\n");
	return 0;
}

/* --- a polling virtio-iommu driver, and the disk behind it --- */

#define IOMMU_DESC 0x500000ul
#define IOMMU_AVAIL 0x501000ul
#define IOMMU_USED 0x502000ul
#define IOMMU_REQ 0x503000ul
#define IOMMU_RESP 0x503800ul
#define EVQ_DESC 0x504000ul
#define EVQ_AVAIL 0x505000ul
#define EVQ_USED 0x506000ul
#define EVQ_BUF 0x507000ul
#define DATA_IOVA 0x10000000ul
#define UNMAPPED_IOVA 0x20000000ul

static volatile uint32_t *ireg(uint32_t off)
{
	return (volatile uint32_t *)(VMMIO + off);
}

static uint16_t iommu_avail;

static void iommu_queue(int q, uint64_t desc, uint64_t avail, uint64_t used)
{
	*ireg(0x30) = (uint32_t)q;
	*ireg(0x38) = QSZ;
	*ireg(0x80) = (uint32_t)desc;
	*ireg(0x84) = 0;
	*ireg(0x90) = (uint32_t)avail;
	*ireg(0x94) = 0;
	*ireg(0xa0) = (uint32_t)used;
	*ireg(0xa4) = 0;
	*ireg(0x44) = 1;
}

/* One request of rlen bytes at IOMMU_REQ; returns the tail's status or
 * 0xff on timeout. */
static uint8_t iommu_req(uint32_t rlen)
{
	volatile struct desc *d = (volatile struct desc *)IOMMU_DESC;
	volatile uint16_t *avail = (volatile uint16_t *)IOMMU_AVAIL;
	volatile uint16_t *used = (volatile uint16_t *)IOMMU_USED;
	volatile uint8_t *resp = (volatile uint8_t *)IOMMU_RESP;

	resp[0] = 0xee;
	d[0] = (struct desc){ IOMMU_REQ, rlen, 1, 1 };
	d[1] = (struct desc){ IOMMU_RESP, 4, 2, 0 };
	avail[2 + iommu_avail % QSZ] = 0;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	avail[1] = ++iommu_avail;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	*ireg(0x50) = 0;
	for (unsigned long spin = 0; used[1] != iommu_avail; spin++) {
		if (spin > 2000000000ul)
			return 0xff;
		__asm__ volatile("pause");
	}
	return resp[0];
}

/* Two requests in one kick (what Linux 6.12 does in lazy mode: the
 * UNMAPs it queued go with the next MAP's sync): rlen bytes at IOMMU_REQ
 * and rlen2 at IOMMU_REQ2; both statuses or-ed (0 = both OK), 0xff on
 * timeout. */
#define IOMMU_REQ2 0x503100ul
#define IOMMU_RESP2 0x503810ul
static uint8_t iommu_req_pair(uint32_t rlen, uint32_t rlen2)
{
	volatile struct desc *d = (volatile struct desc *)IOMMU_DESC;
	volatile uint16_t *avail = (volatile uint16_t *)IOMMU_AVAIL;
	volatile uint16_t *used = (volatile uint16_t *)IOMMU_USED;
	volatile uint8_t *resp = (volatile uint8_t *)IOMMU_RESP;
	volatile uint8_t *resp2 = (volatile uint8_t *)IOMMU_RESP2;

	resp[0] = 0xee;
	resp2[0] = 0xee;
	d[0] = (struct desc){ IOMMU_REQ, rlen, 1, 1 };
	d[1] = (struct desc){ IOMMU_RESP, 4, 2, 0 };
	d[2] = (struct desc){ IOMMU_REQ2, rlen2, 1, 3 };
	d[3] = (struct desc){ IOMMU_RESP2, 4, 2, 0 };
	avail[2 + iommu_avail % QSZ] = 0;
	avail[2 + (iommu_avail + 1) % QSZ] = 2;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	iommu_avail += 2;
	avail[1] = iommu_avail;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	*ireg(0x50) = 0;
	for (unsigned long spin = 0; used[1] != iommu_avail; spin++) {
		if (spin > 2000000000ul)
			return 0xff;
		__asm__ volatile("pause");
	}
	return resp[0] | resp2[0];
}

static void fill_map(uint32_t *r, uint32_t domain, uint64_t iova, uint64_t last,
		     uint64_t gpa, uint32_t flags)
{
	r[0] = 3; /* MAP */
	r[1] = domain;
	*(uint64_t *)(r + 2) = iova;
	*(uint64_t *)(r + 4) = last;
	*(uint64_t *)(r + 6) = gpa;
	r[8] = flags;
}

static void fill_unmap(uint32_t *r, uint32_t domain, uint64_t iova,
		       uint64_t last)
{
	r[0] = 4; /* UNMAP */
	r[1] = domain;
	*(uint64_t *)(r + 2) = iova;
	*(uint64_t *)(r + 4) = last;
	r[6] = 0;
}

static uint8_t iommu_attach(uint32_t domain, uint32_t ep)
{
	uint32_t *r = (uint32_t *)IOMMU_REQ;

	for (int i = 0; i < 5; i++)
		r[i] = 0;
	r[0] = 1; /* ATTACH */
	r[1] = domain;
	r[2] = ep;
	return iommu_req(20);
}

static uint8_t iommu_map(uint32_t domain, uint64_t iova, uint64_t last,
			 uint64_t gpa, uint32_t flags)
{
	fill_map((uint32_t *)IOMMU_REQ, domain, iova, last, gpa, flags);
	return iommu_req(36);
}

static uint8_t iommu_unmap(uint32_t domain, uint64_t iova, uint64_t last)
{
	fill_unmap((uint32_t *)IOMMU_REQ, domain, iova, last);
	return iommu_req(28);
}

/* The IOMMU in window 0 up, one eventq buffer offered, the disk in
 * window 1 (endpoint 1) attached to domain 1 with its rings, header and
 * status mapped at IOVA = GPA; prints iommu-attach/map-status. */
static uint8_t iommu_init(void)
{
	volatile struct desc *ed = (volatile struct desc *)EVQ_DESC;
	volatile uint16_t *eavail = (volatile uint16_t *)EVQ_AVAIL;
	uint8_t st;

	if (*ireg(0) != 0x74726976 || *ireg(8) != 23) {
		puts_("iommu: no virtio-iommu at 0xd0000000\n");
		return 3;
	}
	for (unsigned long a = IOMMU_DESC; a < EVQ_BUF + 0x1000; a += 8)
		*(volatile uint64_t *)a = 0;
	*ireg(0x70) = 0;
	*ireg(0x70) = 1 | 2;
	*ireg(0x24) = 1;
	*ireg(0x20) = 1; /* VERSION_1 */
	*ireg(0x24) = 0;
	*ireg(0x20) = 1u << 2; /* MAP_UNMAP; no bypass */
	*ireg(0x70) = 1 | 2 | 8;
	if (!(*ireg(0x70) & 8)) {
		puts_("iommu: FEATURES_OK refused\n");
		return 4;
	}
	iommu_queue(0, IOMMU_DESC, IOMMU_AVAIL, IOMMU_USED);
	iommu_queue(1, EVQ_DESC, EVQ_AVAIL, EVQ_USED);
	*ireg(0x70) = 1 | 2 | 8 | 4;
	/* One event buffer, offered up front. */
	ed[0] = (struct desc){ EVQ_BUF, 64, 2, 0 };
	eavail[2] = 0;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	eavail[1] = 1;
	*ireg(0x50) = 1;

	puts_("iommu-attach-status: ");
	st = iommu_attach(1, 1);
	putu(st);
	puts_("\niommu-map-status: ");
	st |= iommu_map(1, RING_DESC, REQ_HDR + 0xfff, RING_DESC, 3);
	st |= iommu_map(1, REQ_STATUS, REQ_STATUS + 0xfff, REQ_STATUS, 3);
	putu(st);
	puts_("\n");
	blk_base = VMMIO + 0x1000;
	return st ? 7 : 0;
}

/* test=iommuloop n=N: the disk behind the virtio-iommu (as test=iommu),
 * then N rounds of a 512-byte write and read-back at sector R through
 * the mapped data IOVA, "iommuloop R" every 16; "iommuloop-done ok" and
 * exit 0, or the failing status and exit 1. Restored from a snapshot
 * taken in the middle, it finishes only if the domain and its mappings
 * came back. */
static uint8_t iommu_loop(uint64_t n)
{
	volatile uint8_t *data = (volatile uint8_t *)REQ_DATA;
	uint8_t st = iommu_init();

	if (st)
		return st;
	if (iommu_map(1, DATA_IOVA, DATA_IOVA + 0xfff, REQ_DATA, 3))
		return 7;
	st = blk_setup(1);
	if (st)
		return st;
	data_addr = DATA_IOVA;
	for (uint64_t r = 0; r < n; r++) {
		for (int i = 0; i < 512; i++)
			data[i] = (uint8_t)(r * 3 + (uint64_t)i);
		st = blk_req(1, r, 512, 1);
		if (!st) {
			for (int i = 0; i < 512; i++)
				data[i] = 0;
			st = blk_req(0, r, 512, 2);
		}
		for (int i = 0; !st && i < 512; i++)
			if (data[i] != (uint8_t)(r * 3 + (uint64_t)i))
				st = 0xfe;
		if (st) {
			puts_("iommuloop-failed: ");
			putu(r);
			puts_(" status ");
			putu(st);
			puts_("\n");
			return 1;
		}
		if (r % 16 == 0) {
			puts_("iommuloop ");
			putu(r);
			puts_("\n");
		}
	}
	puts_("iommuloop-done ok\n");
	return 0;
}

static uint8_t check_iommu(void)
{
	volatile uint16_t *eused = (volatile uint16_t *)EVQ_USED;
	volatile uint8_t *data = (volatile uint8_t *)REQ_DATA;
	const volatile uint8_t *ev = (const volatile uint8_t *)EVQ_BUF;
	uint8_t st;

	st = iommu_init();
	if (st)
		return st;
	/* The data buffer at DATA_IOVA, not at its GPA. */
	if (iommu_map(1, DATA_IOVA, DATA_IOVA + 0xfff, REQ_DATA, 3))
		return 7;
	st = blk_setup(1);
	if (st)
		return st;
	data_addr = DATA_IOVA;
	for (int i = 0; i < 512; i++)
		data[i] = (uint8_t)(i * 5 + 1);
	puts_("iommu-write-status: ");
	putu(blk_req(1, 1, 512, 1));
	for (int i = 0; i < 512; i++)
		data[i] = 0;
	puts_("\niommu-read-status: ");
	putu(blk_req(0, 1, 512, 2));
	puts_("\niommu-readback: ");
	st = 0;
	for (int i = 0; i < 512; i++)
		if (data[i] != (uint8_t)(i * 5 + 1))
			st = 1;
	puts_(st ? "mismatch" : "ok");

	for (int i = 0; i < 512; i++)
		data[i] = 0;
	data_addr = UNMAPPED_IOVA;
	puts_("\niommu-unmapped-status: ");
	putu(blk_req(0, 1, 512, 2));
	for (unsigned long spin = 0; eused[1] != 1 && spin < 100000000ul;
	     spin++)
		__asm__ volatile("pause");
	puts_("\niommu-fault-events: ");
	putu(eused[1]);
	puts_("\niommu-fault-reason: ");
	putu(ev[0]);
	puts_("\niommu-fault-endpoint: ");
	putu(*(const volatile uint32_t *)(ev + 8));
	puts_("\niommu-fault-address: ");
	putu(*(const volatile uint64_t *)(ev + 16));
	puts_("\niommu-data-untouched: ");
	st = 0;
	for (int i = 0; i < 512; i++)
		if (data[i])
			st = 1;
	puts_(st ? "no" : "yes");

	puts_("\niommu-unmap-status: ");
	putu(iommu_unmap(1, DATA_IOVA, DATA_IOVA + 0xfff));
	data_addr = DATA_IOVA;
	puts_("\niommu-after-unmap-status: ");
	putu(blk_req(0, 1, 512, 2));
	puts_("\n");
	return 0;
}

/* --- IOREQ server tests and access benchmarks --- */

static uint64_t arg_num(const char *cmdline, const char *key, uint64_t dflt)
{
	const char *p = find(cmdline, key);
	uint64_t v = 0;
	int base = 10;

	if (!p)
		return dflt;
	p += 0;
	while (*p && *p != '=')
		p++;
	if (*p)
		p++;
	if (p[0] == '0' && p[1] == 'x') {
		base = 16;
		p += 2;
	}
	for (;; p++) {
		int d;

		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (base == 16 && *p >= 'a' && *p <= 'f')
			d = *p - 'a' + 10;
		else
			break;
		v = v * (uint64_t)base + (uint64_t)d;
	}
	return v;
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

static uint32_t rd32(uint64_t a)
{
	return *(volatile uint32_t *)a;
}

static void wr32(uint64_t a, uint32_t v)
{
	*(volatile uint32_t *)a = v;
}

static void print_kv(const char *k, uint64_t v)
{
	puts_(k);
	puts_(": ");
	putu(v);
	puts_("\n");
}

/* kvmclock as KVM documents it (Documentation/virt/kvm/x86/msr.rst): the
 * host keeps a pvclock_vcpu_time_info at the address written to
 * MSR_KVM_SYSTEM_TIME_NEW; ns = system_time + (tsc - tsc_timestamp)
 * scaled by tsc_shift and the 32.32 multiplier. */
struct pvclock {
	uint32_t version, pad0;
	uint64_t tsc_timestamp, system_time;
	uint32_t mul;
	int8_t shift;
	uint8_t flags;
	uint8_t pad[2];
};
struct pvwall {
	uint32_t version, sec, nsec;
};
#define MSR_KVM_WALL_CLOCK_NEW 0x4b564d00
#define MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01
#define PVCLOCK_GUEST_STOPPED 2
static volatile struct pvclock pvti __attribute__((aligned(64)));
static volatile struct pvwall pvwall __attribute__((aligned(64)));

static void cpuid(uint32_t leaf, uint32_t r[4])
{
	__asm__ volatile("cpuid"
			 : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
			 : "a"(leaf), "c"(0));
}

static void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr"
			 :
			 : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32))
			 : "memory");
}

/* The version is odd while the host updates the struct. */
static uint64_t pv_ns(uint8_t *flags)
{
	uint32_t v;
	uint64_t ns;

	do {
		uint64_t d;

		v = pvti.version;
		__asm__ volatile("" ::: "memory");
		d = rdtsc() - pvti.tsc_timestamp;
		d = pvti.shift >= 0 ? d << pvti.shift : d >> -pvti.shift;
		ns = pvti.system_time +
		     (uint64_t)(((unsigned __int128)d * pvti.mul) >> 32);
		*flags = pvti.flags;
		__asm__ volatile("" ::: "memory");
	} while ((v & 1) || v != pvti.version);
	return ns;
}

static uint8_t clock_test(void)
{
	uint32_t r[4];
	uint64_t next;
	uint8_t f;

	cpuid(0x40000000, r);
	if (r[1] != 0x4b4d564b || r[2] != 0x564b4d56 || r[3] != 0x4d) {
		puts_("clock: no KVM CPUID leaves\n");
		return 3;
	}
	cpuid(0x40000001, r);
	if (!(r[0] & (1u << 3))) {
		puts_("clock: no KVM_FEATURE_CLOCKSOURCE2\n");
		return 3;
	}
	wrmsr(MSR_KVM_WALL_CLOCK_NEW, (uint64_t)(uintptr_t)&pvwall);
	wrmsr(MSR_KVM_SYSTEM_TIME_NEW, (uint64_t)(uintptr_t)&pvti | 1);
	puts_("clock-wall ");
	putu(pvwall.sec);
	puts_(" ");
	putu(pvwall.nsec);
	puts_("\n");
	next = pv_ns(&f);
	for (;;) {
		uint64_t ns = pv_ns(&f);

		if (f & PVCLOCK_GUEST_STOPPED) {
			/* Only the guest clears it (KVM keeps it set in
			 * every later update until then). */
			__atomic_fetch_and(&pvti.flags,
					   (uint8_t)~PVCLOCK_GUEST_STOPPED,
					   __ATOMIC_SEQ_CST);
			puts_("clock-stopped ");
			putu(ns);
			puts_("\n");
		}
		if (ns < next)
			continue;
		puts_("clock ");
		putu(ns);
		puts_("\n");
		next = ns + 50000000;
	}
}

static uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;

	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return (uint64_t)hi << 32 | lo;
}

#define IOAPIC_BASE 0xfec00000ul
#define IRQW_VECTOR 0x40
#define IRQW_GSI 5 /* the first virtio window's */

static void ioapic_route(uint32_t gsi, uint32_t low)
{
	volatile uint32_t *sel = (volatile uint32_t *)IOAPIC_BASE;
	volatile uint32_t *win = (volatile uint32_t *)(IOAPIC_BASE + 0x10);

	*sel = 0x11 + 2 * gsi;
	*win = 0; /* destination: APIC ID 0 */
	*sel = 0x10 + 2 * gsi;
	*win = low;
}

/* The vector's bit in the local APIC's IRR (x2APIC MSRs 0x820..). */
static int irr_set(uint32_t v)
{
	return (rdmsr(0x820 + v / 32) >> (v % 32)) & 1;
}

/* test=irqwatch: a lost interrupt is raised again (the VMM's watchdog,
 * or an IOREQ server's watcher). Interrupts stay disabled: a raised line
 * shows as the vector pending in the local APIC's IRR. The driver reads
 * and acknowledges InterruptStatus once (it takes interrupts), then a
 * FLUSH completes while the IOAPIC pin is masked, so its edge is lost;
 * after the unmask nothing reads InterruptStatus, and the vector must
 * become pending within 5 s. Prints how long that took, and whether the
 * vector was already pending at the unmask (the edge came late: nothing
 * was lost, the run proves nothing). */
static uint8_t irq_watch_test(void)
{
	uint64_t t0, t;
	uint8_t f, st;

	wrmsr(MSR_KVM_SYSTEM_TIME_NEW, (uint64_t)(uintptr_t)&pvti | 1);
	wrmsr(0x1b, rdmsr(0x1b) | (1u << 11) | (1u << 10)); /* x2APIC */
	wrmsr(0x80f, 0x1ff); /* SVR: enabled, spurious vector 0xff */
	st = blk_setup(0);
	if (st)
		return st;
	ioapic_route(IRQW_GSI, IRQW_VECTOR | (1u << 16)); /* masked */
	st = blk_req(4, 0, 0, 0);
	puts_("irqwatch-first-status: ");
	putu(st);
	puts_("\nirqwatch-first-isr: ");
	putu(*mreg(0x60) & 1);
	puts_("\n");
	*mreg(0x64) = *mreg(0x60);
	st = blk_req(4, 0, 0, 0); /* its edge meets the masked pin */
	puts_("irqwatch-lost-status: ");
	putu(st);
	puts_("\n");
	/* The used ring is written before the raise, which sets
	 * InterruptStatus and then signals the irqfd (KVM injects an IOAPIC
	 * pin's from a worker): wait for the bit, then 200 ms for the edge
	 * to reach the masked pin. Reading the register restarts the
	 * watcher's second; that is all it does. */
	t0 = pv_ns(&f);
	while (!(*mreg(0x60) & 1) && pv_ns(&f) - t0 < 1000000000ull)
		__asm__ volatile("pause");
	t0 = pv_ns(&f);
	while (pv_ns(&f) - t0 < 200000000ull)
		__asm__ volatile("pause");
	ioapic_route(IRQW_GSI, IRQW_VECTOR); /* unmasked, edge */
	puts_("irqwatch-pending-at-unmask: ");
	putu((uint64_t)irr_set(IRQW_VECTOR));
	puts_("\n");
	t0 = pv_ns(&f);
	do {
		t = pv_ns(&f);
		if (irr_set(IRQW_VECTOR))
			break;
		__asm__ volatile("pause");
	} while (t - t0 < 5000000000ull);
	puts_("irqwatch-raised: ");
	putu((uint64_t)irr_set(IRQW_VECTOR));
	puts_("\nirqwatch-ms: ");
	putu((t - t0) / 1000000);
	puts_("\nirqwatch-isr: ");
	putu(*mreg(0x60) & 1);
	puts_("\n");
	return 0;
}

#define IOT_MAGIC 0x10c0ffee

static uint8_t ioreq_test(const char *cmdline)
{
	uint64_t base = arg_num(cmdline, "base=", 0xd0000000);

	print_kv("ioreq-magic", rd32(base));
	if (find(cmdline, "test=ioreq-order")) {
		uint32_t n = (uint32_t)arg_num(cmdline, "n=", 1000);

		for (uint32_t i = 1; i <= n; i++)
			wr32(base + ((i & 1) ? 0x100 : 0x008), i);
		print_kv("ioreq-errors", rd32(base + 0x18));
		print_kv("ioreq-last", rd32(base + 0x10));
		print_kv("ioreq-writes", rd32(base + 0x20));
		print_kv("ioreq-posted", rd32(base + 0x30));
		print_kv("ioreq-posted-ring", rd32(base + 0x38));
		print_kv("ioreq-posted-slot", rd32(base + 0x40));
	} else if (find(cmdline, "test=ioreq-read")) {
		for (int i = 0; i < 3; i++)
			print_kv("ioreq-counter", rd32(base + 0x28));
	} else if (find(cmdline, "test=ioreq-fault")) {
		print_kv("ioreq-trigger", rd32(base + 0x28));
		for (uint32_t i = 1; i <= 8; i++)
			wr32(base + 0x100, i);
		wr32(base + 0x008, 9);
		print_kv("ioreq-after", rd32(base));
		puts_("ioreq-survived\n");
	} else if (find(cmdline, "test=ioreq-reattach")) {
		unsigned long spins = 0;

		print_kv("ioreq-trigger", rd32(base + 0x28));
		print_kv("ioreq-after", rd32(base));
		while (rd32(base) != IOT_MAGIC) {
			if (++spins > 3000000ul) {
				puts_("ioreq-reattach: gave up\n");
				return 9;
			}
		}
		puts_("ioreq-reattached\n");
		print_kv("ioreq-magic-again", rd32(base));
	}
	return 0;
}

static uint8_t bench(const char *cmdline)
{
	uint64_t addr = arg_num(cmdline, "addr=", 0xd0100000);
	uint64_t n = arg_num(cmdline, "n=", 100000), t0, t1;
	volatile uint32_t sink;

	if (find(cmdline, "op=blkread")) {
		/* 4 KiB random reads through the polling virtio-blk driver;
		 * iommu=map: the disk behind --iommu with the buffer mapped
		 * once, iommu=strict: MAP and UNMAP around every read,
		 * iommu=lazy: a MAP per read at the other of two IOVAs, sent
		 * in one kick with the UNMAP of the previous read's (Linux
		 * 6.12 with iommu.strict=0). */
		uint64_t cap, x = 88172645463325252ull;
		int iommu = find(cmdline, "iommu=") != 0;
		int strict = find(cmdline, "iommu=strict") != 0;
		int lazy = find(cmdline, "iommu=lazy") != 0;

		if (iommu) {
			if (iommu_init())
				return 3;
			data_addr = DATA_IOVA;
			if (!strict && !lazy &&
			    iommu_map(1, DATA_IOVA, DATA_IOVA + 0xfff, REQ_DATA,
				      3))
				return 3;
		}
		if (blk_setup(iommu))
			return 3;
		cap = *mreg(0x100) | ((uint64_t)*mreg(0x104) << 32);
		t0 = rdtsc();
		for (uint64_t i = 0; i < n; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			if (strict && iommu_map(1, DATA_IOVA, DATA_IOVA + 0xfff,
						REQ_DATA, 2))
				return 4;
			if (lazy) {
				uint64_t cur = DATA_IOVA + (i & 1) * 0x1000;
				uint64_t prev = DATA_IOVA + (~i & 1) * 0x1000;

				uint8_t st;

				if (i == 0) {
					st = iommu_map(1, cur, cur + 0xfff,
						       REQ_DATA, 2);
				} else {
					fill_unmap((uint32_t *)IOMMU_REQ, 1,
						   prev, prev + 0xfff);
					fill_map((uint32_t *)IOMMU_REQ2, 1, cur,
						 cur + 0xfff, REQ_DATA, 2);
					st = iommu_req_pair(28, 36);
				}
				if (st)
					return 4;
				data_addr = cur;
			}
			if (blk_req(0, (x % (cap / 8)) * 8, 4096, 2) != 0)
				return 4;
			if (strict &&
			    iommu_unmap(1, DATA_IOVA, DATA_IOVA + 0xfff))
				return 4;
		}
		t1 = rdtsc();
	} else if (find(cmdline, "op=read")) {
		t0 = rdtsc();
		for (uint64_t i = 0; i < n; i++)
			sink = rd32(addr);
		t1 = rdtsc();
		(void)sink;
	} else {
		/* bench/minkvm's loop, instruction for instruction: a PVM host
		 * emulates the instructions after an MMIO write up to the next
		 * one (kvm:kvm_emulate_insn counts them), so the compiler's
		 * five-instruction loop cost ~10 % more per exit than
		 * minkvm's two, which had nothing to do with the VMM. */
		uint64_t left = n;

		t0 = rdtsc();
		if (left)
			__asm__ volatile("1: movl $0, (%0)\n\t"
					 "dec %1\n\t"
					 "jnz 1b"
					 : "+r"(addr), "+c"(left)
					 :
					 : "memory", "cc");
		t1 = rdtsc();
	}
	print_kv("bench-ops", n);
	print_kv("bench-cycles-per-op", (t1 - t0) / (n ? n : 1));
	return 0;
}

/* --- ACPI: the tables wisp wrote, found the ways Linux finds them --- */

#define ACPI_GED_STS_PORT 0x603 /* wisp's GED status (devices/acpi_pm.h) */

static uint64_t rd64p(const uint8_t *p)
{
	return *(const uint32_t *)p | (uint64_t)(*(const uint32_t *)(p + 4))
					      << 32;
}

static int same(const uint8_t *p, const char *s, int n)
{
	for (int i = 0; i < n; i++)
		if (p[i] != (uint8_t)s[i])
			return 0;
	return 1;
}

static int rsdp_valid(const uint8_t *r)
{
	return same(r, "RSD PTR ", 8) && !sum(r, 20) && r[15] >= 2 &&
	       *(const uint32_t *)(r + 20) == 36 && !sum(r, 36);
}

/* The legacy route: 16-byte steps through the BIOS area. */
static const uint8_t *rsdp_scan(void)
{
	for (uint64_t a = 0xe0000; a < 0x100000; a += 16)
		if (rsdp_valid((const uint8_t *)a))
			return (const uint8_t *)a;
	return 0;
}

/* A table at a, if it has signature sig, a sane length and checksum. */
static const uint8_t *table_at(uint64_t a, const char *sig)
{
	const uint8_t *t = (const uint8_t *)a;
	uint32_t len;

	if (!a || a >= 0x100000000ull)
		return 0;
	len = *(const uint32_t *)(t + 4);
	if (len < 36 || len > 0x10000 || !same(t, sig, 4) || sum(t, len))
		return 0;
	return t;
}

static void acpi_madt(const uint8_t *m)
{
	uint32_t len = *(const uint32_t *)(m + 4);
	int cpus = 0, ioapics = 0;

	for (const uint8_t *e = m + 44; e + 2 <= m + len && e[1] >= 2;
	     e += e[1]) {
		if (e[0] == 0 && (*(const uint32_t *)(e + 4) & 1))
			cpus++;
		if (e[0] == 1) {
			ioapics++;
			print_kv("acpi-ioapic-addr",
				 *(const uint32_t *)(e + 4));
		}
		if (e[0] == 2) {
			puts_("acpi-iso: ");
			putu(e[3]);
			puts_(" ");
			putu(*(const uint32_t *)(e + 4));
			puts_("\n");
		}
	}
	print_kv("acpi-cpus", (uint64_t)cpus);
	print_kv("acpi-ioapics", (uint64_t)ioapics);
}

/* Looks for the next small pattern after p in the DSDT. */
static const uint8_t *after(const uint8_t *p, const uint8_t *end,
			    const char *pat, int n)
{
	for (; p + n <= end; p++)
		if (same(p, pat, n))
			return p;
	return 0;
}

/* Each LNRO0005 device with the Memory32Fixed and the extended interrupt
 * descriptor that follow it; \_S5's SLP_TYPa. */
static int acpi_dsdt(const uint8_t *d, uint8_t *s5)
{
	const uint8_t *end = d + *(const uint32_t *)(d + 4), *p = d + 36, *q;
	int devs = 0;

	while ((p = after(p, end, "LNRO0005", 9))) {
		const uint8_t *mem = after(p, end, "\x86\x09\x00", 3);
		const uint8_t *irq = mem ? after(mem, end, "\x89\x06\x00", 3) :
					   0;

		if (!irq)
			return 0;
		puts_("acpi-dev: ");
		putu(*(const uint32_t *)(mem + 4));
		puts_(" ");
		putu(*(const uint32_t *)(mem + 8));
		puts_(" ");
		putu(*(const uint32_t *)(irq + 5));
		puts_(irq[3] & 2 ? " edge" : " level");
		puts_(irq[3] & 4 ? " low\n" : " high\n");
		devs++;
		p = irq;
	}
	print_kv("acpi-devices", (uint64_t)devs);
	/* Name(\_S5, Package(n) { SLP_TYPa, ... }) */
	q = after(d + 36, end, "_S5_\x12", 5);
	if (!q || q[5] >= 0x40)
		return 0;
	q += 7; /* PkgLength (one byte), NumElements */
	*s5 = q[0] == 0x0a ? q[1] : q[0] <= 1 ? q[0] : 0xff;
	print_kv("acpi-s5", *s5);
	return 1;
}

static uint8_t acpi_test(const uint8_t *zp, const char *cmdline)
{
	uint64_t zp_rsdp = rd64p(zp + 0x70);
	const uint8_t *scan = rsdp_scan(), *r, *x, *f = 0, *m = 0, *d;
	uint32_t n;
	uint16_t sleep_ctl, reset_port;
	uint8_t s5 = 0xff;

	print_kv("acpi-rsdp-zp", zp_rsdp);
	print_kv("acpi-rsdp-scan", (uint64_t)(uintptr_t)scan);
	r = find(cmdline, "route=scan") ? scan : (const uint8_t *)zp_rsdp;
	if (!r || !rsdp_valid(r)) {
		puts_("acpi: no valid RSDP\n");
		return 10;
	}
	x = table_at(rd64p(r + 24), "XSDT");
	if (!x) {
		puts_("acpi: bad XSDT\n");
		return 11;
	}
	n = (*(const uint32_t *)(x + 4) - 36) / 8;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *t = (const uint8_t *)rd64p(x + 36 + 8 * i);

		if (table_at((uint64_t)(uintptr_t)t, "FACP"))
			f = t;
		else if (table_at((uint64_t)(uintptr_t)t, "APIC"))
			m = t;
		else {
			puts_("acpi: bad table in the XSDT\n");
			return 12;
		}
		puts_("acpi-table: ");
		putc_((char)t[0]);
		putc_((char)t[1]);
		putc_((char)t[2]);
		putc_((char)t[3]);
		puts_("\n");
	}
	if (!f || !m || f[8] != 6) {
		puts_("acpi: no FADT rev 6 or no MADT\n");
		return 13;
	}
	acpi_madt(m);
	print_kv("acpi-hw-reduced", (*(const uint32_t *)(f + 112) >> 20) & 1);
	/* Generic address structures: System I/O, 8 bits. */
	if (f[244] != 1 || f[245] != 8 || f[116] != 1 || f[117] != 8) {
		puts_("acpi: sleep/reset registers not 8-bit ports\n");
		return 14;
	}
	sleep_ctl = (uint16_t)rd64p(f + 248);
	reset_port = (uint16_t)rd64p(f + 120);
	print_kv("acpi-sleep-ctl", sleep_ctl);
	print_kv("acpi-reset-reg", reset_port);
	d = table_at(rd64p(f + 140), "DSDT");
	if (!d || !acpi_dsdt(d, &s5) || s5 > 7) {
		puts_("acpi: bad DSDT\n");
		return 15;
	}
	if (find(cmdline, "act=ged")) {
		/* What a guest without interrupts does for the button. */
		puts_("ged-waiting\n");
		while (!(inb(ACPI_GED_STS_PORT) & 1))
			__asm__ volatile("pause");
		outb(ACPI_GED_STS_PORT, 1);
		print_kv("ged-cleared", !(inb(ACPI_GED_STS_PORT) & 1));
	}
	if (find(cmdline, "act=s5") || find(cmdline, "act=ged")) {
		puts_("acpi: entering S5\n");
		outb(sleep_ctl, (uint8_t)(s5 << 2 | 0x20));
		puts_("acpi: still running after S5\n");
		return 20;
	}
	if (find(cmdline, "act=reset")) {
		puts_("acpi: reset\n");
		outb(reset_port, f[128]);
		puts_("acpi: still running after reset\n");
		return 21;
	}
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
	} else if (find(cmdline, "test=clock")) {
		done(clock_test());
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
	} else if (find(cmdline, "test=acpi")) {
		done(acpi_test(zp, cmdline));
	} else if (find(cmdline, "test=mp")) {
		done(check_mptable());
	} else if (find(cmdline, "test=blkloop")) {
		done(blk_loop(arg_num(cmdline, "n=", 1024)));
	} else if (find(cmdline, "test=blkflush")) {
		check_blk_flush();
	} else if (find(cmdline, "test=iommuloop")) {
		done(iommu_loop(arg_num(cmdline, "n=", 64)));
	} else if (find(cmdline, "test=iommu")) {
		done(check_iommu());
	} else if (find(cmdline, "test=irqwatch")) {
		done(irq_watch_test());
	} else if (find(cmdline, "test=blk")) {
		blk_base = arg_num(cmdline, "blkbase=", VMMIO);
		done(check_blk());
	} else if (find(cmdline, "test=ioreq")) {
		done(ioreq_test(cmdline));
	} else if (find(cmdline, "test=bench")) {
		done(bench(cmdline));
	} else if (find(cmdline, "test=kbd")) {
		kbd();
	} else if (find(cmdline, "test=tick")) {
		/* touch=MiB: dirty that much RAM from 16 MiB up first (a
		 * snapshot's memory file then holds it). */
		uint64_t touch = arg_num(cmdline, "touch=", 0) << 20;

		for (uint64_t a = 16u << 20; a < (16u << 20) + touch; a += 4096)
			*(volatile uint64_t *)a = a;
		tick();
	} else if (find(cmdline, "test=cpuid")) {
		uint32_t a, b, c, d;
		char sig[13];

		__asm__ volatile("cpuid"
				 : "=a"(a), "=b"(b), "=c"(c), "=d"(d)
				 : "a"(0x40000000u), "c"(0u));
		for (int i = 0; i < 4; i++) {
			sig[i] = (char)(b >> (8 * i));
			sig[4 + i] = (char)(c >> (8 * i));
			sig[8 + i] = (char)(d >> (8 * i));
		}
		sig[12] = 0;
		puts_("kvm-sig: ");
		puts_(sig);
		puts_("\nkvm-features: ");
		__asm__ volatile("cpuid"
				 : "=a"(a), "=b"(b), "=c"(c), "=d"(d)
				 : "a"(0x40000001u), "c"(0u));
		putu(a);
		puts_("\n");
	} else if (find(cmdline, "test=serialpost")) {
		p = find(cmdline, "n=");
		serialpost_test(p ? parse_u(p + 2) : 2048);
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
