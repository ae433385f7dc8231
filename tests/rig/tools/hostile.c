// SPDX-License-Identifier: MIT
/* L2 helper for the hostile-guest scenarios: drives one virtio-mmio
 * virtio-blk, virtio-rng, virtio-net, virtio-vsock, virtio-console or
 * virtio-iommu device of wisp directly through /dev/mem, as a hostile
 * driver would, after Linux's driver was unbound from it (or, for the
 * IOMMU, never bound). The queue attacked is the one the device reads
 * requests from: queue 0 of a block, entropy or IOMMU device (its
 * requestq), the transmit queue (1) of a network, socket or console
 * device, whose receive queue (0) gets buffers of its own.
 *
 *   hostile BASE GROUP [SECONDS]
 *
 * BASE is the device's MMIO window (hex, from /proc/iomem), GROUP one of
 * regs, chains, indirect, races, flood, and for an IOMMU endpoint: its
 * endpoint (VIOT) driven through IOVAs it maps, faults read from its
 * event queue. Rings and buffers live in locked
 * pages of this process; their guest-physical addresses come from
 * /proc/self/pagemap (root). Every case prints one line
 *   WISP-T-OK KEY detail   or   WISP-T-FAIL KEY detail
 * and afterwards the device is reset from here, re-initialised and must
 * serve a real request (KEY-after): a block device a write + read-back,
 * an entropy device random bytes in exactly the buffers it was given, a
 * network device a frame sent and one of L1's (tools/ethsend.c)
 * received within the buffer it was given, a socket device a connection
 * to L1's echo server on port 5300 that echoes a message, an IOMMU the
 * protocol round trip of verify_iommu. Every wait is bounded; exit
 * status 1 when any case failed, 2 when the program could not run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* virtio-mmio version 2 registers (virtio 1.2, 4.2.2) */
#define R_MAGIC 0x000
#define R_VERSION 0x004
#define R_DEVICE_ID 0x008
#define R_DEV_FEAT 0x010
#define R_DEV_FEAT_SEL 0x014
#define R_DRV_FEAT 0x020
#define R_DRV_FEAT_SEL 0x024
#define R_QUEUE_SEL 0x030
#define R_QUEUE_NUM_MAX 0x034
#define R_QUEUE_NUM 0x038
#define R_QUEUE_READY 0x044
#define R_QUEUE_NOTIFY 0x050
#define R_INT_STATUS 0x060
#define R_INT_ACK 0x064
#define R_STATUS 0x070
#define R_DESC_LO 0x080
#define R_DESC_HI 0x084
#define R_DRIVER_LO 0x090
#define R_DRIVER_HI 0x094
#define R_DEVICE_LO 0x0a0
#define R_DEVICE_HI 0x0a4
#define R_CONFIG 0x100

#define S_ACK 1u
#define S_DRIVER 2u
#define S_DRIVER_OK 4u
#define S_FEATURES_OK 8u
#define S_NEEDS_RESET 64u
#define S_FAILED 128u

#define F_INDIRECT (1ull << 28)
#define F_EVENT_IDX (1ull << 29)
#define F_VERSION_1 (1ull << 32)

#define D_NEXT 1
#define D_WRITE 2
#define D_INDIRECT 4

#define BLK_IN 0
#define BLK_OUT 1

#define ID_NET 1
#define ID_BLK 2
#define ID_CONSOLE 3
#define ID_RNG 4
#define ID_VSOCK 19
#define ID_IOMMU 23

/* virtio-console, port 0 (no MULTIPORT): what L1 writes into the
 * device's input (hostile-console/l1.sh) and what we write out */
#define HC_IN_CHARS "WISP-HCRX\n"
#define HC_FILL "hostile-console-request\n" /* 24 bytes */

/* virtio-vsock (5.10): a 44-byte little-endian header per packet */
#define VS_HDR 44
#define VS_HOST_CID 2
#define VS_STREAM 1
#define VS_REQUEST 1
#define VS_RESPONSE 2
#define VS_RST 3
#define VS_RW 5
#define VS_ECHO_PORT 5300 /* L1's echo server (hostile-vsock/l1.sh) */
#define VS_NO_PORT 5399 /* nobody listens there */
#define VS_MSG "WISP-HOSTILE-VSOCK"

/* virtio-net with VERSION_1: a 12-byte header before every frame */
#define NET_HDR 12
#define NET_F_CSUM 0
#define NET_HDR_NEEDS_CSUM 1
#define NET_GSO_TCPV4 1
#define ETHERTYPE_WISP 0x88b5 /* tools/ethsend.c */
#define RX_MAGIC "WISP-HOSTILE-RX"
#define RX_BUF 2048 /* two receive buffers per page */
#define RX_NBUF 8

/* virtio-iommu (virtio 1.2, 5.13): request types, status codes, the
 * readable length of each request (head + fields, no tail) */
#define IO_ATTACH 1
#define IO_DETACH 2
#define IO_MAP 3
#define IO_UNMAP 4
#define IO_PROBE 5
#define IO_S_OK 0
#define IO_S_UNSUPP 2
#define IO_S_INVAL 4
#define IO_S_RANGE 5
#define IO_S_NOENT 6
#define IO_S_NOMEM 8
#define IO_S_MAX 8 /* the highest status the spec defines */
#define IO_MAP_R 1
#define IO_MAP_W 2
#define IO_ATTACH_LEN 20
#define IO_MAP_LEN 36
#define IO_UNMAP_LEN 28
#define IO_PROBE_LEN 72
#define IO_NO_EP 0xfffeu /* no endpoint of that ID */
#define IO_IOVA 0x100000ull /* the IOVA of our mappings */
#define IO_MSI_START 0xfee00000ull /* x86's MSI doorbell (5.13.6.8.2) */
#define IO_MSI_END 0xfeefffffull

#define QN 16 /* our queue size (the device's maximum is larger) */
#define NDATA 8 /* data pages */
#define PAGE 4096
#define TEST_SECTOR 4096 /* 2 MiB into the disk: the scratch area */
#define RAM_END_FAR 0x40000000000ull /* far beyond any guest RAM */

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct blk_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

/* The rings and buffers: one locked page each, so no structure crosses
 * a physical page boundary. */
enum {
	P_DESC,
	P_AVAIL,
	P_USED,
	P_HDR,
	P_IND,
	P_RXDESC,
	P_RXAVAIL,
	P_RXUSED,
	P_RXBUF,
	P_DATA = P_RXBUF + RX_NBUF * RX_BUF / PAGE
};
/* an IOMMU endpoint's (group endpoint): its rings, two buffer pages */
#define P_EP_DESC (P_DATA + NDATA)
#define P_EP_AVAIL (P_EP_DESC + 1)
#define P_EP_USED (P_EP_DESC + 2)
#define P_EP_BUF (P_EP_DESC + 3)
#define P_EP_BUF2 (P_EP_DESC + 4)
#define NPAGES (P_EP_BUF2 + 1)

static volatile uint8_t *mmio;
static uint8_t *pages;
static uint64_t phys[NPAGES];
static uint16_t avail_idx, used_seen;
static uint64_t negotiated;
static uint32_t dev_id; /* ID_BLK, ID_RNG, ID_NET, ... (main) */
static uint64_t guest_cid; /* a socket device's, from its config */
/* an IOMMU's: an endpoint behind it (ACPI VIOT, main), and its config */
static uint32_t io_ep;
static uint32_t io_probe_size, io_domain_end;
static uint64_t io_input_end;
static uint32_t vs_port = 40000; /* the next source port of ours */
/* a console's markers, "WISP-HC-TX RUN SEQ": L1 finds them all, in order,
 * in what the device wrote (hostile-console/l1.sh) */
static char hc_run[48];
static unsigned int hc_seq;
static uint32_t tq; /* the queue attacked: 1 (transmit) on a network device */
static uint16_t rx_avail_idx, rx_used_seen;
/* set by a receive case: dev_init leaves the receive ring empty for it */
static bool rx_manual;
/* group endpoint: the IOMMU's event queue (1) takes the receive ring's
 * place, its buffers the fault records */
static bool evq_on;
static int failures;
/* HOSTILE_KEY_PREFIX: one scenario attacks two devices, keys stay apart */
static const char *key_prefix = "";

static uint32_t rd(uint32_t off)
{
	return *(volatile uint32_t *)(mmio + off);
}

static void wr(uint32_t off, uint32_t v)
{
	*(volatile uint32_t *)(mmio + off) = v;
}

static uint8_t *pg(int i)
{
	return pages + (size_t)i * PAGE;
}

static struct desc *dt(void)
{
	return (struct desc *)(void *)pg(P_DESC);
}

static volatile uint16_t *avail16(void)
{
	return (volatile uint16_t *)(void *)pg(P_AVAIL);
}

static volatile uint16_t *used16(void)
{
	return (volatile uint16_t *)(void *)pg(P_USED);
}

static struct blk_hdr *hdr(int slot)
{
	return (struct blk_hdr *)(void *)(pg(P_HDR) + 64 * slot);
}

/* status bytes live in the second half of the header page, 4 apart: an
 * IOMMU request's tail is 4 bytes */
static volatile uint8_t *st(int slot)
{
	return pg(P_HDR) + 2048 + 4 * slot;
}

static uint64_t hdr_pa(int slot)
{
	return phys[P_HDR] + 64 * (uint64_t)slot;
}

static uint64_t st_pa(int slot)
{
	return phys[P_HDR] + 2048 + 4 * (uint64_t)slot;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void nap_us(long us)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = us * 1000 };

	nanosleep(&ts, NULL);
}

/* wisp's own warnings share the rig's log with the console: the next
 * case (which may make wisp warn) starts only once this line is out, so
 * no warning lands inside a result line. */
static void drain_console(void)
{
	fflush(stdout);
	if (isatty(STDOUT_FILENO))
		tcdrain(STDOUT_FILENO);
}

static void ok(const char *key, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void bad(const char *key, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void ok(const char *key, const char *fmt, ...)
{
	va_list ap;

	printf("WISP-T-OK %s%s ", key_prefix, key);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	drain_console();
}

static void bad(const char *key, const char *fmt, ...)
{
	va_list ap;

	failures++;
	printf("WISP-T-FAIL %s%s ", key_prefix, key);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	drain_console();
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	/* xorshift64*: reproducible garbage, seeded per run below */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

static int setup_memory(void)
{
	int fd;

	pages = mmap(NULL, (size_t)NPAGES * PAGE, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE | MAP_LOCKED,
		     -1, 0);
	if (pages == MAP_FAILED) {
		perror("hostile: mmap");
		return -1;
	}
	memset(pages, 0, (size_t)NPAGES * PAGE);
	fd = open("/proc/self/pagemap", O_RDONLY);
	if (fd < 0) {
		perror("hostile: /proc/self/pagemap");
		return -1;
	}
	for (int i = 0; i < NPAGES; i++) {
		uint64_t e;
		off_t off = (off_t)(((uintptr_t)pg(i) / PAGE) * 8);

		if (pread(fd, &e, 8, off) != 8 || !(e >> 63) ||
		    !(e & ((1ull << 55) - 1))) {
			fprintf(stderr, "hostile: no PFN for page %d\n", i);
			close(fd);
			return -1;
		}
		phys[i] = (e & ((1ull << 55) - 1)) * PAGE;
	}
	close(fd);
	return 0;
}

/* ------------------------------------------------------------ driver */

static uint32_t status(void)
{
	return rd(R_STATUS);
}

/* A device reset through the window at w (ours, or an IOMMU's
 * endpoint's): Status 0, then it must read 0 within 2 s. */
static int reset_window(volatile uint8_t *w)
{
	volatile uint32_t *r = (volatile uint32_t *)(void *)w;
	uint64_t t0 = now_ms();

	r[R_STATUS / 4] = 0;
	while (r[R_STATUS / 4] != 0) {
		if (now_ms() - t0 > 2000)
			return -1;
		nap_us(1000);
	}
	r[R_INT_ACK / 4] = r[R_INT_STATUS / 4];
	return 0;
}

static int dev_reset(void)
{
	return reset_window(mmio);
}

/* The selected queue's ring addresses, in the window at w. */
static void set_addrs_in(volatile uint8_t *w, uint64_t d, uint64_t a,
			 uint64_t u)
{
	volatile uint32_t *r = (volatile uint32_t *)(void *)w;

	r[R_DESC_LO / 4] = (uint32_t)d;
	r[R_DESC_HI / 4] = (uint32_t)(d >> 32);
	r[R_DRIVER_LO / 4] = (uint32_t)a;
	r[R_DRIVER_HI / 4] = (uint32_t)(a >> 32);
	r[R_DEVICE_LO / 4] = (uint32_t)u;
	r[R_DEVICE_HI / 4] = (uint32_t)(u >> 32);
}

static void set_queue_addrs(uint64_t d, uint64_t a, uint64_t u)
{
	set_addrs_in(mmio, d, a, u);
}

static uint64_t dev_features(void)
{
	uint64_t f;

	wr(R_DEV_FEAT_SEL, 0);
	f = rd(R_DEV_FEAT);
	wr(R_DEV_FEAT_SEL, 1);
	f |= (uint64_t)rd(R_DEV_FEAT) << 32;
	return f;
}

static void set_driver_features(uint64_t f)
{
	wr(R_DRV_FEAT_SEL, 0);
	wr(R_DRV_FEAT, (uint32_t)f);
	wr(R_DRV_FEAT_SEL, 1);
	wr(R_DRV_FEAT, (uint32_t)(f >> 32));
}

#define FILL 0xa5

/* a network, socket or console device: the attacked queue is its
 * transmit queue, its receive queue gets buffers of ours */
static bool has_rxq(void)
{
	return dev_id == ID_NET || dev_id == ID_VSOCK || dev_id == ID_CONSOLE;
}

/* the queue the receive ring serves: 0, or an IOMMU's event queue */
static uint32_t rx_q(void)
{
	return evq_on ? 1 : 0;
}

static struct desc *rx_dt(void)
{
	return (struct desc *)(void *)pg(P_RXDESC);
}

static volatile uint16_t *rx_avail16(void)
{
	return (volatile uint16_t *)(void *)pg(P_RXAVAIL);
}

static volatile uint16_t *rx_used16(void)
{
	return (volatile uint16_t *)(void *)pg(P_RXUSED);
}

static uint8_t *rx_buf(int i)
{
	return pg(P_RXBUF) + (size_t)i * RX_BUF;
}

/* The pages are not contiguous in guest-physical memory: a buffer's
 * address is its own page's. */
static uint64_t rx_pa(int i)
{
	return phys[P_RXBUF + i * RX_BUF / PAGE] +
	       (uint64_t)(i * RX_BUF % PAGE);
}

/* Receive buffer i (descriptor i) back to the device, filled with FILL
 * so what the device wrote shows. */
static void rx_post(int i)
{
	memset(rx_buf(i), FILL, RX_BUF);
	rx_dt()[i] = (struct desc){ rx_pa(i), RX_BUF, D_WRITE, 0 };
	rx_avail16()[2 + rx_avail_idx % QN] = (uint16_t)i;
	atomic_thread_fence(memory_order_seq_cst);
	rx_avail_idx++;
	rx_avail16()[1] = rx_avail_idx;
	atomic_thread_fence(memory_order_seq_cst);
	wr(R_QUEUE_NOTIFY, rx_q());
}

/* A network device's receive queue (0): fresh rings, not yet posted. */
static int rx_queue_init(const char **why)
{
	memset(pg(P_RXDESC), 0, PAGE);
	memset(pg(P_RXAVAIL), 0, PAGE);
	memset(pg(P_RXUSED), 0, PAGE);
	rx_avail_idx = rx_used_seen = 0;
	wr(R_QUEUE_SEL, rx_q());
	if (rd(R_QUEUE_READY) || rd(R_QUEUE_NUM_MAX) < QN) {
		*why = "receive queue ready after a reset, or below 16";
		return -1;
	}
	wr(R_QUEUE_NUM, QN);
	set_queue_addrs(phys[P_RXDESC], phys[P_RXAVAIL], phys[P_RXUSED]);
	wr(R_QUEUE_READY, 1);
	if (rd(R_QUEUE_READY) != 1) {
		*why = "QueueReady refused for valid receive rings";
		return -1;
	}
	return 0;
}

/* A proper initialisation of the attacked queue (virtio 1.2, 3.1.1),
 * fresh rings; on a network device its receive queue too, with
 * RX_NBUF buffers posted once the device is live. optional: ring
 * features to negotiate when offered. why: the failed step. */
static int dev_init(uint64_t optional, const char **why)
{
	uint64_t f, want;
	uint32_t max;

	if (dev_reset() < 0) {
		*why = "Status does not read 0 after a reset";
		return -1;
	}
	memset(pg(P_DESC), 0, PAGE);
	memset(pg(P_AVAIL), 0, PAGE);
	memset(pg(P_USED), 0, PAGE);
	avail_idx = used_seen = 0;
	if (rd(R_MAGIC) != 0x74726976 || rd(R_VERSION) != 2 ||
	    rd(R_DEVICE_ID) != dev_id) {
		*why = "not a virtio-mmio v2 device of the type it had";
		return -1;
	}
	wr(R_STATUS, S_ACK);
	wr(R_STATUS, S_ACK | S_DRIVER);
	f = dev_features();
	want = F_VERSION_1 | (f & optional);
	if (!(f & F_VERSION_1)) {
		*why = "VERSION_1 not offered";
		return -1;
	}
	set_driver_features(want);
	wr(R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	if (!(status() & S_FEATURES_OK)) {
		*why = "FEATURES_OK refused for a valid subset";
		return -1;
	}
	negotiated = want;
	if ((has_rxq() || evq_on) && rx_queue_init(why) < 0)
		return -1;
	wr(R_QUEUE_SEL, tq);
	if (rd(R_QUEUE_READY)) {
		*why = "the attacked queue ready after a reset";
		return -1;
	}
	max = rd(R_QUEUE_NUM_MAX);
	if (max < QN) {
		*why = "QueueNumMax below 16";
		return -1;
	}
	wr(R_QUEUE_NUM, QN);
	set_queue_addrs(phys[P_DESC], phys[P_AVAIL], phys[P_USED]);
	wr(R_QUEUE_READY, 1);
	if (rd(R_QUEUE_READY) != 1) {
		*why = "QueueReady refused for valid rings";
		return -1;
	}
	wr(R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	if ((status() & (S_NEEDS_RESET | S_FAILED)) ||
	    !(status() & S_DRIVER_OK)) {
		*why = "device not live after DRIVER_OK";
		return -1;
	}
	for (int i = 0; (has_rxq() || evq_on) && !rx_manual && i < RX_NBUF; i++)
		rx_post(i);
	return 0;
}

static void post(uint16_t head)
{
	avail16()[2 + avail_idx % QN] = head;
	atomic_thread_fence(memory_order_seq_cst);
	avail_idx++;
	avail16()[1] = avail_idx;
	atomic_thread_fence(memory_order_seq_cst);
	wr(R_QUEUE_NOTIFY, tq);
}

/* The outcome of one posted request. */
enum outcome { O_OK, O_ERR, O_NOSTATUS, O_NEEDS_RESET, O_NONE };
static const char *const onames[] = { "completed-ok", "error-status",
				      "completed-no-status", "needs-reset",
				      "no-response" };

/* A transmit queue has no status: "returned" is all the driver sees of
 * a packet sent or dropped. */
static const char *oname(enum outcome o)
{
	return has_rxq() && o == O_OK ? "returned" : onames[o];
}

/* Waits for the next used element or NEEDS_RESET (ms bound). */
static enum outcome wait_done(int slot, int ms, uint32_t *id, uint32_t *len)
{
	uint64_t t0 = now_ms();

	for (;;) {
		uint16_t u = used16()[1];

		if (u != used_seen) {
			volatile uint32_t *e =
				(volatile uint32_t *)(void *)(pg(P_USED) + 4 +
							      8 * (used_seen %
								   QN));

			if (id)
				*id = e[0];
			if (len)
				*len = e[1];
			used_seen++;
			wr(R_INT_ACK, rd(R_INT_STATUS));
			/* an entropy device has no status: it rejects a
			 * buffer by returning it with nothing written */
			if (dev_id == ID_RNG)
				return e[1] ? O_OK : O_ERR;
			/* nor a transmit queue: a frame the device drops
			 * comes back like one it sent */
			if (has_rxq())
				return O_OK;
			if (slot < 0 || *st(slot) == 0xff)
				return O_NOSTATUS;
			return *st(slot) == 0 ? O_OK : O_ERR;
		}
		if (status() & S_NEEDS_RESET)
			return O_NEEDS_RESET;
		if (now_ms() - t0 > (uint64_t)ms)
			return O_NONE;
		nap_us(200);
	}
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4); /* x86: little-endian, as virtio */
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

/* A stream packet header from us (guest_cid:src) to the host's port dst */
static void vs_hdr(void *at, uint32_t src, uint32_t dst, uint32_t len,
		   uint16_t op)
{
	uint8_t *h = at;
	uint64_t host = VS_HOST_CID;
	uint16_t type = VS_STREAM;

	memset(h, 0, VS_HDR);
	memcpy(h, &guest_cid, 8);
	memcpy(h + 8, &host, 8);
	put32(h + 16, src);
	put32(h + 20, dst);
	put32(h + 24, len);
	memcpy(h + 28, &type, 2);
	memcpy(h + 30, &op, 2);
	put32(h + 36, 65536); /* buf_alloc */
}

/* A well-formed request in descriptors 3*slot..3*slot+2. Block: header
 * (slot), data page, status. Entropy: the same three buffers, all of
 * them device-writable (type and sector unused), so the chain cases that
 * corrupt one of the three apply to both devices. */
static void build_rw(int slot, uint32_t type, uint64_t sector, int data,
		     uint32_t len)
{
	struct desc *d = &dt()[3 * slot];

	if (dev_id == ID_CONSOLE) {
		/* three pieces of output, all readable, text so that what
		 * the device writes out stays readable */
		uint8_t *f = pg(P_DATA + data);

		/* a page per request would make the races write tens of MB:
		 * the usual full-page request is a line here */
		if (len == PAGE)
			len = 64;
		memcpy(hdr(slot), "hostile-console\n", 16);
		for (uint32_t i = 0; i < len && i < PAGE; i++)
			f[i] = (uint8_t)HC_FILL[i % 24];
		*st(slot) = '\n';
		d[0] = (struct desc){ hdr_pa(slot), 16, D_NEXT,
				      (uint16_t)(3 * slot + 1) };
		d[1] = (struct desc){ phys[P_DATA + data], len, D_NEXT,
				      (uint16_t)(3 * slot + 2) };
		d[2] = (struct desc){ st_pa(slot), 1, 0, 0 };
		return;
	}
	if (dev_id == ID_VSOCK) {
		/* header, payload, one more byte of payload, all readable:
		 * data on a connection that does not exist (the device
		 * answers with a reset, or drops it) */
		vs_hdr(hdr(slot), (uint32_t)(0x7000 + slot), 9, len + 1, VS_RW);
		*st(slot) = 0;
		d[0] = (struct desc){ hdr_pa(slot), VS_HDR, D_NEXT,
				      (uint16_t)(3 * slot + 1) };
		d[1] = (struct desc){ phys[P_DATA + data], len, D_NEXT,
				      (uint16_t)(3 * slot + 2) };
		d[2] = (struct desc){ st_pa(slot), 1, 0, 0 };
		return;
	}
	if (dev_id == ID_NET) {
		/* header, frame, one more byte of frame: all readable */
		uint8_t *f = pg(P_DATA + data);

		memset(hdr(slot), 0, NET_HDR);
		memset(f, 0xff, 6);
		memcpy(f + 6, "\x02\0\0\0\x78\x99", 6);
		f[12] = ETHERTYPE_WISP >> 8;
		f[13] = ETHERTYPE_WISP & 0xff;
		memcpy(f + 14, "WISP-HOSTILE-TX", 15);
		*st(slot) = 0;
		d[0] = (struct desc){ hdr_pa(slot), NET_HDR, D_NEXT,
				      (uint16_t)(3 * slot + 1) };
		d[1] = (struct desc){ phys[P_DATA + data], len, D_NEXT,
				      (uint16_t)(3 * slot + 2) };
		d[2] = (struct desc){ st_pa(slot), 1, 0, 0 };
		return;
	}

	if (dev_id == ID_IOMMU) {
		/* the whole request in the header buffer (a read: ATTACH
		 * of our endpoint to domain 1, OK whenever it exists; a
		 * write: MAP of one page at an IOVA of the sector, OK, or
		 * INVAL where a mapping is), more readable bytes (the
		 * device reads what it needs and ignores the rest), the
		 * 4-byte tail */
		uint8_t *h = (uint8_t *)hdr(slot);
		uint32_t n = IO_ATTACH_LEN;

		memset(h, 0, 64);
		if (type == BLK_OUT) {
			uint64_t iova = IO_IOVA + (sector & 0xff) * PAGE;

			h[0] = IO_MAP;
			put32(h + 4, 1);
			memcpy(h + 8, &iova, 8);
			iova += PAGE - 1;
			memcpy(h + 16, &iova, 8);
			memcpy(h + 24, &phys[P_DATA + data], 8);
			put32(h + 32, IO_MAP_R | IO_MAP_W);
			n = IO_MAP_LEN;
		} else {
			h[0] = IO_ATTACH;
			put32(h + 4, 1);
			put32(h + 8, io_ep);
		}
		memset((void *)st(slot), 0xff, 4);
		d[0] = (struct desc){ hdr_pa(slot), n, D_NEXT,
				      (uint16_t)(3 * slot + 1) };
		d[1] = (struct desc){ phys[P_DATA + data], len, D_NEXT,
				      (uint16_t)(3 * slot + 2) };
		d[2] = (struct desc){ st_pa(slot), 4, D_WRITE, 0 };
		return;
	}
	if (dev_id == ID_RNG) {
		d[0] = (struct desc){ hdr_pa(slot), 16, D_NEXT | D_WRITE,
				      (uint16_t)(3 * slot + 1) };
		d[1] = (struct desc){ phys[P_DATA + data], len,
				      D_NEXT | D_WRITE,
				      (uint16_t)(3 * slot + 2) };
		d[2] = (struct desc){ st_pa(slot), 1, D_WRITE, 0 };
		return;
	}

	hdr(slot)->type = type;
	hdr(slot)->reserved = 0;
	hdr(slot)->sector = sector;
	*st(slot) = 0xff;
	d[0] = (struct desc){ hdr_pa(slot), 16, D_NEXT,
			      (uint16_t)(3 * slot + 1) };
	d[1] = (struct desc){ phys[P_DATA + data], len,
			      (uint16_t)(D_NEXT |
					 (type == BLK_IN ? D_WRITE : 0)),
			      (uint16_t)(3 * slot + 2) };
	d[2] = (struct desc){ st_pa(slot), 1, D_WRITE, 0 };
}

static enum outcome do_rw(uint32_t type, uint64_t sector, int data,
			  uint32_t len)
{
	build_rw(0, type, sector, data, len);
	post(0);
	return wait_done(0, 5000, NULL, NULL);
}

#define RNG_LEN 256 /* the data buffer of the entropy check */

/* The entropy device works: a request of 16 + RNG_LEN + 1 bytes gets
 * random bytes, its used length is within what it was given, and nothing
 * past the three buffers is written. */
static int verify_rng(const char **why)
{
	uint8_t *h = (uint8_t *)hdr(0), *data = pg(P_DATA);
	uint32_t len = 0;
	enum outcome o;
	bool changed = false;

	memset(h, FILL, 64);
	memset(data, FILL, PAGE);
	*st(0) = FILL;
	*(st(0) + 1) = FILL;
	build_rw(0, 0, 0, 0, RNG_LEN);
	post(0);
	o = wait_done(0, 5000, NULL, &len);
	if (o != O_OK) {
		*why = o == O_ERR ? "request after re-init: 0 bytes" :
				    "request after re-init not served";
		return -1;
	}
	if (len > 16 + RNG_LEN + 1) {
		*why = "used length beyond the buffers given";
		return -1;
	}
	for (int i = 16; i < 64; i++)
		if (h[i] != FILL) {
			*why = "bytes written past the first buffer";
			return -1;
		}
	for (int i = RNG_LEN; i < PAGE; i++)
		if (data[i] != FILL) {
			*why = "bytes written past the data buffer";
			return -1;
		}
	if (*(st(0) + 1) != FILL) {
		*why = "bytes written past the last buffer";
		return -1;
	}
	for (int i = 0; i < RNG_LEN && len >= 16 + RNG_LEN; i++)
		changed |= data[i] != FILL;
	if (len >= 16 + RNG_LEN && !changed) {
		*why = "data buffer reported filled but unchanged";
		return -1;
	}
	return 0;
}

/* Waits (ms bound) for the next receive buffer the device used: 1 with
 * its descriptor and length, 0 when none came, -1 on NEEDS_RESET or a
 * used element naming a buffer the device was not given. */
static int rx_next(int ms, uint32_t *id, uint32_t *len, const char **why)
{
	uint64_t t0 = now_ms();

	while (rx_used16()[1] == rx_used_seen) {
		if (status() & S_NEEDS_RESET) {
			*why = "NEEDS_RESET while receiving";
			return -1;
		}
		if (now_ms() - t0 > (uint64_t)ms)
			return 0;
		nap_us(500);
	}
	{
		volatile uint32_t *e =
			(volatile uint32_t *)(void *)(pg(P_RXUSED) + 4 +
						      8 * (rx_used_seen % QN));

		*id = e[0];
		*len = e[1];
	}
	rx_used_seen++;
	wr(R_INT_ACK, rd(R_INT_STATUS));
	if (*id >= RX_NBUF) {
		*why = "receive used element names an unknown buffer";
		return -1;
	}
	return 1;
}

/* The network device works: a frame sent comes back from the transmit
 * queue, and within 3 s one of L1's frames (tools/ethsend.c, every
 * 20 ms) arrives whole in a receive buffer, nothing written past the
 * length the device reported. Frames of L1's own stack are skipped. */
static int verify_net(const char **why)
{
	uint64_t t0 = now_ms();
	uint32_t id, len;
	int r;

	build_rw(0, 0, 0, 0, 64);
	post(0);
	if (wait_done(0, 5000, NULL, NULL) != O_OK) {
		*why = "a 64-byte frame sent after re-init not returned";
		return -1;
	}
	while (now_ms() - t0 < 3000) {
		const uint8_t *b;

		r = rx_next(3000, &id, &len, why);
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		b = rx_buf((int)id);
		if (len > RX_BUF) {
			*why = "receive length beyond the buffer given";
			return -1;
		}
		for (uint32_t i = len; i < RX_BUF; i++)
			if (b[i] != FILL) {
				*why = "bytes written past the receive length";
				return -1;
			}
		if (len >= NET_HDR + 14 + sizeof(RX_MAGIC) - 1 &&
		    b[NET_HDR + 12] == ETHERTYPE_WISP >> 8 &&
		    b[NET_HDR + 13] == (ETHERTYPE_WISP & 0xff) &&
		    !memcmp(b + NET_HDR + 14, RX_MAGIC, sizeof(RX_MAGIC) - 1)) {
			rx_post((int)id);
			return 0;
		}
		rx_post((int)id);
	}
	*why = "no frame of L1's received within 3 s";
	return -1;
}

/* One packet on the transmit queue (descriptor 0: the header; 1: the
 * payload if any), bounded wait for it to come back. */
static enum outcome vs_send(const uint8_t *h, const void *payload,
			    uint32_t plen)
{
	struct desc *d = dt();

	memcpy(hdr(0), h, VS_HDR);
	d[0] = (struct desc){ hdr_pa(0), VS_HDR, 0, 0 };
	if (plen) {
		memcpy(pg(P_DATA), payload, plen);
		d[0].flags = D_NEXT;
		d[0].next = 1;
		d[1] = (struct desc){ phys[P_DATA], plen, 0, 0 };
	}
	post(0);
	return wait_done(0, 3000, NULL, NULL);
}

static enum outcome vs_send_op(uint32_t src, uint32_t dst, uint16_t op,
			       const void *payload, uint32_t plen)
{
	uint8_t h[VS_HDR];

	vs_hdr(h, src, dst, plen, op);
	return vs_send(h, payload, plen);
}

/* Waits (ms) for a packet from the device to our port: 1 with its op
 * (and payload, up to *plen), 0 when none came, -1 when the device
 * needs a reset or wrote something wrong (its addresses, its length,
 * bytes past it). Packets to other ports are skipped; every buffer goes
 * back to the ring. */
static int vs_recv(uint32_t port, int ms, uint16_t *op, uint8_t *payload,
		   uint32_t *plen, const char **why)
{
	uint64_t t0 = now_ms();

	while (now_ms() - t0 < (uint64_t)ms) {
		uint32_t id, len, n;
		const uint8_t *b;
		uint64_t src_cid, dst_cid;
		int r = rx_next(ms, &id, &len, why);

		if (r <= 0)
			return r;
		b = rx_buf((int)id);
		if (len < VS_HDR || len > RX_BUF) {
			*why = "receive length outside a header and the buffer";
			return -1;
		}
		for (uint32_t i = len; i < RX_BUF; i++)
			if (b[i] != FILL) {
				*why = "bytes written past the receive length";
				return -1;
			}
		memcpy(&src_cid, b, 8);
		memcpy(&dst_cid, b + 8, 8);
		n = get32(b + 24);
		if (src_cid != VS_HOST_CID || dst_cid != guest_cid ||
		    n != len - VS_HDR) {
			*why = "a packet not from the host to us, or its "
			       "length not what the device wrote";
			return -1;
		}
		if (get32(b + 20) == port) {
			memcpy(op, b + 30, 2);
			if (payload && plen) {
				*plen = n < *plen ? n : *plen;
				memcpy(payload, b + VS_HDR, *plen);
			}
			rx_post((int)id);
			return 1;
		}
		rx_post((int)id);
	}
	return 0;
}

/* A connection to L1's echo server (REQUEST, RESPONSE) from a fresh
 * port of ours; returns the port, or 0 with *why set. */
static uint32_t vs_connect(const char **why)
{
	uint32_t p = vs_port++;
	uint16_t op = 0;
	int r;

	if (vs_send_op(p, VS_ECHO_PORT, VS_REQUEST, NULL, 0) != O_OK) {
		*why = "a connection request not returned";
		return 0;
	}
	r = vs_recv(p, 3000, &op, NULL, NULL, why);
	if (r < 0)
		return 0;
	if (r == 0 || op != VS_RESPONSE) {
		*why = r ? "the request was refused" :
			   "no answer to a connection request within 3 s";
		return 0;
	}
	return p;
}

/* The socket device works: a connection to L1's echo server (port
 * 5300) echoes a message whole, then is reset from here. */
static int verify_vsock(const char **why)
{
	uint8_t got[64];
	uint32_t p = vs_connect(why), n;
	uint16_t op = 0;
	int r;

	if (!p)
		return -1;
	if (vs_send_op(p, VS_ECHO_PORT, VS_RW, VS_MSG, sizeof(VS_MSG) - 1) !=
	    O_OK) {
		*why = "data on the connection not returned";
		return -1;
	}
	/* credit updates may come first */
	do {
		n = sizeof(got);
		r = vs_recv(p, 3000, &op, got, &n, why);
	} while (r > 0 && op != VS_RW && op != VS_RST);
	if (r < 0)
		return -1;
	if (r == 0 || op != VS_RW || n != sizeof(VS_MSG) - 1 ||
	    memcmp(got, VS_MSG, n)) {
		*why = r == 0	    ? "no echo within 3 s" :
		       op == VS_RST ? "the connection was reset" :
				      "the echo differs from the message";
		return -1;
	}
	vs_send_op(p, VS_ECHO_PORT, VS_RST, NULL, 0);
	return 0;
}

/* The console works: a marker line goes out (L1 finds it later), and
 * within 3 s some of L1's input arrives: only its characters, nothing
 * written past the length the device reported. */
static int verify_console(const char **why)
{
	struct desc *d = dt();
	uint32_t id, len;
	int n, r;

	n = snprintf((char *)pg(P_DATA), PAGE, "WISP-HC-TX %s %u\n", hc_run,
		     hc_seq + 1);
	d[0] = (struct desc){ phys[P_DATA], (uint32_t)n, 0, 0 };
	post(0);
	if (wait_done(0, 5000, NULL, NULL) != O_OK) {
		*why = "a marker line written after re-init not returned";
		return -1;
	}
	hc_seq++;
	r = rx_next(3000, &id, &len, why);
	if (r < 0)
		return -1;
	if (r == 0) {
		*why = "no input from L1 within 3 s";
		return -1;
	}
	if (len == 0 || len > RX_BUF) {
		*why = "receive length 0 or beyond the buffer given";
		return -1;
	}
	for (uint32_t i = 0; i < RX_BUF; i++) {
		uint8_t c = rx_buf((int)id)[i];

		if (i >= len ? c != FILL : !c || !strchr(HC_IN_CHARS, c)) {
			*why = i >= len ?
				       "bytes written past the receive length" :
				       "input that L1 did not write";
			return -1;
		}
	}
	rx_post((int)id);
	return 0;
}

/* ------------------------------------------------------------- IOMMU */

static char io_why[160];

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

/* An ATTACH or DETACH request (the same layout) in q; its length */
static uint32_t io_attach(uint8_t *q, uint8_t type, uint32_t domain,
			  uint32_t ep)
{
	memset(q, 0, IO_PROBE_LEN);
	q[0] = type;
	put32(q + 4, domain);
	put32(q + 8, ep);
	return IO_ATTACH_LEN;
}

static uint32_t io_map(uint8_t *q, uint32_t domain, uint64_t start,
		       uint64_t last, uint64_t pa, uint32_t flags)
{
	memset(q, 0, IO_PROBE_LEN);
	q[0] = IO_MAP;
	put32(q + 4, domain);
	put64(q + 8, start);
	put64(q + 16, last);
	put64(q + 24, pa);
	put32(q + 32, flags);
	return IO_MAP_LEN;
}

static uint32_t io_unmap(uint8_t *q, uint32_t domain, uint64_t start,
			 uint64_t last)
{
	memset(q, 0, IO_PROBE_LEN);
	q[0] = IO_UNMAP;
	put32(q + 4, domain);
	put64(q + 8, start);
	put64(q + 16, last);
	return IO_UNMAP_LEN;
}

static uint32_t io_probe(uint8_t *q, uint32_t ep)
{
	memset(q, 0, IO_PROBE_LEN);
	q[0] = IO_PROBE;
	put32(q + 4, ep);
	return IO_PROBE_LEN;
}

/* One request outside the slots: LEN readable bytes of REQ from data
 * page 1, then WLEN writable bytes and the 4-byte tail in data page 2
 * (FILL before). The status (0..255), or -1 (io_why says why) when the
 * device did not answer, answered with a used length other than all it
 * was given, or wrote past it. */
static int io_req(const uint8_t *req, uint32_t len, uint32_t wlen)
{
	struct desc *d = dt();
	uint8_t *w = pg(P_DATA + 2);
	uint32_t ulen = 0;
	enum outcome o;

	memcpy(pg(P_DATA + 1), req, len > PAGE ? PAGE : len);
	memset(w, FILL, wlen + 12);
	d[0] = (struct desc){ phys[P_DATA + 1], len, D_NEXT, 1 };
	d[1] = (struct desc){ phys[P_DATA + 2], wlen + 4, D_WRITE, 0 };
	post(0);
	o = wait_done(-1, 5000, NULL, &ulen);
	if (o == O_NONE || o == O_NEEDS_RESET) {
		snprintf(io_why, sizeof(io_why), "request type %u: %s", req[0],
			 oname(o));
		return -1;
	}
	if (ulen != wlen + 4) {
		snprintf(io_why, sizeof(io_why),
			 "request type %u: used length %u of %u", req[0], ulen,
			 wlen + 4);
		return -1;
	}
	for (uint32_t i = wlen + 4; i < wlen + 12; i++)
		if (w[i] != FILL) {
			snprintf(io_why, sizeof(io_why),
				 "request type %u: written past its tail",
				 req[0]);
			return -1;
		}
	return w[wlen];
}

/* A request whose status must be WANT; else io_why says what came. */
static bool io_expect(const uint8_t *req, uint32_t len, uint32_t wlen, int want,
		      const char *what)
{
	int st = io_req(req, len, wlen);

	if (st == want)
		return true;
	if (st >= 0)
		snprintf(io_why, sizeof(io_why), "%s: status %d, not %d", what,
			 st, want);
	return false;
}

/* The device works: the protocol's round trip on our endpoint (attach,
 * map, an overlapping map refused, an unmap that would split refused,
 * unmap, probe with the MSI doorbell reserved, detach), and a missing
 * endpoint is NOENT. Leaves no domain attached. */
static int verify_iommu(const char **why)
{
	uint8_t q[IO_PROBE_LEN], *props = pg(P_DATA + 2);
	uint64_t a = IO_IOVA, start, end;
	uint32_t n;

	*why = io_why;
	n = io_attach(q, IO_ATTACH, 1, io_ep);
	if (!io_expect(q, n, 0, IO_S_OK, "ATTACH of our endpoint"))
		return -1;
	n = io_map(q, 1, a, a + 4 * PAGE - 1, phys[P_DATA + 3],
		   IO_MAP_R | IO_MAP_W);
	if (!io_expect(q, n, 0, IO_S_OK, "MAP of 16 KiB"))
		return -1;
	n = io_map(q, 1, a + PAGE, a + 2 * PAGE - 1, phys[P_DATA + 3],
		   IO_MAP_R);
	if (!io_expect(q, n, 0, IO_S_INVAL, "MAP over a mapping"))
		return -1;
	n = io_unmap(q, 1, a + PAGE, a + 2 * PAGE - 1);
	if (!io_expect(q, n, 0, IO_S_RANGE, "UNMAP splitting a mapping"))
		return -1;
	n = io_unmap(q, 1, a, a + 4 * PAGE - 1);
	if (!io_expect(q, n, 0, IO_S_OK, "UNMAP of the mapping"))
		return -1;
	n = io_probe(q, io_ep);
	if (!io_expect(q, n, io_probe_size, IO_S_OK, "PROBE"))
		return -1;
	/* the first property: RESV_MEM (type 1, 20 bytes) of subtype MSI
	 * over the doorbell; a NONE property (or the end) after it */
	memcpy(&start, props + 8, 8);
	memcpy(&end, props + 16, 8);
	if (props[0] != 1 || props[1] != 0 || props[2] != 20 || props[3] != 0 ||
	    props[4] != 1 || start != IO_MSI_START || end != IO_MSI_END ||
	    (io_probe_size >= 28 && (props[24] | props[25]))) {
		snprintf(io_why, sizeof(io_why),
			 "PROBE: not the MSI doorbell as RESV_MEM "
			 "(%02x %02x %02x %02x %02x)",
			 props[0], props[1], props[2], props[3], props[4]);
		return -1;
	}
	n = io_attach(q, IO_DETACH, 1, io_ep);
	if (!io_expect(q, n, 0, IO_S_OK, "DETACH of our endpoint"))
		return -1;
	n = io_attach(q, IO_ATTACH, 1, IO_NO_EP);
	if (!io_expect(q, n, 0, IO_S_NOENT, "ATTACH of a missing endpoint"))
		return -1;
	return 0;
}

/* The device works: a fresh pattern written at the scratch sector and
 * read back equal (block), random bytes where asked (entropy), a frame
 * each way (network), an echoed connection (socket), a line each way
 * (console). */
static int verify_io(const char **why)
{
	uint8_t *w = pg(P_DATA), *r = pg(P_DATA + 1);
	enum outcome o;

	if (dev_id == ID_RNG)
		return verify_rng(why);
	if (dev_id == ID_NET)
		return verify_net(why);
	if (dev_id == ID_VSOCK)
		return verify_vsock(why);
	if (dev_id == ID_CONSOLE)
		return verify_console(why);
	if (dev_id == ID_IOMMU)
		return verify_iommu(why);

	for (int i = 0; i < PAGE; i++)
		w[i] = (uint8_t)rnd();
	memset(r, 0, PAGE);
	o = do_rw(BLK_OUT, TEST_SECTOR, 0, PAGE);
	if (o != O_OK) {
		*why = "write after re-init did not complete OK";
		return -1;
	}
	o = do_rw(BLK_IN, TEST_SECTOR, 1, PAGE);
	if (o != O_OK) {
		*why = "read after re-init did not complete OK";
		return -1;
	}
	if (memcmp(w, r, PAGE)) {
		*why = "data read back differs from what was written";
		return -1;
	}
	return 0;
}

/* After a case: the device comes back with a reset from the guest. */
static void recover(const char *key)
{
	char k[96];
	const char *why = NULL;
	uint64_t t0 = now_ms();

	snprintf(k, sizeof(k), "%s-after", key);
	rx_manual = false;
	if (dev_init(0, &why) < 0 || verify_io(&why) < 0) {
		bad(k, "%s (Status 0x%x)", why, status());
		if (has_rxq())
			printf("hostile: receive rings at 0x%llx 0x%llx 0x%llx, "
			       "avail idx %u, used idx %u, seen %u\n",
			       (unsigned long long)phys[P_RXDESC],
			       (unsigned long long)phys[P_RXAVAIL],
			       (unsigned long long)phys[P_RXUSED], rx_avail_idx,
			       rx_used16()[1], rx_used_seen);
	} else
		ok(k, "reset, re-init, %s (%llu ms)",
		   dev_id == ID_RNG	? "random bytes served" :
		   dev_id == ID_NET	? "a frame sent, one of L1's received" :
		   dev_id == ID_VSOCK	? "a connection to L1 echoed" :
		   dev_id == ID_CONSOLE ? "a line out, L1's input in" :
		   dev_id == ID_IOMMU	? "the protocol's round trip" :
					  "4 KiB write+read equal",
		   (unsigned long long)(now_ms() - t0));
}

/* ------------------------------------------------------ register battery */

static void expect(const char *key, bool cond, const char *fmt, uint32_t v)
{
	char buf[160];

	snprintf(buf, sizeof(buf), fmt, v);
	if (cond)
		ok(key, "%s", buf);
	else
		bad(key, "%s", buf);
}

/* Status, features and queue set up to just before QueueReady. */
static void prep_queue(void)
{
	dev_reset();
	wr(R_STATUS, S_ACK | S_DRIVER);
	set_driver_features(F_VERSION_1);
	wr(R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	wr(R_QUEUE_SEL, tq);
}

static void group_regs(void)
{
	uint32_t max, v;
	unsigned long n = 0;
	uint64_t t0 = now_ms();
	bool magic_ok = true;

	/* every offset, every width, reads (write-only registers too) */
	for (uint32_t off = 0; off < 0x200; off++) {
		(void)*(volatile uint8_t *)(mmio + off);
		n++;
		if (!(off & 1)) {
			(void)*(volatile uint16_t *)(mmio + off);
			n++;
		}
		if (!(off & 3)) {
			(void)*(volatile uint32_t *)(mmio + off);
			n++;
		}
		if (!(off & 7)) {
			(void)*(volatile uint64_t *)(mmio + off);
			n++;
		}
	}
	magic_ok = rd(R_MAGIC) == 0x74726976 && rd(R_DEVICE_ID) == dev_id;
	if (magic_ok)
		ok("regs-read-all", "%lu reads of 0x000-0x1ff, widths 1/2/4/8",
		   n);
	else
		bad("regs-read-all", "magic/device id wrong after reads");

	/* writes to the read-only registers: all of them read as before */
	{
		static const uint32_t ro[] = { R_MAGIC,	     R_VERSION,
					       R_DEVICE_ID,  0x00c,
					       R_DEV_FEAT,   R_QUEUE_NUM_MAX,
					       R_INT_STATUS, 0x0fc };
		uint32_t before[8], changed = 0;
		const char *why = NULL;

		/* a network device with receive buffers would raise
		 * interrupts for L1's frames: InterruptStatus must stay */
		rx_manual = true;
		if (dev_init(0, &why) < 0)
			bad("regs-write-readonly", "init before: %s", why);
		wr(R_DEV_FEAT_SEL, 1);
		for (int i = 0; i < 8; i++)
			before[i] = rd(ro[i]);
		for (int i = 0; i < 8; i++)
			wr(ro[i], 0xffffffffu);
		for (int i = 0; i < 8; i++)
			if (rd(ro[i]) != before[i])
				changed |= 1u << i;
		expect("regs-write-readonly", !changed,
		       "0xffffffff into Magic, Version, DeviceID, VendorID, "
		       "DeviceFeatures, QueueNumMax, InterruptStatus, "
		       "ConfigGeneration: changed mask 0x%x",
		       changed);
		recover("regs-write-readonly");
	}

	/* garbage: random offsets, widths and values, the device live */
	{
		const char *why = NULL;

		if (dev_init(F_INDIRECT, &why) < 0)
			bad("regs-garbage", "init before: %s", why);
	}
	n = 0;
	for (uint32_t off = 0; off < 0x200; off += 4) {
		uint64_t r = rnd();

		switch (r & 3) {
		case 0:
			*(volatile uint8_t *)(mmio + off + (r >> 8 & 3)) =
				(uint8_t)(r >> 16);
			break;
		case 1:
			*(volatile uint16_t *)(mmio + off + (r >> 8 & 2)) =
				(uint16_t)(r >> 16);
			break;
		case 2:
			wr(off, (uint32_t)(r >> 24));
			break;
		default:
			*(volatile uint64_t *)(mmio + (off & ~7u)) = r;
			break;
		}
		(void)rd(off);
		n += 2;
	}
	for (int i = 0; i < 400; i++) {
		uint64_t r = rnd();

		wr((uint32_t)(r % 0x200) & ~3u, (uint32_t)(r >> 32));
		(void)rd((uint32_t)(r >> 12) % 0x200 & ~3u);
		n += 2;
	}
	ok("regs-garbage", "%lu random accesses over 0x000-0x1ff, magic 0x%x",
	   n, rd(R_MAGIC));
	recover("regs-garbage");

	/* QueueSel out of range: everything on it ignored, reads 0 */
	prep_queue();
	wr(R_QUEUE_SEL, 0xffffffffu);
	max = rd(R_QUEUE_NUM_MAX);
	wr(R_QUEUE_NUM, 8);
	set_queue_addrs(phys[P_DESC], phys[P_AVAIL], phys[P_USED]);
	wr(R_QUEUE_READY, 1);
	v = rd(R_QUEUE_READY);
	wr(R_QUEUE_SEL, 1000);
	wr(R_QUEUE_READY, 1);
	v |= rd(R_QUEUE_READY);
	expect("regs-queuesel-range", max == 0 && v == 0,
	       "QueueSel 0xffffffff/1000: NumMax 0, Ready 0 (Status 0x%x)",
	       status());
	recover("regs-queuesel-range");

	/* QueueNum 0, > max, not a power of two: QueueReady must not stick */
	{
		static const struct {
			const char *key;
			uint32_t num; /* 0xffffffff: max + 1 */
		} qn[] = { { "regs-queuenum-0", 0 },
			   { "regs-queuenum-over", 0xffffffffu },
			   { "regs-queuenum-npot", 3 },
			   { "regs-queuenum-huge", 0x10000 } };

		for (size_t i = 0; i < sizeof(qn) / sizeof(qn[0]); i++) {
			uint32_t num;

			prep_queue();
			max = rd(R_QUEUE_NUM_MAX);
			num = qn[i].num == 0xffffffffu ? max + 1 : qn[i].num;
			wr(R_QUEUE_NUM, num);
			set_queue_addrs(phys[P_DESC], phys[P_AVAIL],
					phys[P_USED]);
			wr(R_QUEUE_READY, 1);
			v = rd(R_QUEUE_READY);
			wr(R_STATUS,
			   S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
			wr(R_QUEUE_NOTIFY, tq);
			expect(qn[i].key, v == 0,
			       "QueueReady not set, Status 0x%x", status());
			recover(qn[i].key);
		}
	}

	/* QueueReady with bad ring addresses */
	{
		static const struct {
			const char *key;
			uint64_t d, a, u; /* 1: ours */
		} qa[] = {
			{ "regs-ring-beyond-ram", RAM_END_FAR, 1, 1 },
			{ "regs-ring-mmio-hole", 0xd0000000ull, 1, 1 },
			{ "regs-ring-lapic", 1, 0xfee00000ull, 1 },
			{ "regs-ring-wrap", 0xfffffffffffff000ull, 1, 1 },
			{ "regs-ring-used-wrap", 1, 1, 0xfffffffffffffff0ull },
			{ "regs-ring-misaligned", 2, 1, 1 },
		};

		for (size_t i = 0; i < sizeof(qa) / sizeof(qa[0]); i++) {
			uint64_t d = qa[i].d == 1 ? phys[P_DESC] :
				     qa[i].d == 2 ? phys[P_DESC] + 8 :
						    qa[i].d;
			uint64_t a = qa[i].a == 1 ? phys[P_AVAIL] : qa[i].a;
			uint64_t u = qa[i].u == 1 ? phys[P_USED] : qa[i].u;

			prep_queue();
			wr(R_QUEUE_NUM, QN);
			set_queue_addrs(d, a, u);
			wr(R_QUEUE_READY, 1);
			v = rd(R_QUEUE_READY);
			wr(R_STATUS,
			   S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
			wr(R_QUEUE_NOTIFY, tq);
			expect(qa[i].key, v == 0,
			       "QueueReady not set, Status 0x%x", status());
			recover(qa[i].key);
		}
	}

	/* unknown feature bits: FEATURES_OK must not stick */
	dev_reset();
	wr(R_STATUS, S_ACK | S_DRIVER);
	for (uint32_t sel = 0; sel < 8; sel++) {
		wr(R_DRV_FEAT_SEL, sel);
		wr(R_DRV_FEAT, 0xffffffffu);
	}
	wr(R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	v = status();
	expect("regs-features-unknown", !(v & S_FEATURES_OK),
	       "all feature bits: FEATURES_OK refused, Status 0x%x", v);
	recover("regs-features-unknown");

	/* without VERSION_1 (a legacy driver on a modern-only device) */
	dev_reset();
	wr(R_STATUS, S_ACK | S_DRIVER);
	set_driver_features(0);
	wr(R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	v = status();
	expect("regs-features-noversion", !(v & S_FEATURES_OK),
	       "no VERSION_1: FEATURES_OK refused, Status 0x%x", v);
	recover("regs-features-noversion");

	/* DRIVER_OK before FEATURES_OK: the device must not go live */
	dev_reset();
	wr(R_STATUS, S_ACK | S_DRIVER | S_DRIVER_OK);
	v = status();
	build_rw(0, BLK_IN, 0, 0, 512);
	post(0);
	{
		enum outcome o = wait_done(0, 300, NULL, NULL);

		expect("regs-status-order",
		       (v & S_FAILED || !(v & S_DRIVER_OK)) &&
			       (o == O_NONE || o == O_NEEDS_RESET),
		       "DRIVER_OK without FEATURES_OK: Status 0x%x, no I/O", v);
	}
	recover("regs-status-order");

	/* FEATURES_OK toggled after DRIVER_OK, Status 0xff, status bits
	 * cleared without a reset, features rewritten after FEATURES_OK */
	{
		const char *why = NULL;
		uint64_t f;

		if (dev_init(0, &why) < 0) {
			bad("regs-status-garbage", "init: %s", why);
		} else {
			wr(R_STATUS, S_ACK);
			wr(R_STATUS, 0xff);
			wr(R_STATUS, S_DRIVER_OK);
			set_driver_features(0xffffffffffffffffull);
			f = dev_features();
			v = status();
			/* NEEDS_RESET is the device's, 0x30 reserved: a
			 * driver cannot set them; the device keeps its
			 * offer and stays live */
			expect("regs-status-garbage",
			       (f & F_VERSION_1) &&
				       !(v & (S_NEEDS_RESET | 0x30)) &&
				       (v & S_DRIVER_OK),
			       "Status 0x%x after 0xff and bit clears", v);
		}
	}
	recover("regs-status-garbage");

	/* config space: random writes everywhere (blk config is read-only
	 * but for writeback), reads of every width past its end */
	for (uint32_t off = R_CONFIG; off < 0x200; off++) {
		*(volatile uint8_t *)(mmio + off) = (uint8_t)rnd();
		(void)*(volatile uint8_t *)(mmio + off);
		if (!(off & 7))
			*(volatile uint64_t *)(mmio + off) = rnd();
	}
	v = rd(R_CONFIG); /* blk: capacity, low word; rng: no config */
	expect("regs-config-garbage", rd(R_MAGIC) == 0x74726976,
	       "config space written; config word 0: %u", v);
	recover("regs-config-garbage");
	printf("hostile: regs group %llu ms\n",
	       (unsigned long long)(now_ms() - t0));
}

/* ------------------------------------------------------------- chains */

enum expect_kind {
	E_REJECT, /* needs-reset, error status or completed without status */
	E_DEFINED, /* anything but no-response */
};

static void judge(const char *key, enum expect_kind k, enum outcome o,
		  const char *what)
{
	bool pass = o != O_NONE && (k == E_DEFINED || o != O_OK);

	if (pass)
		ok(key, "%s: %s (Status 0x%x)", what, oname(o), status());
	else
		bad(key, "%s: %s (Status 0x%x)", what, oname(o), status());
	recover(key);
}

/* Posts head 0 after the caller built descriptors, judges, recovers. */
static void run_chain(const char *key, enum expect_kind k, const char *what)
{
	enum outcome o;

	post(0);
	o = wait_done(0, 2000, NULL, NULL);
	judge(key, k, o, what);
}

static int fresh(uint64_t optional)
{
	const char *why = NULL;

	if (dev_init(optional, &why) < 0) {
		bad("chains-init", "%s", why);
		return -1;
	}
	return 0;
}

/* A transmit header the device cannot take (the frame is dropped and
 * its chain returned, or the device needs a reset), CASES times in a row
 * with random bytes where the caller's mask says; then the recovery. */
static void tx_headers(const char *key, int cases, const uint8_t mask[NET_HDR],
		       const uint8_t set[NET_HDR], const char *what)
{
	int back = 0, resets = 0;

	for (int i = 0; i < cases; i++) {
		uint8_t *h = (uint8_t *)hdr(0);
		enum outcome o;

		build_rw(0, 0, 0, 0, 64 + (uint32_t)(rnd() % 1400));
		for (int j = 0; j < NET_HDR; j++)
			h[j] = (uint8_t)((rnd() & mask[j]) | set[j]);
		post(0);
		o = wait_done(0, 2000, NULL, NULL);
		if (o == O_NONE) {
			bad(key, "%s: header %d of %d: no-response", what,
			    i + 1, cases);
			recover(key);
			return;
		}
		if (o == O_NEEDS_RESET) {
			resets++;
			if (fresh(0) < 0)
				return;
		} else {
			back++;
		}
	}
	ok(key, "%s: %d headers, %d frames returned, %d needs-reset", what,
	   cases, back, resets);
	recover(key);
}

/* A receive case: dev_init with an empty receive ring, the caller's
 * buffers posted, then what the device does with what L1 sends (frames
 * or console input every 20 ms; a socket device is made to send a
 * reset) within 2.5 s, as WANT says. */
enum rx_want {
	RX_RESET, /* the buffer is unusable: needs-reset, nothing written */
	RX_KEEP, /* too small for what comes: kept, nothing written */
	RX_FILL, /* usable (a console takes any size): used, within it */
};

static void rx_case(const char *key, enum rx_want want, const char *what,
		    void (*build)(void))
{
	const char *why = NULL;
	uint64_t t0;
	bool untouched = true, used = false;
	uint32_t v, blen, ulen;

	rx_manual = true;
	if (dev_init(0, &why) < 0) {
		bad(key, "init: %s", why);
		recover(key);
		return;
	}
	build();
	/* a socket device receives only what it has to say: data on a
	 * connection that does not exist makes it send a reset */
	if (dev_id == ID_VSOCK)
		vs_send_op(vs_port++, VS_NO_PORT, VS_RW, "x", 1);
	t0 = now_ms();
	while (now_ms() - t0 < 2500 && !(status() & S_NEEDS_RESET) &&
	       !(used = rx_used16()[1] != 0))
		nap_us(1000);
	v = status();
	blen = rx_dt()[0].len;
	ulen = *(volatile uint32_t *)(void *)(pg(P_RXUSED) + 8);
	if (want == RX_FILL) {
		/* what the device used of buffer 0, and nothing past it */
		for (uint32_t i = used && ulen <= blen ? ulen : 0;
		     i < 2 * RX_BUF; i++)
			untouched &= rx_buf(0)[i] == FILL;
		if (used && !(v & S_NEEDS_RESET) && ulen <= blen && untouched)
			ok(key,
			   "%s: used, %u of %u bytes, nothing past them "
			   "(Status 0x%x)",
			   what, ulen, blen, v);
		else
			bad(key,
			    "%s: Status 0x%x, used idx %u, %u of %u bytes, "
			    "%s",
			    what, v, rx_used16()[1], ulen, blen,
			    untouched ? "nothing past them" : "WRITTEN past");
		recover(key);
		return;
	}
	for (int i = 0; i < 2 * RX_BUF; i++)
		untouched &= rx_buf(0)[i] == FILL;
	if (want == RX_RESET ? (v & S_NEEDS_RESET) && !used && untouched :
			       !(v & S_NEEDS_RESET) && !used && untouched)
		ok(key, "%s: %s, buffer untouched (Status 0x%x)", what,
		   want == RX_RESET ? "needs-reset" : "kept, nothing written",
		   v);
	else
		bad(key, "%s: Status 0x%x, used idx %u, buffer %s", what, v,
		    rx_used16()[1], untouched ? "untouched" : "WRITTEN");
	recover(key);
}

/* descriptor 0 set up as its case wants, posted alone; buffers 0 and 1
 * (what a case's descriptors point at) filled */
static void rx_post_desc(struct desc d)
{
	memset(rx_buf(0), FILL, 2 * RX_BUF);
	rx_dt()[0] = d;
	rx_avail16()[2] = 0;
	atomic_thread_fence(memory_order_seq_cst);
	rx_avail16()[1] = ++rx_avail_idx;
	atomic_thread_fence(memory_order_seq_cst);
	wr(R_QUEUE_NOTIFY, rx_q());
}

static void rx_readonly(void)
{
	rx_post_desc((struct desc){ phys[P_RXBUF], RX_BUF, 0, 0 });
}

static void rx_beyond_ram(void)
{
	rx_post_desc((struct desc){ RAM_END_FAR, RX_BUF, D_WRITE, 0 });
}

static void rx_mmio_hole(void)
{
	rx_post_desc((struct desc){ 0xd0000000ull, RX_BUF, D_WRITE, 0 });
}

static void rx_lapic(void)
{
	rx_post_desc((struct desc){ 0xfee00000ull, RX_BUF, D_WRITE, 0 });
}

static void rx_zero(void)
{
	rx_post_desc((struct desc){ phys[P_RXBUF], 0, D_WRITE, 0 });
}

static void rx_loop(void)
{
	rx_post_desc((struct desc){ phys[P_RXBUF], 64, D_WRITE | D_NEXT, 0 });
}

static void rx_small(void)
{
	rx_post_desc((struct desc){ phys[P_RXBUF], 8, D_WRITE, 0 });
}

static void rx_read_then_write(void)
{
	rx_dt()[1] = (struct desc){ rx_pa(1), RX_BUF, D_WRITE, 0 };
	rx_post_desc((struct desc){ phys[P_RXBUF], 16, D_NEXT, 1 });
}

/* The network device's own protocol: transmit headers and frames it
 * must refuse, receive buffers it cannot use. */
static void chains_net(void)
{
	static const uint8_t all[NET_HDR] = { 0xff, 0xff, 0xff, 0xff,
					      0xff, 0xff, 0xff, 0xff,
					      0xff, 0xff, 0xff, 0xff };
	static const uint8_t none[NET_HDR] = { 0 };
	struct desc *d = dt();

	if (fresh(0) == 0) {
		build_rw(0, 0, 0, 0, 64);
		d[1].flags |= D_WRITE;
		run_chain("net-tx-writable", E_REJECT,
			  "transmit frame device-writable");
	}
	if (fresh(0) == 0) {
		build_rw(0, 0, 0, 0, 4);
		d[0].len = 4;
		run_chain("net-tx-short-header", E_DEFINED,
			  "9 bytes in all: less than a header");
	}
	if (fresh(0) == 0) {
		build_rw(0, 0, 0, 0, 1);
		run_chain("net-tx-short-frame", E_DEFINED,
			  "a 2-byte frame: less than an Ethernet header");
	}
	if (fresh(0) == 0) {
		build_rw(0, 0, 0, 0, 0x20000);
		run_chain("net-tx-huge-frame", E_DEFINED,
			  "a 128 KiB frame: more than 64 KiB + 18");
	}
	if (fresh(0) == 0) {
		uint8_t set[NET_HDR] = { NET_HDR_NEEDS_CSUM,
					 NET_GSO_TCPV4,
					 54,
					 0,
					 0xa8,
					 0x05,
					 34,
					 0,
					 16,
					 0 };

		tx_headers("net-tx-gso-not-negotiated", 1, none, set,
			   "TCPv4 GSO, HOST_TSO4 not negotiated");
	}
	if (fresh(1ull << NET_F_CSUM) == 0) {
		uint8_t set[NET_HDR] = {
			NET_HDR_NEEDS_CSUM, 0, 0, 0, 0, 0, 0x60, 0xea
		};

		tx_headers("net-tx-csum-outside", 1, none, set,
			   "checksum start 60000, beyond the frame");
	}
	if (fresh(0) == 0)
		tx_headers("net-tx-header-garbage", 64, all, none,
			   "random transmit headers");
	if (fresh(1ull << NET_F_CSUM) == 0)
		tx_headers("net-tx-header-garbage-csum", 64, all, none,
			   "random headers, CSUM negotiated");

	rx_case("net-rx-readonly", RX_RESET, "receive buffer device-readable",
		rx_readonly);
	rx_case("net-rx-read-then-write", RX_RESET,
		"receive chain of a readable, then a writable buffer",
		rx_read_then_write);
	rx_case("net-rx-beyond-ram", RX_RESET, "receive buffer at 4 TiB",
		rx_beyond_ram);
	rx_case("net-rx-mmio-hole", RX_RESET,
		"receive buffer on wisp's virtio-mmio window", rx_mmio_hole);
	rx_case("net-rx-lapic", RX_RESET, "receive buffer on the local APIC",
		rx_lapic);
	rx_case("net-rx-zero", RX_RESET, "0-byte receive buffer", rx_zero);
	rx_case("net-rx-loop", RX_RESET, "receive buffer next -> itself",
		rx_loop);
	rx_case("net-rx-small", RX_KEEP,
		"8-byte receive buffer, no MRG_RXBUF: frames dropped",
		rx_small);
}

/* A connection request with one field wrong (the header's byte offset
 * FIELD: 0 source CID, 8 destination CID, 20 destination port, 28 type):
 * never a connection; rst_required: a reset must come back to our port
 * within 1.5 s, else a reset or nothing. */
static void vs_bad_request(const char *key, const char *what, int field,
			   uint64_t value, bool rst_required)
{
	uint8_t h[VS_HDR];
	uint32_t p = vs_port++;
	uint16_t op = 0;
	const char *why = NULL;
	enum outcome o;
	int r;

	if (fresh(0) < 0)
		return;
	vs_hdr(h, p, field == 20 ? (uint32_t)value : VS_ECHO_PORT, 0,
	       VS_REQUEST);
	if (field == 0 || field == 8)
		memcpy(h + field, &value, 8);
	else if (field == 28)
		memcpy(h + 28, &value, 2);
	o = vs_send(h, NULL, 0);
	r = o == O_OK ? vs_recv(p, 1500, &op, NULL, NULL, &why) : -1;
	if (o != O_OK && o != O_NEEDS_RESET)
		bad(key, "%s: the request %s", what, oname(o));
	else if (o == O_NEEDS_RESET || r < 0)
		bad(key, "%s: %s", what, why ? why : "needs-reset");
	else if (r > 0 && op != VS_RST)
		bad(key, "%s: answered with op %u", what, op);
	else if (rst_required && r == 0)
		bad(key, "%s: no reset within 1.5 s", what);
	else
		ok(key, "%s: %s (Status 0x%x)", what, r ? "reset" : "no answer",
		   status());
	recover(key);
}

/* An open connection, then data whose header says LEN bytes while
 * fewer are there: the device must reset the connection, not pass on
 * what it does not have. */
static void vs_short_data(const char *key, uint32_t len, const char *what)
{
	uint8_t h[VS_HDR];
	const char *why = NULL;
	uint32_t p;
	uint16_t op = 0;
	int r;

	if (fresh(0) < 0)
		return;
	p = vs_connect(&why);
	if (!p) {
		bad(key, "connect: %s", why);
		recover(key);
		return;
	}
	vs_hdr(h, p, VS_ECHO_PORT, len, VS_RW);
	vs_send(h, VS_MSG, 16);
	do
		r = vs_recv(p, 3000, &op, NULL, NULL, &why);
	while (r > 0 && op != VS_RST && op != VS_RW);
	if (r > 0 && op == VS_RST)
		ok(key, "%s: the connection was reset", what);
	else
		bad(key, "%s: %s", what,
		    r < 0 ? why :
		    r	  ? "data was echoed" :
			    "no reset within 3 s");
	recover(key);
}

/* Random headers on the transmit queue, CASES of them; ours: with our
 * own addresses and L1's echo port (so they reach the connection logic),
 * else every byte random. What comes back is drained. */
static void vs_garbage(const char *key, int cases, bool ours)
{
	int back = 0, resets = 0, answers = 0;
	const char *why = NULL;

	for (int i = 0; i < cases; i++) {
		uint8_t h[VS_HDR];
		enum outcome o;
		uint32_t id, len;

		for (int j = 0; j < VS_HDR; j++)
			h[j] = (uint8_t)rnd();
		if (ours) {
			uint32_t r = (uint32_t)rnd();
			uint16_t type = VS_STREAM;

			vs_hdr(h, vs_port + (r & 7), VS_ECHO_PORT,
			       r >> 8 & 1 ? 64 : (uint32_t)rnd(),
			       (uint16_t)(r >> 9 & 7));
			memcpy(h + 28, &type, 2);
			put32(h + 32, (uint32_t)rnd() & 3); /* flags */
			put32(h + 36, (uint32_t)rnd()); /* buf_alloc */
			put32(h + 40, (uint32_t)rnd()); /* fwd_cnt */
		}
		o = vs_send(h, VS_MSG VS_MSG VS_MSG VS_MSG, 64);
		if (o == O_NONE) {
			bad(key, "header %d of %d: no-response", i + 1, cases);
			recover(key);
			return;
		}
		if (o == O_NEEDS_RESET) {
			resets++;
			if (fresh(0) < 0)
				return;
			continue;
		}
		back++;
		while (rx_next(0, &id, &len, &why) > 0) {
			answers++;
			rx_post((int)id);
		}
	}
	vs_port += 8;
	ok(key, "%d headers: %d returned, %d needs-reset, %d packets back",
	   cases, back, resets, answers);
	recover(key);
}

/* The socket device's own protocol. */
static void chains_vsock(void)
{
	struct desc *d = dt();

	if (fresh(0) == 0) {
		build_rw(0, 0, 0, 0, 64);
		d[1].flags |= D_WRITE;
		run_chain("vsock-tx-writable", E_REJECT,
			  "transmit payload device-writable");
	}
	if (fresh(0) == 0) {
		build_rw(0, 0, 0, 0, 4);
		d[0].len = 20;
		run_chain("vsock-tx-short-header", E_DEFINED,
			  "25 bytes in all: less than a header");
	}
	vs_garbage("vsock-header-garbage", 64, false);
	vs_garbage("vsock-header-garbage-ours", 64, true);
	vs_short_data("vsock-len-beyond", 60000,
		      "16 bytes of data, the header says 60000");
	vs_short_data("vsock-len-huge", 0xffffffffu,
		      "16 bytes of data, the header says 4 GiB - 1");
	vs_bad_request("vsock-spoof-src-cid", "a request from CID 77", 0, 77,
		       false);
	vs_bad_request("vsock-dst-not-host", "a request to CID 7", 8, 7, false);
	vs_bad_request("vsock-bad-type", "a request of type 2 (seqpacket)", 28,
		       2, false);
	vs_bad_request("vsock-refused", "a request to a port nobody serves", 20,
		       VS_NO_PORT, true);

	/* resets owed with nowhere to put them: the device must bound
	 * them, stay live and deliver some once it has buffers */
	rx_manual = true;
	if (fresh(0) == 0) {
		uint32_t id, len, n = 0;
		const char *why = NULL;
		uint64_t t0;

		for (int i = 0; i < 200; i++)
			vs_send_op(vs_port++, 9, VS_RW, "x", 1);
		for (int i = 0; i < RX_NBUF; i++)
			rx_post(i);
		t0 = now_ms();
		while (now_ms() - t0 < 1500) {
			int r = rx_next(200, &id, &len, &why);

			if (r < 0)
				break;
			if (r > 0) {
				n++;
				rx_post((int)id);
			}
		}
		if (!(status() & S_NEEDS_RESET) && n > 0)
			ok("vsock-rst-backlog",
			   "200 packets on no connection, no receive buffers: "
			   "%u resets delivered once there were, Status 0x%x",
			   n, status());
		else
			bad("vsock-rst-backlog", "%u resets, Status 0x%x (%s)",
			    n, status(), why ? why : "");
		recover("vsock-rst-backlog");
	}

	rx_case("vsock-rx-readonly", RX_RESET, "receive buffer device-readable",
		rx_readonly);
	rx_case("vsock-rx-beyond-ram", RX_RESET, "receive buffer at 4 TiB",
		rx_beyond_ram);
	rx_case("vsock-rx-zero", RX_RESET, "0-byte receive buffer", rx_zero);
	rx_case("vsock-rx-small", RX_RESET,
		"8-byte receive buffer: less than a header", rx_small);
	rx_case("vsock-rx-loop", RX_RESET, "receive buffer next -> itself",
		rx_loop);
}

static void rx_one_byte(void)
{
	rx_post_desc((struct desc){ phys[P_RXBUF], 1, D_WRITE, 0 });
}

/* The console's own cases: its transmit queue takes any readable bytes
 * and ignores writable ones, its receive queue any writable size. */
static void chains_console(void)
{
	struct desc *d = dt();

	if (fresh(0) == 0) {
		build_rw(0, 0, 0, 0, 64);
		d[2].flags |= D_WRITE;
		run_chain("console-tx-writable", E_DEFINED,
			  "output ending in a device-writable piece (ignored)");
	}
	if (fresh(0) == 0) {
		build_rw(0, 0, 0, 0, 64);
		d[1].flags |= D_WRITE;
		run_chain("console-tx-read-after-write", E_REJECT,
			  "a readable piece after a writable one");
	}
	if (fresh(0) == 0) {
		/* 16 pieces of 1 byte, the whole ring in one chain */
		*st(0) = '\n';
		for (int i = 0; i < QN; i++)
			d[i] = (struct desc){ st_pa(0), 1, D_NEXT,
					      (uint16_t)(i + 1) };
		d[QN - 1].flags = 0;
		run_chain("console-tx-fragments", E_DEFINED,
			  "16 one-byte pieces in one chain");
	}
	if (fresh(0) == 0) {
		/* emergency writes through config space (EMERG_WRITE) */
		for (int i = 0; i < 64; i++)
			wr(R_CONFIG + 8, (uint32_t)rnd());
		if (rd(R_MAGIC) == 0x74726976 && !(status() & S_NEEDS_RESET))
			ok("console-emerg-write",
			   "64 random emerg_wr writes, Status 0x%x", status());
		else
			bad("console-emerg-write", "Status 0x%x", status());
		recover("console-emerg-write");
	}
	rx_case("console-rx-readonly", RX_RESET,
		"receive buffer device-readable", rx_readonly);
	rx_case("console-rx-read-then-write", RX_RESET,
		"receive chain of a readable, then a writable buffer",
		rx_read_then_write);
	rx_case("console-rx-beyond-ram", RX_RESET, "receive buffer at 4 TiB",
		rx_beyond_ram);
	rx_case("console-rx-mmio-hole", RX_RESET,
		"receive buffer on wisp's virtio-mmio window", rx_mmio_hole);
	rx_case("console-rx-lapic", RX_RESET,
		"receive buffer on the local APIC", rx_lapic);
	rx_case("console-rx-loop", RX_RESET, "receive buffer next -> itself",
		rx_loop);
	rx_case("console-rx-zero", RX_FILL, "0-byte receive buffer", rx_zero);
	rx_case("console-rx-one-byte", RX_FILL, "1-byte receive buffer",
		rx_one_byte);
	rx_case("console-rx-small", RX_FILL, "8-byte receive buffer", rx_small);
}

/* The IOMMU's own protocol, one case per rule of 5.13.6: a fresh
 * device, the steps SETUP asks (an attach of our endpoint to domain 1,
 * a 4-page mapping in it), then REQ must get status WANT. */
enum { IO_SETUP_NONE, IO_SETUP_ATTACH, IO_SETUP_MAP };

static void io_case(const char *key, int setup, const uint8_t *req,
		    uint32_t len, uint32_t wlen, int want, const char *what)
{
	uint8_t q[IO_PROBE_LEN];
	uint32_t n;
	bool done = true;

	if (fresh(0) < 0)
		return;
	if (setup >= IO_SETUP_ATTACH) {
		n = io_attach(q, IO_ATTACH, 1, io_ep);
		done = io_expect(q, n, 0, IO_S_OK, "set-up ATTACH");
	}
	if (done && setup >= IO_SETUP_MAP) {
		n = io_map(q, 1, IO_IOVA, IO_IOVA + 4 * PAGE - 1,
			   phys[P_DATA + 3], IO_MAP_R | IO_MAP_W);
		done = io_expect(q, n, 0, IO_S_OK, "set-up MAP");
	}
	if (done && io_expect(req, len, wlen, want, what))
		ok(key, "%s: status %d (Status 0x%x)", what, want, status());
	else
		bad(key, "%s", io_why);
	recover(key);
}

/* Requests of one kind, BATCH at a time in slots 0..BATCH-1, until one
 * is refused or MAX went: MAPs of one page each (at consecutive IOVAs),
 * or ATTACHes of our endpoint to consecutive domains. The status of the
 * first refusal, or -1 (io_why) when the device did not answer. */
static int io_walk(bool map, uint32_t max, uint32_t *okays)
{
	struct desc *d = dt();
	uint32_t i = 0;

	*okays = 0;
	while (i < max) {
		int batch = max - i < 5 ? (int)(max - i) : 5;

		for (int s = 0; s < batch; s++) {
			uint8_t *h = (uint8_t *)hdr(s);
			uint64_t at = IO_IOVA + (uint64_t)(i + s) * PAGE;
			uint32_t n;

			if (map)
				n = io_map(h, 1, at, at + PAGE - 1,
					   phys[P_DATA + 3], IO_MAP_R);
			else
				n = io_attach(h, IO_ATTACH, i + (uint32_t)s,
					      io_ep);
			memset((void *)st(s), 0xff, 4);
			d[2 * s] = (struct desc){ hdr_pa(s), n, D_NEXT,
						  (uint16_t)(2 * s + 1) };
			d[2 * s + 1] = (struct desc){ st_pa(s), 4, D_WRITE, 0 };
			avail16()[2 + (avail_idx + s) % QN] = (uint16_t)(2 * s);
		}
		atomic_thread_fence(memory_order_seq_cst);
		avail_idx = (uint16_t)(avail_idx + batch);
		avail16()[1] = avail_idx;
		atomic_thread_fence(memory_order_seq_cst);
		wr(R_QUEUE_NOTIFY, tq);
		for (int s = 0; s < batch; s++) {
			uint32_t id = 0;
			enum outcome o = wait_done(-1, 5000, &id, NULL);

			if (o == O_NONE || o == O_NEEDS_RESET || id % 2 ||
			    id / 2 >= (uint32_t)batch) {
				snprintf(io_why, sizeof(io_why),
					 "request %u: %s, id %u", i + s,
					 oname(o), id);
				return -1;
			}
		}
		/* in order of the slots: the device may complete them in
		 * any order, the first refusal is the lowest one */
		for (int s = 0; s < batch; s++, i++) {
			if (*st(s) == 0xff) {
				snprintf(io_why, sizeof(io_why),
					 "request %u: no status", i);
				return -1;
			}
			if (*st(s) != IO_S_OK)
				return *st(s);
			(*okays)++;
		}
	}
	return IO_S_OK;
}

/* Random requests, CASES of them: half every byte random (the type
 * mostly one of the five), a random readable length (1-80) and writable
 * space (1-84, the tail included); half well-formed with random values
 * (domains 0-3, our endpoint or none, 1-4 pages in the first 64 KiB of
 * IOVA, any flags), so that maps, unmaps, attaches and detaches succeed
 * and meet each other. Each must come back with a status the spec
 * defines, or with nothing written when there was no room for a tail;
 * then the recovery. */
static void io_garbage(const char *key, int cases)
{
	struct desc *d = dt();
	uint8_t *r = pg(P_DATA + 1), *w = pg(P_DATA + 2);
	unsigned int seen[IO_S_MAX + 2] = { 0 };

	if (fresh(0) < 0)
		return;
	for (int i = 0; i < cases; i++) {
		/* no 0-byte buffer: that is the chain cases' */
		uint32_t len = 1 + (uint32_t)(rnd() % 80);
		uint32_t wl = 1 + (uint32_t)(rnd() % 84);
		uint32_t ulen = 0;
		enum outcome o;

		if (i % 2) {
			uint32_t dom = (uint32_t)(rnd() % 4);
			uint32_t ep = rnd() % 8 ? io_ep : IO_NO_EP;
			uint64_t a = IO_IOVA + (rnd() % 16) * PAGE;
			uint64_t last = a + (1 + rnd() % 4) * PAGE - 1;

			switch (rnd() % 5) {
			case 0:
				len = io_attach(r, IO_ATTACH, dom, ep);
				break;
			case 1:
				len = io_attach(r, IO_DETACH, dom, ep);
				break;
			case 2:
				len = io_map(r, dom, a, last, phys[P_DATA + 3],
					     (uint32_t)(rnd() % 8));
				break;
			case 3:
				len = io_unmap(r, dom, a, last);
				break;
			default:
				len = io_probe(r, ep);
				break;
			}
			wl = 4 + (r[0] == IO_PROBE ? io_probe_size : 0);
		} else {
			for (int j = 0; j < 80; j++)
				r[j] = (uint8_t)rnd();
			if (rnd() % 4)
				r[0] = (uint8_t)(1 + rnd() % 5);
		}
		memset(w, FILL, 96);
		d[0] = (struct desc){ phys[P_DATA + 1], len, D_NEXT, 1 };
		d[1] = (struct desc){ phys[P_DATA + 2], wl, D_WRITE, 0 };
		post(0);
		o = wait_done(-1, 5000, NULL, &ulen);
		if (o == O_NONE || o == O_NEEDS_RESET) {
			bad(key, "request %d (type %u, %u+%u bytes): %s", i,
			    r[0], len, wl, oname(o));
			recover(key);
			return;
		}
		if (wl < 4 ? ulen != 0 || w[0] != FILL :
			     ulen != wl || w[wl - 4] > IO_S_MAX) {
			bad(key,
			    "request %d (type %u, %u+%u bytes): used length "
			    "%u, status %u",
			    i, r[0], len, wl, ulen, wl < 4 ? w[0] : w[wl - 4]);
			recover(key);
			return;
		}
		seen[wl < 4 ? IO_S_MAX + 1 : w[wl - 4]]++;
	}
	ok(key,
	   "%d random requests: %u OK, %u UNSUPP, %u INVAL, %u RANGE, "
	   "%u NOENT, %u NOMEM, %u other, %u without room for a tail",
	   cases, seen[IO_S_OK], seen[IO_S_UNSUPP], seen[IO_S_INVAL],
	   seen[IO_S_RANGE], seen[IO_S_NOENT], seen[IO_S_NOMEM],
	   seen[1] + seen[3] + seen[7], seen[IO_S_MAX + 1]);
	recover(key);
}

static void chains_iommu(void)
{
	uint8_t q[IO_PROBE_LEN];
	uint64_t a = IO_IOVA;
	uint32_t n, okays;
	int st;

	n = io_attach(q, 0x77, 1, io_ep);
	io_case("iommu-bad-type", IO_SETUP_NONE, q, n, 0, IO_S_UNSUPP,
		"request type 0x77");
	n = io_attach(q, IO_ATTACH, 1, io_ep);
	io_case("iommu-short", IO_SETUP_NONE, q, 12, 0, IO_S_INVAL,
		"ATTACH 12 bytes long, not 20");
	io_case("iommu-head-only", IO_SETUP_NONE, q, 2, 0, IO_S_INVAL,
		"2 bytes: less than a request head");
	q[16] = 1;
	io_case("iommu-attach-reserved", IO_SETUP_NONE, q, n, 0, IO_S_INVAL,
		"ATTACH, reserved byte not zero");
	n = io_attach(q, IO_ATTACH, 1, io_ep);
	put32(q + 12, 0x80);
	io_case("iommu-attach-flags", IO_SETUP_NONE, q, n, 0, IO_S_INVAL,
		"ATTACH, unknown flag 0x80");
	put32(q + 12, 1);
	io_case("iommu-attach-bypass", IO_SETUP_NONE, q, n, 0, IO_S_INVAL,
		"ATTACH with BYPASS, BYPASS_CONFIG not negotiated");
	n = io_attach(q, IO_ATTACH, 1, IO_NO_EP);
	io_case("iommu-attach-noent", IO_SETUP_NONE, q, n, 0, IO_S_NOENT,
		"ATTACH of a missing endpoint");
	if (io_domain_end < 0xffffffffu) {
		n = io_attach(q, IO_ATTACH, io_domain_end + 1, io_ep);
		io_case("iommu-attach-domain-range", IO_SETUP_NONE, q, n, 0,
			IO_S_RANGE, "ATTACH to a domain past domain_range");
	} else {
		bad("iommu-attach-domain-range", "domain_range ends at 2^32-1");
	}
	n = io_attach(q, IO_DETACH, 1, io_ep);
	io_case("iommu-detach-unattached", IO_SETUP_NONE, q, n, 0, IO_S_INVAL,
		"DETACH of an endpoint not attached");
	n = io_attach(q, IO_DETACH, 2, io_ep);
	io_case("iommu-detach-other-domain", IO_SETUP_ATTACH, q, n, 0,
		IO_S_INVAL, "DETACH from a domain it is not in");
	n = io_map(q, 77, a, a + PAGE - 1, phys[P_DATA + 3], IO_MAP_R);
	io_case("iommu-map-no-domain", IO_SETUP_NONE, q, n, 0, IO_S_NOENT,
		"MAP in a domain that does not exist");
	n = io_map(q, 1, a + PAGE, a + PAGE - 1, phys[P_DATA + 3], IO_MAP_R);
	io_case("iommu-map-inverted", IO_SETUP_ATTACH, q, n, 0, IO_S_INVAL,
		"MAP with virt_end below virt_start");
	n = io_map(q, 1, a + 1, a + PAGE, phys[P_DATA + 3], IO_MAP_R);
	io_case("iommu-map-unaligned", IO_SETUP_ATTACH, q, n, 0, IO_S_RANGE,
		"MAP at an IOVA off the page granule");
	n = io_map(q, 1, io_input_end + 1, io_input_end + PAGE,
		   phys[P_DATA + 3], IO_MAP_R);
	io_case("iommu-map-beyond-input", IO_SETUP_ATTACH, q, n, 0, IO_S_RANGE,
		"MAP past input_range");
	n = io_map(q, 1, a, a + 2 * PAGE - 1, 0xfffffffffffff000ull, IO_MAP_R);
	io_case("iommu-map-phys-wrap", IO_SETUP_ATTACH, q, n, 0, IO_S_RANGE,
		"MAP whose physical range wraps 2^64");
	n = io_map(q, 1, a, a + PAGE - 1, phys[P_DATA + 3], 0x40);
	io_case("iommu-map-flags", IO_SETUP_ATTACH, q, n, 0, IO_S_INVAL,
		"MAP, unknown flag 0x40");
	n = io_map(q, 1, a, a + PAGE - 1, phys[P_DATA + 3], 4);
	io_case("iommu-map-mmio", IO_SETUP_ATTACH, q, n, 0, IO_S_INVAL,
		"MAP with MMIO, F_MMIO not negotiated");
	n = io_map(q, 1, a + 2 * PAGE, a + 5 * PAGE - 1, phys[P_DATA + 3],
		   IO_MAP_R);
	io_case("iommu-map-overlap", IO_SETUP_MAP, q, n, 0, IO_S_INVAL,
		"MAP half over a mapping");
	n = io_unmap(q, 1, a + PAGE, a + 2 * PAGE - 1);
	io_case("iommu-unmap-split", IO_SETUP_MAP, q, n, 0, IO_S_RANGE,
		"UNMAP of a mapping's middle page");
	n = io_unmap(q, 1, 0, io_input_end);
	io_case("iommu-unmap-all", IO_SETUP_MAP, q, n, 0, IO_S_OK,
		"UNMAP of the whole input range");
	n = io_unmap(q, 1, a, a + PAGE - 1);
	io_case("iommu-unmap-no-domain", IO_SETUP_NONE, q, n, 0, IO_S_NOENT,
		"UNMAP in a domain that does not exist");
	n = io_probe(q, IO_NO_EP);
	io_case("iommu-probe-noent", IO_SETUP_NONE, q, n, io_probe_size,
		IO_S_NOENT, "PROBE of a missing endpoint");
	n = io_probe(q, io_ep);
	io_case("iommu-probe-small", IO_SETUP_NONE, q, n, 8, IO_S_INVAL,
		"PROBE with 8 bytes for probe_size's properties");
	q[40] = 1;
	io_case("iommu-probe-reserved", IO_SETUP_NONE, q, n, io_probe_size,
		IO_S_INVAL, "PROBE, reserved byte not zero");

	/* no room for a tail: returned with nothing written */
	if (fresh(0) == 0) {
		struct desc *d = dt();
		uint8_t *w = pg(P_DATA + 2);
		uint32_t ulen = 1;
		enum outcome o;

		n = io_attach(pg(P_DATA + 1), IO_ATTACH, 1, io_ep);
		memset(w, FILL, 16);
		d[0] = (struct desc){ phys[P_DATA + 1], n, D_NEXT, 1 };
		d[1] = (struct desc){ phys[P_DATA + 2], 3, D_WRITE, 0 };
		post(0);
		o = wait_done(-1, 2000, NULL, &ulen);
		if (o == O_NOSTATUS && ulen == 0 && w[0] == FILL)
			ok("iommu-no-tail", "3 writable bytes: returned with "
					    "0 bytes, nothing written");
		else
			bad("iommu-no-tail",
			    "3 writable bytes: %s, used length %u, %s",
			    oname(o), ulen,
			    w[0] == FILL ? "nothing written" : "WRITTEN");
		recover("iommu-no-tail");
	}

	/* the per-domain mapping limit: one-page MAPs until NOMEM, then
	 * one UNMAP takes them all back and a MAP works again */
	if (fresh(0) == 0) {
		n = io_attach(q, IO_ATTACH, 1, io_ep);
		if (!io_expect(q, n, 0, IO_S_OK, "ATTACH")) {
			bad("iommu-map-quota", "%s", io_why);
		} else {
			st = io_walk(true, 70000, &okays);
			n = io_unmap(q, 1, 0, io_input_end);
			if (st != IO_S_NOMEM)
				bad("iommu-map-quota",
				    "after %u one-page MAPs: %s", okays,
				    st < 0 ? io_why : "not NOMEM");
			else if (!io_expect(q, n, 0, IO_S_OK, "UNMAP of all"))
				bad("iommu-map-quota", "%s", io_why);
			else
				ok("iommu-map-quota",
				   "%u one-page MAPs, then NOMEM; one UNMAP "
				   "took them all",
				   okays);
		}
		recover("iommu-map-quota");
	}
	/* our endpoint through every domain ID in turn: each ATTACH OK
	 * (the endpoint leaves the last domain, which is then empty) or
	 * NOMEM when empty domains are kept */
	if (fresh(0) == 0) {
		uint32_t max = io_domain_end < 4095 ? io_domain_end + 1 : 4096;

		st = io_walk(false, max, &okays);
		if (st == IO_S_OK || st == IO_S_NOMEM)
			ok("iommu-domain-walk",
			   "ATTACH to domains 0..%u: %u OK%s", max - 1, okays,
			   st == IO_S_NOMEM ? ", then NOMEM" : "");
		else
			bad("iommu-domain-walk", "after %u ATTACHes: %s", okays,
			    st < 0 ? io_why : "a status neither OK nor NOMEM");
		recover("iommu-domain-walk");
	}
	io_garbage("iommu-garbage", 512);
}

static void group_chains(void)
{
	struct desc *d = dt();
	uint64_t t0 = now_ms();
	bool blk = dev_id == ID_BLK;

	/* positive control: a well-formed read completes OK */
	if (fresh(0) == 0) {
		enum outcome o = do_rw(BLK_IN, 0, 0, PAGE);

		if (o == O_OK)
			ok("chain-control", "a well-formed 4 KiB %s: %s",
			   blk ? "read" : "request", oname(o));
		else
			bad("chain-control", "a well-formed 4 KiB %s: %s",
			    blk ? "read" : "request", oname(o));
	}

	if (fresh(0) == 0) {
		build_rw(0, BLK_IN, 0, 0, PAGE);
		d[0].next = 0;
		run_chain("chain-self-loop", E_REJECT, "header next -> itself");
	}
	if (fresh(0) == 0) {
		build_rw(0, BLK_IN, 0, 0, PAGE);
		d[2].flags |= D_NEXT;
		d[2].next = 0;
		run_chain("chain-loop", E_REJECT, "status next -> header");
	}
	if (fresh(0) == 0) {
		/* every descriptor of the ring in one chain, then back */
		build_rw(0, BLK_OUT, TEST_SECTOR, 0, 512);
		for (int i = 1; i < QN; i++)
			d[i] = (struct desc){ phys[P_DATA], 512, D_NEXT,
					      (uint16_t)((i + 1) % QN) };
		d[0].next = 1;
		run_chain("chain-longer-than-queue", E_REJECT,
			  "16 descriptors chained in a circle");
	}
	if (fresh(0) == 0) {
		build_rw(0, BLK_IN, 0, 0, PAGE);
		d[1].next = 0xffff;
		run_chain("chain-next-range", E_REJECT, "next = 0xffff");
	}
	if (fresh(0) == 0) {
		build_rw(0, BLK_IN, 0, 0, PAGE);
		avail16()[2] = QN + 5;
		avail16()[1] = ++avail_idx;
		wr(R_QUEUE_NOTIFY, tq);
		judge("chain-head-range", E_REJECT,
		      wait_done(0, 2000, NULL, NULL), "head index 21 of 16");
	}
	if (fresh(0) == 0) {
		build_rw(0, BLK_IN, 0, 0, PAGE);
		avail16()[2] = 0;
		avail_idx += QN + 7;
		avail16()[1] = avail_idx;
		wr(R_QUEUE_NOTIFY, tq);
		judge("chain-avail-jump", E_REJECT,
		      wait_done(0, 2000, NULL, NULL),
		      "avail idx jumps by 23 on a 16-entry ring");
	}

	/* out-of-range addresses in each buffer */
	{
		static const struct {
			const char *key;
			int which; /* 0 header, 1 data, 2 status */
			uint64_t addr;
			uint32_t len;
			const char *what;
		} oa[] = {
			{ "chain-hdr-beyond-ram", 0, RAM_END_FAR, 16,
			  "header at 4 TiB" },
			{ "chain-data-beyond-ram", 1, RAM_END_FAR, PAGE,
			  "data at 4 TiB" },
			{ "chain-data-wrap", 1, 0xfffffffffffff000ull, 0x2000,
			  "data wraps 2^64" },
			{ "chain-data-mmio-hole", 1, 0xd0000000ull, PAGE,
			  "data on wisp's own virtio-mmio window" },
			{ "chain-data-lapic", 1, 0xfee00000ull, PAGE,
			  "data on the local APIC" },
			{ "chain-data-huge", 1, 0x1000, 0xffffffffu,
			  "data 4 GiB - 1 long" },
			{ "chain-status-beyond-ram", 2, RAM_END_FAR, 1,
			  "status at 4 TiB" },
		};

		for (size_t i = 0; i < sizeof(oa) / sizeof(oa[0]); i++) {
			if (fresh(0) < 0)
				continue;
			/* a block write request: the device never writes
			 * the guest's RAM for the data, whatever it
			 * accepts; an entropy request must be refused
			 * whole, with nothing written */
			build_rw(0, BLK_OUT, TEST_SECTOR, 0, PAGE);
			d[oa[i].which].addr = oa[i].addr;
			d[oa[i].which].len = oa[i].len;
			run_chain(oa[i].key, E_REJECT, oa[i].what);
		}
	}

	/* zero-length buffers and wrong direction flags */
	if (fresh(0) == 0) {
		build_rw(0, BLK_IN, TEST_SECTOR, 0, 0);
		run_chain("chain-zero-data", E_DEFINED, "0-byte data buffer");
	}
	/* an entropy request's buffers are all alike: a 0-byte one is
	 * valid, and the rest of this block is the block protocol's */
	if (fresh(0) == 0) {
		build_rw(0, BLK_IN, TEST_SECTOR, 0, PAGE);
		d[0].len = 0;
		run_chain("chain-zero-header", blk ? E_REJECT : E_DEFINED,
			  blk ? "0-byte header" : "0-byte first buffer");
	}
	if (fresh(0) == 0) {
		build_rw(0, BLK_IN, TEST_SECTOR, 0, PAGE);
		d[2].len = 0;
		run_chain("chain-zero-status", blk ? E_REJECT : E_DEFINED,
			  blk ? "0-byte status" : "0-byte last buffer");
	}
	if (blk && fresh(0) == 0) {
		build_rw(0, BLK_IN, TEST_SECTOR, 0, PAGE);
		d[0].flags |= D_WRITE;
		run_chain("chain-hdr-writable", E_REJECT,
			  "header device-writable");
	}
	if (!has_rxq() && fresh(0) == 0) {
		build_rw(0, BLK_IN, TEST_SECTOR, 0, PAGE);
		d[2].flags &= (uint16_t)~D_WRITE;
		run_chain("chain-status-readonly", blk ? E_REJECT : E_DEFINED,
			  "last buffer device-readable after a writable one");
	}
	if (!has_rxq() && fresh(0) == 0) {
		/* a read whose data buffer is device-readable: the device
		 * must not write it */
		uint8_t *p = pg(P_DATA);

		memset(p, 0xa5, PAGE);
		build_rw(0, BLK_IN, 0, 0, PAGE);
		d[1].flags &= (uint16_t)~D_WRITE;
		post(0);
		{
			enum outcome o = wait_done(0, 2000, NULL, NULL);
			bool intact = true;

			for (int i = 0; i < PAGE; i++)
				intact &= p[i] == 0xa5;
			/* a 0-byte read may complete OK; nothing may
			 * land in the buffer either way */
			if (o != O_NONE && intact)
				ok("chain-read-into-readonly",
				   "%s, buffer untouched", oname(o));
			else
				bad("chain-read-into-readonly", "%s, buffer %s",
				    oname(o), intact ? "untouched" : "WRITTEN");
			recover("chain-read-into-readonly");
		}
	}
	if (blk && fresh(0) == 0) {
		build_rw(0, BLK_OUT, TEST_SECTOR, 0, PAGE);
		d[1].flags |= D_WRITE;
		run_chain("chain-write-from-writable", E_DEFINED,
			  "write request, data device-writable");
	}
	if (fresh(0) == 0) {
		/* the same head twice in a row: once in flight, once again */
		build_rw(0, BLK_IN, 0, 0, PAGE);
		avail16()[2] = 0;
		avail16()[3] = 0;
		avail_idx += 2;
		avail16()[1] = avail_idx;
		wr(R_QUEUE_NOTIFY, tq);
		judge("chain-head-twice", E_DEFINED,
		      wait_done(0, 2000, NULL, NULL), "head 0 posted twice");
	}
	if (fresh(F_EVENT_IDX) == 0) {
		/* EVENT_IDX with garbage in used_event and the avail flags:
		 * only interrupts may change, the requests must still be
		 * served (this driver polls the used ring) */
		const char *why = NULL;

		if (!(negotiated & F_EVENT_IDX)) {
			bad("chain-event-idx-garbage", "EVENT_IDX not offered");
		} else {
			avail16()[0] = 0xffff;
			avail16()[2 + QN] = (uint16_t)rnd();
			if (verify_io(&why) < 0)
				bad("chain-event-idx-garbage", "%s", why);
			else
				ok("chain-event-idx-garbage",
				   "used_event 0x%x, avail flags 0xffff: "
				   "%s served",
				   avail16()[2 + QN],
				   blk ? "write+read" : "request");
		}
		recover("chain-event-idx-garbage");
	}
	if (blk && fresh(0) == 0) {
		build_rw(0, BLK_IN, (uint64_t)1 << 62, 0, PAGE);
		run_chain("chain-sector-range", E_REJECT, "sector 2^62");
	}
	if (blk && fresh(0) == 0) {
		build_rw(0, 0x7777, 0, 0, PAGE);
		run_chain("chain-bad-type", E_REJECT, "request type 0x7777");
	}
	if (dev_id == ID_NET)
		chains_net();
	if (dev_id == ID_VSOCK)
		chains_vsock();
	if (dev_id == ID_CONSOLE)
		chains_console();
	if (dev_id == ID_IOMMU)
		chains_iommu();
	printf("hostile: chains group %llu ms\n",
	       (unsigned long long)(now_ms() - t0));
}

/* ----------------------------------------------------------- indirect */

static void group_indirect(void)
{
	struct desc *d = dt();
	struct desc *ind = (struct desc *)(void *)pg(P_IND);
	uint64_t t0 = now_ms();
	const char *why = NULL;

	if (dev_init(F_INDIRECT, &why) < 0) {
		bad("indirect-init", "%s", why);
		return;
	}
	if (!(negotiated & F_INDIRECT)) {
		bad("indirect-init", "INDIRECT_DESC not offered");
		return;
	}

	/* positive control: the request in an indirect table */
	{
		enum outcome o;

		build_rw(0, BLK_IN, 0, 0, PAGE);
		memcpy(ind, d, 3 * sizeof(*d));
		ind[0].next = 1;
		ind[1].next = 2;
		d[0] = (struct desc){ phys[P_IND], 48, D_INDIRECT, 0 };
		post(0);
		o = wait_done(0, 3000, NULL, NULL);
		if (o == O_OK)
			ok("indirect-control", "3-entry table: %s", oname(o));
		else
			bad("indirect-control", "3-entry table: %s", oname(o));
	}

#define IND_CASE(key, kind, what, body)                                    \
	do {                                                               \
		if (fresh(F_INDIRECT) == 0) {                              \
			build_rw(0, BLK_IN, 0, 0, PAGE);                   \
			memcpy(ind, d, 3 * sizeof(*d));                    \
			ind[0].next = 1;                                   \
			ind[1].next = 2;                                   \
			d[0] = (struct desc){ phys[P_IND], 48, D_INDIRECT, \
					      0 };                         \
			body;                                              \
			run_chain(key, kind, what);                        \
		}                                                          \
	} while (0)

	IND_CASE("indirect-self", E_REJECT, "descriptor table is its own table",
		 (d[0].addr = phys[P_DESC], d[0].len = 16 * QN));
	IND_CASE("indirect-nested", E_REJECT, "indirect inside indirect",
		 (ind[1] = (struct desc){ phys[P_IND], 48, D_INDIRECT | D_NEXT,
					  2 }));
	IND_CASE("indirect-loop", E_REJECT, "table entry 2 next -> 0",
		 (ind[2].flags |= D_NEXT, ind[2].next = 0));
	IND_CASE("indirect-next-range", E_REJECT, "table next = 200",
		 (ind[1].next = 200));
	IND_CASE("indirect-len-odd", E_REJECT, "table length 47",
		 (d[0].len = 47));
	IND_CASE("indirect-len-0", E_REJECT, "table length 0", (d[0].len = 0));
	IND_CASE("indirect-huge", E_REJECT, "table of 2^28 entries",
		 (d[0].len = 0xfffffff0u));
	IND_CASE("indirect-beyond-ram", E_REJECT, "table at 4 TiB",
		 (d[0].addr = RAM_END_FAR));
	IND_CASE("indirect-with-next", E_REJECT, "INDIRECT | NEXT",
		 (d[0].flags |= D_NEXT, d[0].next = 1));
	IND_CASE("indirect-full-loop", E_REJECT, "256-entry table, a circle", ({
			 for (int i = 0; i < 256; i++)
				 ind[i] = (struct desc){
					 phys[P_DATA], 16, D_NEXT | D_WRITE,
					 (uint16_t)((i + 1) % 256)
				 };
			 ind[0] = (struct desc){ hdr_pa(0), 16, D_NEXT, 1 };
			 d[0].len = 256 * 16;
		 }));
	/* indirect without having negotiated it */
	if (fresh(0) == 0) {
		build_rw(0, BLK_IN, 0, 0, PAGE);
		memcpy(ind, d, 3 * sizeof(*d));
		ind[0].next = 1;
		ind[1].next = 2;
		d[0] = (struct desc){ phys[P_IND], 48, D_INDIRECT, 0 };
		run_chain("indirect-not-negotiated", E_REJECT,
			  "INDIRECT_DESC not negotiated");
	}
	printf("hostile: indirect group %llu ms\n",
	       (unsigned long long)(now_ms() - t0));
}

/* -------------------------------------------------------------- races */

static atomic_bool stop_threads;
static atomic_ulong counts[8];

struct worker {
	pthread_t th;
	int cpu;
	int role;
	int idx;
};

static void pin(int cpu)
{
	cpu_set_t s;

	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	sched_setaffinity(0, sizeof(s), &s);
}

enum { W_SUBMIT, W_RESET, W_QREADY, W_NOTIFY_VALID, W_NOTIFY_INVALID };

/* Submits requests on slots 1..4 without waiting for completions (the
 * ring indices race with resets on purpose). */
static void submit_loop(struct worker *w)
{
	uint16_t idx = 0;

	while (!atomic_load(&stop_threads)) {
		for (int s = 1; s <= 4; s++) {
			build_rw(s, (rnd() & 1) ? BLK_IN : BLK_OUT,
				 TEST_SECTOR + 8 * (uint64_t)s, s, PAGE);
			avail16()[2 + idx % QN] = (uint16_t)(3 * s);
			idx++;
			atomic_thread_fence(memory_order_seq_cst);
			avail16()[1] = idx;
			wr(R_QUEUE_NOTIFY, tq);
		}
		atomic_fetch_add(&counts[w->idx], 4);
		/* the used ring is reset underneath: resync with it */
		idx = used16()[1] > idx ? used16()[1] : idx;
	}
}

/* A full re-initialisation while requests are in flight. */
static void reset_loop(struct worker *w)
{
	while (!atomic_load(&stop_threads)) {
		wr(R_STATUS, 0);
		wr(R_STATUS, S_ACK | S_DRIVER);
		set_driver_features(F_VERSION_1);
		wr(R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
		wr(R_QUEUE_SEL, tq);
		wr(R_QUEUE_NUM, QN);
		set_queue_addrs(phys[P_DESC], phys[P_AVAIL], phys[P_USED]);
		wr(R_QUEUE_READY, 1);
		wr(R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
		atomic_fetch_add(&counts[w->idx], 1);
		nap_us(2000);
	}
}

static void qready_loop(struct worker *w)
{
	while (!atomic_load(&stop_threads)) {
		wr(R_QUEUE_SEL, tq);
		wr(R_QUEUE_READY, 0);
		wr(R_QUEUE_READY, 1);
		atomic_fetch_add(&counts[w->idx], 1);
		nap_us(500);
	}
}

static void notify_loop(struct worker *w, bool valid)
{
	static const uint32_t bad_q[] = { 1,	      2,	  15,
					  16,	      0xffff,	  0x10000,
					  0x7fffffff, 0xffffffffu };
	unsigned long n = 0;

	while (!atomic_load(&stop_threads)) {
		uint32_t q = bad_q[n % 8];

		/* a network device's transmit queue is 1: 3 is not one */
		wr(R_QUEUE_NOTIFY, valid ? tq : q == tq ? 3 : q);
		n++;
		if (!(n & 255))
			atomic_fetch_add(&counts[w->idx], 256);
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	pin(w->cpu);
	switch (w->role) {
	case W_SUBMIT:
		submit_loop(w);
		break;
	case W_RESET:
		reset_loop(w);
		break;
	case W_QREADY:
		qready_loop(w);
		break;
	case W_NOTIFY_VALID:
		notify_loop(w, true);
		break;
	default:
		notify_loop(w, false);
		break;
	}
	return NULL;
}

static int ncpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > 4 ? 4 : (int)n;
}

static void run_workers(const int *roles, int n, int seconds)
{
	struct worker w[8];
	int cpus = ncpus();

	atomic_store(&stop_threads, false);
	for (int i = 0; i < n; i++) {
		atomic_store(&counts[i], 0);
		w[i] = (struct worker){ .cpu = i % cpus,
					.role = roles[i],
					.idx = i };
		if (pthread_create(&w[i].th, NULL, worker_main, &w[i])) {
			fprintf(stderr, "hostile: pthread_create failed\n");
			exit(2);
		}
	}
	sleep((unsigned int)seconds);
	atomic_store(&stop_threads, true);
	for (int i = 0; i < n; i++)
		pthread_join(w[i].th, NULL);
}

/* Requests completed after a reset must not show up in the new rings. */
static void check_clean_after(const char *key)
{
	char k[96];
	const char *why = NULL;
	uint32_t id = 0;
	enum outcome o;

	snprintf(k, sizeof(k), "%s-clean", key);
	if (dev_init(0, &why) < 0) {
		bad(k, "re-init: %s (Status 0x%x)", why, status());
		return;
	}
	nap_us(300000); /* anything stale from the old rings lands now */
	if (used16()[1] != 0) {
		bad(k, "used idx %u on fresh rings before any request",
		    used16()[1]);
		return;
	}
	build_rw(0, BLK_IN, 0, 0, PAGE);
	post(0);
	o = wait_done(0, 5000, &id, NULL);
	if (o != O_OK || id != 0 || used16()[1] != 1)
		bad(k, "first request: %s, id %u, used idx %u", oname(o), id,
		    used16()[1]);
	else
		ok(k, "fresh rings: exactly our one request completed");
}

static void group_races(int seconds)
{
	int cpus = ncpus();
	uint64_t t0 = now_ms();
	const char *why = NULL;

	printf("hostile: %d CPUs online, %d s per race\n", cpus, seconds);
	if (cpus < 2)
		bad("race-cpus", "only %d CPU online", cpus);
	else
		ok("race-cpus", "%d CPUs", cpus);

	/* resets against in-flight requests */
	if (dev_init(0, &why) < 0) {
		bad("race-reset", "init: %s", why);
	} else {
		static const int roles[] = { W_SUBMIT, W_RESET, W_SUBMIT,
					     W_NOTIFY_VALID };
		int n = cpus < 4 ? cpus : 4;

		run_workers(roles, n < 2 ? 2 : n, seconds);
		ok("race-reset", "%lu requests posted, %lu re-inits",
		   atomic_load(&counts[0]) + atomic_load(&counts[2]),
		   atomic_load(&counts[1]));
		check_clean_after("race-reset");
		recover("race-reset");
	}

	/* QueueReady=0/1 against in-flight requests */
	if (dev_init(0, &why) < 0) {
		bad("race-qready", "init: %s", why);
	} else {
		static const int roles[] = { W_SUBMIT, W_QREADY, W_SUBMIT,
					     W_QREADY };
		int n = cpus < 4 ? cpus : 4;

		run_workers(roles, n < 2 ? 2 : n, seconds);
		ok("race-qready", "%lu requests posted, %lu QueueReady flips",
		   atomic_load(&counts[0]) + atomic_load(&counts[2]),
		   atomic_load(&counts[1]) + atomic_load(&counts[3]));
		check_clean_after("race-qready");
		recover("race-qready");
	}
	printf("hostile: races group %llu ms\n",
	       (unsigned long long)(now_ms() - t0));
}

/* Doorbell floods from the other CPUs while this one does real I/O. */
static void group_flood(int seconds)
{
	static const int roles[] = { W_NOTIFY_VALID, W_NOTIFY_INVALID,
				     W_NOTIFY_INVALID };
	int cpus = ncpus(), n = cpus - 1 < 3 ? cpus - 1 : 3;
	struct worker w[3];
	const char *why = NULL;
	uint64_t t0 = now_ms(), ios = 0;
	int io_fail = 0;

	if (n < 1)
		n = 1;
	if (dev_init(0, &why) < 0) {
		bad("flood", "init: %s", why);
		return;
	}
	atomic_store(&stop_threads, false);
	for (int i = 0; i < n; i++) {
		atomic_store(&counts[i], 0);
		w[i] = (struct worker){ .cpu = (i + 1) % cpus,
					.role = roles[i],
					.idx = i };
		if (pthread_create(&w[i].th, NULL, worker_main, &w[i]))
			exit(2);
	}
	pin(0);
	while (now_ms() - t0 < (uint64_t)seconds * 1000) {
		if (verify_io(&why) < 0) {
			io_fail++;
			break;
		}
		ios++;
	}
	atomic_store(&stop_threads, true);
	for (int i = 0; i < n; i++)
		pthread_join(w[i].th, NULL);
	{
		unsigned long kicks = 0;

		for (int i = 0; i < n; i++)
			kicks += atomic_load(&counts[i]);
		if (!io_fail && ios > 0)
			ok("flood",
			   "%llu verified %s during "
			   "%lu+ doorbells from %d CPUs (valid and "
			   "invalid queues)",
			   (unsigned long long)ios,
			   dev_id == ID_RNG	? "entropy requests" :
			   dev_id == ID_NET	? "frames each way" :
			   dev_id == ID_VSOCK	? "echoed connections" :
			   dev_id == ID_CONSOLE ? "lines each way" :
			   dev_id == ID_IOMMU	? "protocol round trips" :
						  "write+read pairs",
			   kicks, n);
		else
			bad("flood",
			    "I/O during the flood: %s after %llu "
			    "pairs (%lu doorbells)",
			    why ? why : "none done", (unsigned long long)ios,
			    kicks);
	}
	recover("flood");
}

/* An IOMMU's endpoint and limits: the first virtio-mmio endpoint node
 * (type 2) of ACPI's VIOT (its layout: ACPI 6.4, 5.2.32), and the
 * device's config (5.13.4). */
/* ------------------------------------------ an endpoint through IOVAs */

/* The IOMMU's endpoint (the first of VIOT, an entropy device no driver
 * uses) driven at the same time: its rings and buffers at IOVAs this
 * program maps through the IOMMU, so the device's DMA goes through
 * translation, and what it may not do comes back as fault records on
 * the IOMMU's event queue (virtio 1.2, 5.13.6.9). */
static volatile uint8_t *ep_mmio;
static uint64_t io_ep_base;
static uint16_t ep_avail_idx, ep_used_seen;

#define EP_IOVA 0x40000000ull
#define EP_DESC_IOVA EP_IOVA
#define EP_AVAIL_IOVA (EP_IOVA + 0x1000)
#define EP_USED_IOVA (EP_IOVA + 0x2000)
#define EP_BUF_IOVA (EP_IOVA + 0x10000) /* the next page is not mapped */
#define EP_HOLE_IOVA (EP_IOVA + 0x100000) /* nor the 80 pages from here */
#define EP_RO_IOVA (EP_IOVA + 0x30000)
#define EP_LEN 256
#define FAULT_R_DOMAIN 1
#define FAULT_R_MAPPING 2
#define FAULT_F_READ 1
#define FAULT_F_WRITE 2
#define FAULT_F_ADDRESS 0x100
#define FAULT_LEN 24

static uint32_t ep_rd(uint32_t off)
{
	return *(volatile uint32_t *)(ep_mmio + off);
}

static void ep_wr(uint32_t off, uint32_t v)
{
	*(volatile uint32_t *)(ep_mmio + off) = v;
}

static int ep_reset(void)
{
	return reset_window(ep_mmio);
}

/* The endpoint initialised with its queue at our IOVAs: 0 live, 1 when
 * it refused the rings (QueueReady not taken, or NEEDS_RESET), -1 with
 * *why for anything else. */
static int ep_init(const char **why)
{
	memset(pg(P_EP_DESC), 0, PAGE);
	memset(pg(P_EP_AVAIL), 0, PAGE);
	memset(pg(P_EP_USED), 0, PAGE);
	ep_avail_idx = ep_used_seen = 0;
	if (ep_reset() < 0) {
		*why = "endpoint: Status does not read 0 after a reset";
		return -1;
	}
	if (ep_rd(R_MAGIC) != 0x74726976 || ep_rd(R_DEVICE_ID) != ID_RNG) {
		*why = "endpoint: not a virtio-rng";
		return -1;
	}
	ep_wr(R_STATUS, S_ACK);
	ep_wr(R_STATUS, S_ACK | S_DRIVER);
	/* VERSION_1 and ACCESS_PLATFORM (bit 33): a device behind an
	 * IOMMU offers it and must not be driven without it */
	ep_wr(R_DEV_FEAT_SEL, 1);
	if ((ep_rd(R_DEV_FEAT) & 3) != 3) {
		*why = "endpoint: VERSION_1 or ACCESS_PLATFORM not offered";
		return -1;
	}
	ep_wr(R_DRV_FEAT_SEL, 0);
	ep_wr(R_DRV_FEAT, 0);
	ep_wr(R_DRV_FEAT_SEL, 1);
	ep_wr(R_DRV_FEAT, 3);
	ep_wr(R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	if (!(ep_rd(R_STATUS) & S_FEATURES_OK)) {
		*why = "endpoint: FEATURES_OK refused";
		return -1;
	}
	ep_wr(R_QUEUE_SEL, 0);
	ep_wr(R_QUEUE_NUM, QN);
	set_addrs_in(ep_mmio, EP_DESC_IOVA, EP_AVAIL_IOVA, EP_USED_IOVA);
	ep_wr(R_QUEUE_READY, 1);
	if ((ep_rd(R_STATUS) & S_NEEDS_RESET) || ep_rd(R_QUEUE_READY) != 1)
		return 1;
	ep_wr(R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	if (ep_rd(R_STATUS) & (S_NEEDS_RESET | S_FAILED))
		return 1;
	return 0;
}

/* One entropy request, a device-writable buffer of len bytes at iova:
 * O_OK (*ulen bytes), O_ERR (returned with 0 bytes), O_NEEDS_RESET or
 * O_NONE (nothing in 3 s). */
static enum outcome ep_get(uint64_t iova, uint32_t len, uint32_t *ulen)
{
	struct desc *d = (struct desc *)(void *)pg(P_EP_DESC);
	volatile uint16_t *av = (volatile uint16_t *)(void *)pg(P_EP_AVAIL);
	volatile uint16_t *us = (volatile uint16_t *)(void *)pg(P_EP_USED);
	uint16_t head = ep_avail_idx % QN;
	uint64_t t0 = now_ms();

	d[head] = (struct desc){ iova, len, D_WRITE, 0 };
	av[2 + head] = head;
	atomic_thread_fence(memory_order_seq_cst);
	av[1] = ++ep_avail_idx;
	atomic_thread_fence(memory_order_seq_cst);
	ep_wr(R_QUEUE_NOTIFY, 0);
	for (;;) {
		if (us[1] != ep_used_seen) {
			volatile uint32_t *e =
				(volatile uint32_t *)(void *)(pg(P_EP_USED) +
							      4 +
							      8 * (ep_used_seen %
								   QN));

			*ulen = e[1];
			ep_used_seen++;
			ep_wr(R_INT_ACK, ep_rd(R_INT_STATUS));
			return *ulen ? O_OK : O_ERR;
		}
		if (ep_rd(R_STATUS) & S_NEEDS_RESET)
			return O_NEEDS_RESET;
		if (now_ms() - t0 > 3000)
			return O_NONE;
		nap_us(200);
	}
}

static bool untouched(int page, uint32_t from, uint32_t to)
{
	for (uint32_t i = from; i < to; i++)
		if (pg(page)[i] != FILL)
			return false;
	return true;
}

static bool io_ok(uint8_t *q, uint32_t n, const char *what)
{
	return io_expect(q, n, 0, IO_S_OK, what);
}

static bool ep_map(uint64_t iova, uint64_t pa, uint32_t flags)
{
	uint8_t q[IO_PROBE_LEN];

	return io_ok(q, io_map(q, 1, iova, iova + PAGE - 1, pa, flags), "MAP");
}

static bool ep_unmap(uint64_t iova)
{
	uint8_t q[IO_PROBE_LEN];

	return io_ok(q, io_unmap(q, 1, iova, iova + PAGE - 1), "UNMAP");
}

/* A fresh IOMMU (event queue with RX_NBUF buffers unless rx_manual),
 * the endpoint attached to domain 1 with its rings (read-write) and
 * EP_BUF_IOVA (write-only) mapped, and the endpoint live. 0, or -1 with
 * the case reported bad. */
static int ep_fresh(const char *key)
{
	uint8_t q[IO_PROBE_LEN];
	const char *why = io_why;
	int r;

	evq_on = true;
	if (ep_reset() < 0) {
		bad(key, "endpoint: Status does not read 0 after a reset");
		return -1;
	}
	if (dev_init(0, &why) < 0) {
		bad(key, "IOMMU setup: %s", why);
		return -1;
	}
	why = io_why;
	if (!io_ok(q, io_attach(q, IO_ATTACH, 1, io_ep), "ATTACH") ||
	    !ep_map(EP_DESC_IOVA, phys[P_EP_DESC], IO_MAP_R | IO_MAP_W) ||
	    !ep_map(EP_AVAIL_IOVA, phys[P_EP_AVAIL], IO_MAP_R | IO_MAP_W) ||
	    !ep_map(EP_USED_IOVA, phys[P_EP_USED], IO_MAP_R | IO_MAP_W) ||
	    !ep_map(EP_BUF_IOVA, phys[P_EP_BUF], IO_MAP_W)) {
		bad(key, "domain setup: %s", io_why);
		return -1;
	}
	r = ep_init(&why);
	if (r) {
		bad(key, "endpoint setup: %s",
		    r < 0 ? why : "rings refused at mapped IOVAs");
		return -1;
	}
	return 0;
}

struct fault {
	uint8_t reason;
	uint32_t flags, ep, len;
	uint64_t addr;
};

/* The next record on the event queue within ms: 1, 0 when none came,
 * -1 (*why). Its buffer goes back to the device. */
static int ev_next(int ms, struct fault *f, const char **why)
{
	uint32_t id, len;
	uint8_t *b;
	int r = rx_next(ms, &id, &len, why);

	if (r <= 0)
		return r;
	b = rx_buf((int)id);
	f->reason = b[0];
	memcpy(&f->flags, b + 4, 4);
	memcpy(&f->ep, b + 8, 4);
	memcpy(&f->addr, b + 16, 8);
	f->len = len;
	for (int i = FAULT_LEN; i < RX_BUF; i++)
		if (b[i] != FILL) {
			*why = "fault record: bytes written past its 24";
			return -1;
		}
	rx_post((int)id);
	return 1;
}

/* The next record must be this fault of our endpoint (the address only
 * when flags has ADDRESS, then within [lo, hi]); m says what came. */
static bool ev_expect(uint8_t reason, uint32_t flags, uint64_t lo, uint64_t hi,
		      char *m, size_t n)
{
	struct fault f;
	const char *why = NULL;
	int r = ev_next(3000, &f, &why);

	if (r <= 0) {
		snprintf(m, n, "%s", r < 0 ? why : "no fault record in 3 s");
		return false;
	}
	snprintf(m, n,
		 "fault record of %u bytes: reason %u, flags 0x%x, endpoint "
		 "%u, address 0x%llx",
		 f.len, f.reason, f.flags, f.ep, (unsigned long long)f.addr);
	return f.len == FAULT_LEN && f.reason == reason && f.flags == flags &&
	       f.ep == io_ep &&
	       (!(flags & FAULT_F_ADDRESS) || (f.addr >= lo && f.addr <= hi));
}

/* No record within ms: a case that must not fault. */
static bool ev_none(int ms, char *m, size_t n)
{
	struct fault f;
	const char *why = NULL;
	int r = ev_next(ms, &f, &why);

	if (r < 0)
		snprintf(m, n, "%s", why);
	else if (r > 0)
		snprintf(m, n,
			 "unexpected fault record: reason %u, address "
			 "0x%llx",
			 f.reason, (unsigned long long)f.addr);
	return r == 0;
}

/* After a case: the endpoint reset, the IOMMU re-initialised (every
 * domain gone) and its round trip done. */
static void ep_recover(const char *key)
{
	ep_reset();
	evq_on = false;
	rx_manual = false;
	recover(key);
	evq_on = true;
}

/* A request into the write-only buffer page: random bytes within its
 * first EP_LEN, the rest of the page untouched. */
static bool ep_served(int page, uint64_t iova, char *m, size_t n)
{
	uint32_t len = 0;
	enum outcome o;
	bool changed = false;

	memset(pg(page), FILL, PAGE);
	o = ep_get(iova, EP_LEN, &len);
	if (o != O_OK) {
		snprintf(m, n, "request at 0x%llx: %s",
			 (unsigned long long)iova, onames[o]);
		return false;
	}
	for (uint32_t i = 0; i < len && i < EP_LEN; i++)
		changed |= pg(page)[i] != FILL;
	if (len > EP_LEN || !changed || !untouched(page, EP_LEN, PAGE)) {
		snprintf(m, n, "request at 0x%llx: used length %u, %s",
			 (unsigned long long)iova, len,
			 !changed ? "buffer unchanged" : "written past it");
		return false;
	}
	snprintf(m, n, "%u random bytes through the IOMMU", len);
	return true;
}

/* A request the IOMMU must refuse: returned with 0 bytes, the device
 * live, and the record of that fault (a write at [lo, hi]). */
static bool ep_refused(uint64_t iova, uint32_t len, uint64_t lo, uint64_t hi,
		       char *m, size_t n)
{
	uint32_t ulen = 0;
	enum outcome o = ep_get(iova, len, &ulen);

	if (o != O_ERR) {
		snprintf(m, n, "request at 0x%llx: %s, not returned empty",
			 (unsigned long long)iova, onames[o]);
		return false;
	}
	return ev_expect(FAULT_R_MAPPING, FAULT_F_WRITE | FAULT_F_ADDRESS, lo,
			 hi, m, n);
}

/* A request the IOMMU must refuse (a write fault at fault_at) whose
 * buffer lies, all or in part, in page: nothing of that page changes. */
static void ep_refused_in(const char *key, uint64_t iova, uint32_t len,
			  uint64_t fault_at, int page)
{
	char m[240];

	memset(pg(page), FILL, PAGE);
	if (!ep_refused(iova, len, fault_at, fault_at, m, sizeof(m)))
		bad(key, "%s", m);
	else if (!untouched(page, 0, PAGE))
		bad(key, "the page under the buffer was written");
	else
		ok(key, "returned empty, nothing written, %s", m);
}

static atomic_ulong race_ok, race_refused, race_other;

static void *ep_race_requests(void *arg)
{
	uint32_t len;

	pin(1);
	(void)arg;
	while (!atomic_load(&stop_threads)) {
		enum outcome o = ep_get(EP_BUF_IOVA, EP_LEN, &len);

		if (o == O_OK)
			atomic_fetch_add(&race_ok, 1);
		else if (o == O_ERR)
			atomic_fetch_add(&race_refused, 1);
		else {
			atomic_fetch_add(&race_other, 1);
			break;
		}
	}
	return NULL;
}

enum ep_action { EA_UNMAP_RING, EA_DETACH, EA_IOMMU_RESET };

/* Under a live queue (one request served first) the action takes the
 * endpoint's rings away: its used ring UNMAPped, the endpoint DETACHed,
 * or the IOMMU reset (every domain dropped). The next request must
 * break the endpoint (NEEDS_RESET) with this fault on the event queue. */
static void ep_break(const char *key, enum ep_action a, uint8_t reason,
		     uint32_t flags, uint64_t lo, uint64_t hi)
{
	char m[240];
	uint8_t q[IO_PROBE_LEN];
	const char *why = io_why;
	uint32_t len;
	enum outcome o;
	bool done;

	if (ep_fresh(key) < 0)
		return;
	if (!ep_served(P_EP_BUF, EP_BUF_IOVA, m, sizeof(m))) {
		bad(key, "before: %s", m);
		goto out;
	}
	if (a == EA_UNMAP_RING)
		done = ep_unmap(EP_USED_IOVA);
	else if (a == EA_DETACH)
		done = io_ok(q, io_attach(q, IO_DETACH, 1, io_ep), "DETACH");
	else
		done = dev_init(0, &why) == 0;
	if (!done)
		bad(key, "%s", why);
	else if ((o = ep_get(EP_BUF_IOVA, EP_LEN, &len)) != O_NEEDS_RESET)
		bad(key, "request: %s, not needs-reset", onames[o]);
	else if (!ev_expect(reason, flags, lo, hi, m, sizeof(m)))
		bad(key, "%s", m);
	else
		ok(key, "needs-reset, %s", m);
out:
	ep_recover(key);
}

static void group_endpoint(int seconds)
{
	char m[240], m2[240];
	const char *why = NULL;
	uint32_t len;
	enum outcome o;
	int r;

	evq_on = true;

	/* Without ACCESS_PLATFORM the driver would give guest-physical
	 * addresses to a device that translates them: refused. */
	if (ep_reset() == 0) {
		ep_wr(R_STATUS, S_ACK);
		ep_wr(R_STATUS, S_ACK | S_DRIVER);
		ep_wr(R_DRV_FEAT_SEL, 1);
		ep_wr(R_DRV_FEAT, 1);
		ep_wr(R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
		if (ep_rd(R_STATUS) & S_FEATURES_OK)
			bad("ep-no-platform", "FEATURES_OK taken without "
					      "ACCESS_PLATFORM");
		else
			ok("ep-no-platform", "FEATURES_OK refused without "
					     "ACCESS_PLATFORM");
	} else {
		bad("ep-no-platform", "endpoint does not reset");
	}
	ep_recover("ep-no-platform");

	/* Not attached, and BYPASS_CONFIG not negotiated: blocked. */
	if (ep_reset() == 0 && dev_init(0, &why) == 0) {
		r = ep_init(&why);
		if (r == 1 &&
		    ev_expect(FAULT_R_DOMAIN, FAULT_F_READ, 0, 0, m, sizeof(m)))
			ok("ep-unattached", "rings refused, %s", m);
		else
			bad("ep-unattached", "%s",
			    r < 0  ? why :
			    r == 0 ? "rings at IOVAs accepted without a "
				     "domain" :
				     m);
	} else {
		bad("ep-unattached", "setup: %s",
		    why ? why : "endpoint does not reset");
	}
	ep_recover("ep-unattached");

	if (ep_fresh("ep-control") == 0) {
		if (!ep_served(P_EP_BUF, EP_BUF_IOVA, m, sizeof(m)))
			bad("ep-control", "%s", m);
		else if (!ev_none(300, m2, sizeof(m2)))
			bad("ep-control", "%s", m2);
		else
			ok("ep-control", "%s, no fault", m);
		ep_recover("ep-control");
	}

	if (ep_fresh("ep-buf-unmapped") == 0) {
		if (!ep_refused(EP_HOLE_IOVA, EP_LEN, EP_HOLE_IOVA,
				EP_HOLE_IOVA, m, sizeof(m)))
			bad("ep-buf-unmapped", "%s", m);
		else if (!ep_served(P_EP_BUF, EP_BUF_IOVA, m2, sizeof(m2)))
			bad("ep-buf-unmapped", "afterwards: %s", m2);
		else
			ok("ep-buf-unmapped", "returned empty, %s; then %s", m,
			   m2);
		ep_recover("ep-buf-unmapped");
	}

	if (ep_fresh("ep-buf-readonly") == 0) {
		if (!ep_map(EP_RO_IOVA, phys[P_EP_BUF2], IO_MAP_R))
			bad("ep-buf-readonly", "%s", io_why);
		else
			ep_refused_in("ep-buf-readonly", EP_RO_IOVA, EP_LEN,
				      EP_RO_IOVA, P_EP_BUF2);
		ep_recover("ep-buf-readonly");
	}

	/* 16 bytes in the mapped page, 48 in the unmapped one after it:
	 * nothing may land in the mapped part either. */
	if (ep_fresh("ep-buf-straddle") == 0) {
		ep_refused_in("ep-buf-straddle", EP_BUF_IOVA + PAGE - 16, 64,
			      EP_BUF_IOVA + PAGE, P_EP_BUF);
		ep_recover("ep-buf-straddle");
	}

	/* A translation the endpoint used (and may cache) is gone once the
	 * UNMAP completes; a new MAP of the IOVA sends the data elsewhere. */
	if (ep_fresh("ep-unmap-used") == 0) {
		bool unmapped = false;

		if (!ep_served(P_EP_BUF, EP_BUF_IOVA, m, sizeof(m)))
			bad("ep-unmap-used", "before: %s", m);
		else if (!ep_unmap(EP_BUF_IOVA))
			bad("ep-unmap-used", "%s", io_why);
		else
			unmapped = true;
		memset(pg(P_EP_BUF), FILL, PAGE);
		if (!unmapped)
			;
		else if (!ep_refused(EP_BUF_IOVA, EP_LEN, EP_BUF_IOVA,
				     EP_BUF_IOVA, m, sizeof(m)))
			bad("ep-unmap-used", "after the UNMAP: %s", m);
		else if (!untouched(P_EP_BUF, 0, PAGE))
			bad("ep-unmap-used", "unmapped page written");
		else
			ok("ep-unmap-used", "refused after the UNMAP, %s", m);
		/* the old page stays FILL: ep_served fills only the new */
		if (!unmapped)
			bad("ep-remap", "no UNMAP before it");
		else if (!ep_map(EP_BUF_IOVA, phys[P_EP_BUF2], IO_MAP_W))
			bad("ep-remap", "%s", io_why);
		else if (!ep_served(P_EP_BUF2, EP_BUF_IOVA, m, sizeof(m)))
			bad("ep-remap", "%s", m);
		else if (!untouched(P_EP_BUF, 0, PAGE))
			bad("ep-remap", "the old page was written");
		else
			ok("ep-remap", "%s, into the new page only", m);
		ep_recover("ep-unmap-used");
	}

	ep_break("ep-unmap-ring", EA_UNMAP_RING, FAULT_R_MAPPING,
		 FAULT_F_WRITE | FAULT_F_ADDRESS, EP_USED_IOVA,
		 EP_USED_IOVA + PAGE - 1);
	ep_break("ep-detach", EA_DETACH, FAULT_R_DOMAIN, FAULT_F_READ, 0, 0);
	ep_break("ep-iommu-reset", EA_IOMMU_RESET, FAULT_R_DOMAIN, FAULT_F_READ,
		 0, 0);

	/* 80 faults with no event buffer: at most 64 (the device's bound,
	 * docs/iommu.md) are kept and come out, oldest first, once buffers
	 * are there; the rest are dropped and the device goes on. */
	rx_manual = true;
	if (ep_fresh("ep-evq-full") == 0) {
		int refused = 0, got = 0, bogus = 0;
		struct fault f;

		for (int i = 0; i < 80; i++)
			refused += ep_get(EP_HOLE_IOVA + (uint64_t)i * PAGE, 16,
					  &len) == O_ERR;
		for (int i = 0; i < RX_NBUF; i++)
			rx_post(i);
		while ((r = ev_next(1000, &f, &why)) > 0) {
			if (f.len != FAULT_LEN ||
			    f.addr != EP_HOLE_IOVA + (uint64_t)got * PAGE)
				bogus++;
			got++;
		}
		if (r < 0)
			bad("ep-evq-full", "%s", why);
		else if (refused != 80 || got != 64 || bogus)
			bad("ep-evq-full",
			    "%d of 80 refused, %d records (%d out of order or "
			    "malformed), not 80, 64, 0",
			    refused, got, bogus);
		else if (!ep_served(P_EP_BUF, EP_BUF_IOVA, m, sizeof(m)))
			bad("ep-evq-full", "afterwards: %s", m);
		else
			ok("ep-evq-full",
			   "80 refused, the first 64 records "
			   "delivered in order, then %s",
			   m);
		ep_recover("ep-evq-full");
	}

	/* Event buffers the driver got wrong: a device-readable one gets
	 * nothing; one of 8 bytes gets the record's first 8. */
	rx_manual = true;
	if (ep_fresh("ep-evq-readonly") == 0) {
		uint32_t id;

		rx_post_desc((struct desc){ rx_pa(0), RX_BUF, 0, 0 });
		o = ep_get(EP_HOLE_IOVA, 16, &len);
		r = rx_next(3000, &id, &len, &why);
		if (o != O_ERR || r <= 0)
			bad("ep-evq-readonly", "request %s, event buffer %s",
			    onames[o],
			    r < 0  ? why :
			    r == 0 ? "not returned" :
				     "returned");
		else if (len != 0 || !untouched(P_RXBUF, 0, RX_BUF))
			bad("ep-evq-readonly",
			    "readable buffer: used length %u, %s", len,
			    untouched(P_RXBUF, 0, RX_BUF) ? "untouched" :
							    "written");
		else
			ok("ep-evq-readonly",
			   "returned with 0 bytes, untouched");
		ep_recover("ep-evq-readonly");
	}
	rx_manual = true;
	if (ep_fresh("ep-evq-small") == 0) {
		uint32_t id, fl;

		rx_post_desc((struct desc){ rx_pa(0), 8, D_WRITE, 0 });
		o = ep_get(EP_HOLE_IOVA, 16, &len);
		r = rx_next(3000, &id, &len, &why);
		memcpy(&fl, rx_buf(0) + 4, 4);
		if (o != O_ERR || r <= 0)
			bad("ep-evq-small", "request %s, event buffer %s",
			    onames[o],
			    r < 0  ? why :
			    r == 0 ? "not returned" :
				     "returned");
		else if (len != 8 || rx_buf(0)[0] != FAULT_R_MAPPING ||
			 fl != (FAULT_F_WRITE | FAULT_F_ADDRESS) ||
			 !untouched(P_RXBUF, 8, RX_BUF))
			bad("ep-evq-small",
			    "8-byte buffer: used length %u, reason %u, flags "
			    "0x%x, %s",
			    len, rx_buf(0)[0], fl,
			    untouched(P_RXBUF, 8, RX_BUF) ? "nothing past it" :
							    "written past it");
		else
			ok("ep-evq-small", "the record's first 8 bytes, "
					   "nothing past them");
		ep_recover("ep-evq-small");
	}
	rx_manual = false;

	/* Requests on one vCPU, UNMAP/MAP of their buffer on another: once
	 * an UNMAP has completed, the page must not change until the MAP. */
	if (ep_fresh("ep-race-unmap") == 0) {
		pthread_t th;
		uint64_t t0 = now_ms();
		unsigned long cycles = 0, late = 0;
		bool io_fail = false;

		atomic_store(&stop_threads, false);
		atomic_store(&race_ok, 0);
		atomic_store(&race_refused, 0);
		atomic_store(&race_other, 0);
		pin(0);
		if (pthread_create(&th, NULL, ep_race_requests, NULL)) {
			bad("ep-race-unmap", "pthread_create failed");
		} else {
			while (now_ms() - t0 < (uint64_t)seconds * 1000) {
				if (!ep_unmap(EP_BUF_IOVA)) {
					io_fail = true;
					break;
				}
				memset(pg(P_EP_BUF), FILL, PAGE);
				nap_us(2000);
				late += !untouched(P_EP_BUF, 0, PAGE);
				if (!ep_map(EP_BUF_IOVA, phys[P_EP_BUF],
					    IO_MAP_W)) {
					io_fail = true;
					break;
				}
				cycles++;
				nap_us(1000);
			}
			atomic_store(&stop_threads, true);
			pthread_join(th, NULL);
			if (io_fail || late || atomic_load(&race_other) ||
			    !atomic_load(&race_ok) ||
			    !atomic_load(&race_refused))
				bad("ep-race-unmap",
				    "%lu cycles, %lu pages written after their "
				    "UNMAP, %lu served, %lu refused, %lu "
				    "other%s%s",
				    cycles, late, atomic_load(&race_ok),
				    atomic_load(&race_refused),
				    atomic_load(&race_other),
				    io_fail ? "; " : "", io_fail ? io_why : "");
			else if (!ep_served(P_EP_BUF, EP_BUF_IOVA, m,
					    sizeof(m)))
				bad("ep-race-unmap", "afterwards: %s", m);
			else
				ok("ep-race-unmap",
				   "%lu UNMAP/MAP cycles against %lu served "
				   "and %lu refused requests, no page written "
				   "after its UNMAP",
				   cycles, atomic_load(&race_ok),
				   atomic_load(&race_refused));
		}
		ep_recover("ep-race-unmap");
	}
	ep_reset();
}

static int iommu_setup(void)
{
	uint8_t t[4096];
	ssize_t n = 0;
	int fd = open("/sys/firmware/acpi/tables/VIOT", O_RDONLY);
	uint16_t count, off;

	if (fd >= 0) {
		n = read(fd, t, sizeof(t));
		close(fd);
	}
	if (n < 48 || memcmp(t, "VIOT", 4)) {
		fprintf(stderr, "hostile: no VIOT table\n");
		return -1;
	}
	memcpy(&count, t + 36, 2);
	memcpy(&off, t + 38, 2);
	for (; count && off + 4u <= (size_t)n; count--) {
		uint16_t len;
		uint64_t ep_base;

		memcpy(&len, t + off + 2, 2);
		if (len < 4 || off + (size_t)len > (size_t)n)
			break;
		if (t[off] == 2 && len >= 16) {
			memcpy(&io_ep, t + off + 4, 4);
			memcpy(&ep_base, t + off + 8, 8);
			io_ep_base = ep_base;
			io_probe_size = rd(R_CONFIG + 32);
			io_domain_end = rd(R_CONFIG + 28);
			io_input_end = rd(R_CONFIG + 16) |
				       (uint64_t)rd(R_CONFIG + 20) << 32;
			printf("hostile: endpoint %u at 0x%llx, probe_size %u, "
			       "domains to %u, IOVAs to 0x%llx\n",
			       io_ep, (unsigned long long)ep_base,
			       io_probe_size, io_domain_end,
			       (unsigned long long)io_input_end);
			if (io_probe_size < 24 || io_probe_size > 2048) {
				fprintf(stderr, "hostile: probe_size %u\n",
					io_probe_size);
				return -1;
			}
			return 0;
		}
		off = (uint16_t)(off + len);
	}
	fprintf(stderr, "hostile: VIOT has no virtio-mmio endpoint\n");
	return -1;
}

int main(int argc, char **argv)
{
	unsigned long long base;
	int fd, seconds;

	if (argc < 3) {
		fprintf(stderr, "usage: hostile BASE regs|chains|indirect|"
				"races|flood|endpoint [SECONDS]\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (getenv("HOSTILE_KEY_PREFIX"))
		key_prefix = getenv("HOSTILE_KEY_PREFIX");
	base = strtoull(argv[1], NULL, 16);
	seconds = argc > 3 ? atoi(argv[3]) : 4;
	rng_state ^= (uint64_t)now_ms() * 0x100000001b3ull;
	printf("hostile: seed 0x%llx\n", (unsigned long long)rng_state);
	fd = open("/dev/mem", O_RDWR | O_SYNC);
	if (fd < 0) {
		perror("hostile: /dev/mem");
		return 2;
	}
	/* A window need not start on a page (QEMU microvm's are 0x200
	 * apart): map its page and point into it. */
	{
		unsigned long long in = base & (PAGE - 1);
		uint8_t *p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE,
				  MAP_SHARED, fd, (off_t)(base - in));

		if (p == MAP_FAILED) {
			perror("hostile: mmap /dev/mem");
			return 2;
		}
		mmio = p + in;
	}
	dev_id = rd(R_DEVICE_ID);
	if (rd(R_MAGIC) != 0x74726976 ||
	    (dev_id != ID_BLK && dev_id != ID_RNG && dev_id != ID_NET &&
	     dev_id != ID_VSOCK && dev_id != ID_CONSOLE &&
	     dev_id != ID_IOMMU)) {
		fprintf(stderr,
			"hostile: no virtio-blk, -rng, -net, -vsock, -console "
			"or -iommu at 0x%llx\n",
			base);
		return 2;
	}
	if (dev_id == ID_IOMMU && iommu_setup() < 0)
		return 2;
	if (dev_id == ID_IOMMU && !strcmp(argv[2], "endpoint")) {
		unsigned long long in = io_ep_base & (PAGE - 1);
		uint8_t *p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE,
				  MAP_SHARED, fd, (off_t)(io_ep_base - in));

		if (!io_ep_base || p == MAP_FAILED) {
			fprintf(stderr, "hostile: endpoint window 0x%llx\n",
				(unsigned long long)io_ep_base);
			return 2;
		}
		ep_mmio = p + in;
	}
	tq = has_rxq() ? 1 : 0;
	snprintf(hc_run, sizeof(hc_run), "%s%s-%08x", key_prefix, argv[2],
		 (unsigned int)rnd());
	if (dev_id == ID_VSOCK)
		guest_cid = rd(R_CONFIG) | (uint64_t)rd(R_CONFIG + 4) << 32;
	if (setup_memory() < 0)
		return 2;
	if (!strcmp(argv[2], "regs"))
		group_regs();
	else if (!strcmp(argv[2], "chains"))
		group_chains();
	else if (!strcmp(argv[2], "indirect"))
		group_indirect();
	else if (!strcmp(argv[2], "races"))
		group_races(seconds);
	else if (!strcmp(argv[2], "flood"))
		group_flood(seconds);
	else if (!strcmp(argv[2], "endpoint") && dev_id == ID_IOMMU)
		group_endpoint(seconds);
	else {
		fprintf(stderr, "hostile: unknown group %s\n", argv[2]);
		return 2;
	}
	/* leave the device reset for the next group or Linux's driver */
	dev_reset();
	if (dev_id == ID_CONSOLE)
		printf("WISP-T-VAL %sconsole-tx-%s %s %u\n", key_prefix,
		       argv[2], hc_run, hc_seq);
	return failures ? 1 : 0;
}
