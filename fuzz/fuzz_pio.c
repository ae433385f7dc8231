// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the port-I/O devices on the real PIO bus, wired as
 * the VMM wires them (src/vmm/devices.c, src/vmm/power.c): the 16550A at
 * 0x3f8 (8 ports), the i8042 at 0x60/0x64 and the ACPI PM block at 0x600
 * (4 ports); their snapshot parsers too. The input is a list of
 * operations:
 *   op 0: {u8 port, u8 size, u32 value}  OUT of 1, 2 or 4 bytes
 *   op 1: {u8 port, u8 size}             IN
 *   op 2: {u8 n, n bytes}                host input for the UART
 *   op 3: {u8 dev, u16 n, n bytes}       a snapshot payload for a device
 *   op 4: save every device, load the saves back, save again
 * (port: an index into the devices' ports and their neighbours.)
 *
 * Checks: unclaimed ports read all-ones; a wider access never reaches
 * beyond its bytes; the UART's output is exactly the bytes written to
 * THR outside DLAB and loopback, in order, and its receive side hands
 * out exactly the bytes put in (host input, loopback), in order, with
 * LSR.DR telling whether one is there, host input taking what fits;
 * the i8042 status tells whether a byte waits, and its buffer never
 * grows past 16; the ACPI block powers off exactly on SLP_EN with S5 and
 * resets exactly on 0x0f to its reset register; interrupt lines only ever
 * go to 0 or 1 on their own GSI; a snapshot that loads is saved back the
 * same; save, load, save gives the same bytes. After a successful load of
 * fuzzed state the UART models start over from the loaded contents.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus/bus.h"
#include "devices/acpi_pm.h"
#include "devices/acpi_pm_regs.h"
#include "devices/i8042.h"
#include "devices/serial.h"
#include "util/le.h"
#include "util/log.h"

#define GED_GSI 9
#define PIPE_SIZE (1 << 20)
#define MAX_OPS 4096

#define CHECK(cond)                                                       \
	do {                                                              \
		if (!(cond)) {                                            \
			fprintf(stderr,                                   \
				"fuzz_pio: check failed: %s (line %d)\n", \
				#cond, __LINE__);                         \
			abort();                                          \
		}                                                         \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint16_t ports[] = { 0x3f8, 0x3f9, 0x3fa, 0x3fb, 0x3fc, 0x3fd,
				  0x3fe, 0x3ff, 0x60,  0x64,  0x600, 0x601,
				  0x602, 0x603, 0x3f7, 0x400, 0x5f,  0x61,
				  0x63,	 0x65,	0x5ff, 0x604, 0x3fd, 0x3f8,
				  0x3f8, 0x60,	0x64,  0x600, 0x602 };

static int poweroffs, pm_resets, kbd_resets;

static void set_level(void *opaque, unsigned int gsi, int level)
{
	CHECK(gsi == (unsigned int)(uintptr_t)opaque);
	CHECK(level == 0 || level == 1);
}

static void on_poweroff(void *o)
{
	poweroffs++;
}

static void on_pm_reset(void *o)
{
	pm_resets++;
}

static void on_kbd_reset(void *o)
{
	kbd_resets++;
}

/* The UART's receive side as the guest should see it. */
static uint8_t rxm[SERIAL_RX_SIZE];
static size_t rxm_head, rxm_n;
static uint8_t out_expect[PIPE_SIZE], out_got[PIPE_SIZE];
static size_t out_n;

static void rxm_put(uint8_t b)
{
	if (rxm_n < SERIAL_RX_SIZE)
		rxm[(rxm_head + rxm_n++) % SERIAL_RX_SIZE] = b;
}

static bool in_range(uint16_t port, uint16_t base, uint16_t len)
{
	return port >= base && port < base + len;
}

/* save, load, save: the same bytes; load leaves the device as it was. */
static void roundtrip(struct serial *s, struct i8042 *k, struct acpi_pm *pm)
{
	struct ser_w a = { 0 }, b = { 0 };
	struct err e;

	serial_save(s, &a);
	CHECK(!a.fail);
	CHECK(serial_load(s, a.p, a.len, &e) == 0);
	serial_save(s, &b);
	CHECK(b.len == a.len && !memcmp(a.p, b.p, a.len));
	free(a.p);
	free(b.p);
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	i8042_save(k, &a);
	CHECK(i8042_load(k, a.p, a.len, &e) == 0);
	i8042_save(k, &b);
	CHECK(b.len == a.len && !memcmp(a.p, b.p, a.len));
	free(a.p);
	free(b.p);
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	acpi_pm_save(pm, &a);
	CHECK(acpi_pm_load(pm, a.p, a.len, &e) == 0);
	acpi_pm_save(pm, &b);
	CHECK(b.len == a.len && !memcmp(a.p, b.p, a.len));
	free(a.p);
	free(b.p);
}

/* A fuzzed payload for one device: refused with a message, or taken and
 * then saved back the same. */
static bool load_fuzzed(int dev, const uint8_t *p, size_t n, struct serial *s,
			struct i8042 *k, struct acpi_pm *pm)
{
	struct ser_w w = { 0 };
	struct err e;
	int ret;

	memset(&e, 0, sizeof(e));
	switch (dev % 3) {
	case 0:
		ret = serial_load(s, p, n, &e);
		if (ret == 0)
			serial_save(s, &w);
		break;
	case 1:
		ret = i8042_load(k, p, n, &e);
		if (ret == 0)
			i8042_save(k, &w);
		break;
	default:
		ret = acpi_pm_load(pm, p, n, &e);
		if (ret == 0)
			acpi_pm_save(pm, &w);
		break;
	}
	if (ret < 0) {
		CHECK(e.msg[0]);
		return false;
	}
	CHECK(w.len == n && !memcmp(w.p, p, n));
	free(w.p);
	return dev % 3 == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct serial s;
	static struct i8042 k;
	static struct acpi_pm pm;
	struct bus pio;
	size_t pos = 0, got = 0;
	bool model = true;
	int p[2], ops = 0;

	log_set_level(LOG_ERROR);
	CHECK(pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
	fcntl(p[1], F_SETPIPE_SZ, PIPE_SIZE);
	serial_init(&s, p[1],
		    (struct irq_line){ set_level,
				       (void *)(uintptr_t)SERIAL_COM1_IRQ,
				       SERIAL_COM1_IRQ });
	i8042_init(&k, on_kbd_reset, NULL);
	k.irq = (struct irq_line){ set_level, (void *)(uintptr_t)I8042_KBD_IRQ,
				   I8042_KBD_IRQ };
	acpi_pm_init(&pm, on_poweroff, on_pm_reset, NULL,
		     (struct irq_line){ set_level, (void *)(uintptr_t)GED_GSI,
					GED_GSI });
	bus_init(&pio, "pio");
	CHECK(bus_register(&pio, SERIAL_COM1_BASE, 8, &serial_bus_ops, &s,
			   "serial") == 0);
	CHECK(bus_register(&pio, I8042_DATA_PORT, 1, &i8042_data_ops, &k,
			   "i8042") == 0);
	CHECK(bus_register(&pio, I8042_CMD_PORT, 1, &i8042_cmd_ops, &k,
			   "i8042") == 0);
	CHECK(bus_register(&pio, ACPI_PM_PORT, ACPI_PM_LEN, &acpi_pm_ops, &pm,
			   "acpi-pm") == 0);
	rxm_head = rxm_n = out_n = 0;
	poweroffs = pm_resets = kbd_resets = 0;

	while (pos < size && ops++ < MAX_OPS) {
		uint8_t op = data[pos++] % 5, b[8];
		uint16_t port;
		uint32_t len;
		bool claimed;

		if (op <= 1) {
			if (pos + 2 > size)
				break;
			port = ports[data[pos] %
				     (sizeof(ports) / sizeof(ports[0]))];
			len = 1u << (data[pos + 1] % 3);
			pos += 2;
		}
		switch (op) {
		case 0: {
			int want_off = poweroffs, want_rst = pm_resets;
			bool thr = false, loop = false;

			if (pos + 4 > size)
				goto out;
			memcpy(b, data + pos, 4);
			pos += 4;
			if (port == SERIAL_COM1_BASE) {
				pthread_mutex_lock(&s.lock);
				thr = !(s.lcr & 0x80);
				loop = s.mcr & 0x10;
				pthread_mutex_unlock(&s.lock);
			}
			if (in_range(port, ACPI_PM_PORT, ACPI_PM_LEN))
				for (uint32_t i = 0; i < len; i++) {
					uint32_t r = port - ACPI_PM_PORT + i;

					if (r == ACPI_PM_SLEEP_CTL &&
					    (b[i] & ACPI_SLP_EN) &&
					    ((b[i] & ACPI_SLP_TYP_MASK) >>
					     ACPI_SLP_TYP_SHIFT) ==
						    ACPI_SLP_TYP_S5)
						want_off++;
					if (r == ACPI_PM_RESET &&
					    b[i] == ACPI_RESET_VALUE)
						want_rst++;
				}
			claimed = bus_write(&pio, 0, port, b, len);
			CHECK(claimed == (bus_find(&pio, port) != NULL));
			CHECK(poweroffs == want_off && pm_resets == want_rst);
			if (model && thr) {
				if (loop) {
					rxm_put(b[0]);
				} else {
					CHECK(out_n < sizeof(out_expect));
					out_expect[out_n++] = b[0];
				}
			}
			if (model && port == SERIAL_COM1_BASE + 2 && (b[0] & 2))
				rxm_head = rxm_n = 0; /* FCR: clear receive */
			break;
		}
		case 1: {
			bool rbr = false;

			memset(b, 0xa5, sizeof(b));
			if (port == SERIAL_COM1_BASE) {
				pthread_mutex_lock(&s.lock);
				rbr = !(s.lcr & 0x80);
				pthread_mutex_unlock(&s.lock);
			}
			claimed = bus_read(&pio, 0, port, b, len);
			for (uint32_t i = len; i < sizeof(b); i++)
				CHECK(b[i] == 0xa5);
			if (!claimed) {
				for (uint32_t i = 0; i < len; i++)
					CHECK(b[i] == 0xff);
				break;
			}
			if (model && rbr) {
				if (rxm_n) {
					CHECK(b[0] == rxm[rxm_head]);
					rxm_head =
						(rxm_head + 1) % SERIAL_RX_SIZE;
					rxm_n--;
				} else {
					CHECK(b[0] == 0);
				}
			}
			if (model && port == SERIAL_COM1_BASE + 5)
				CHECK(!!(b[0] & 1) == !!rxm_n); /* LSR.DR */
			if (port == I8042_CMD_PORT) {
				pthread_mutex_lock(&k.lock);
				CHECK(!!(b[0] & 1) == !!k.out_count);
				pthread_mutex_unlock(&k.lock);
			}
			break;
		}
		case 2: {
			size_t n, taken, room = SERIAL_RX_SIZE - rxm_n;

			if (pos + 1 > size)
				goto out;
			n = data[pos++];
			if (n > size - pos)
				n = size - pos;
			taken = serial_push_input(&s, data + pos, n);
			CHECK(taken <= n);
			if (model) {
				CHECK(taken == (n < room ? n : room));
				for (size_t i = 0; i < taken; i++)
					rxm_put(data[pos + i]);
			}
			pos += n;
			break;
		}
		case 3: {
			size_t n;
			int dev;

			if (pos + 3 > size)
				goto out;
			dev = data[pos];
			n = le16(data + pos + 1);
			pos += 3;
			if (n > size - pos)
				n = size - pos;
			if (load_fuzzed(dev, data + pos, n, &s, &k, &pm))
				model = false; /* the UART holds other bytes */
			pos += n;
			break;
		}
		default:
			roundtrip(&s, &k, &pm);
			break;
		}
		pthread_mutex_lock(&k.lock);
		CHECK(k.out_count >= 0 && k.out_count <= (int)sizeof(k.out));
		pthread_mutex_unlock(&k.lock);
		pthread_mutex_lock(&s.lock);
		CHECK(s.rx_count <= SERIAL_RX_SIZE &&
		      s.tx_count <= SERIAL_TX_SIZE);
		if (model)
			CHECK(s.rx_count == rxm_n);
		pthread_mutex_unlock(&s.lock);
	}
out:
	/* Nothing the guest wrote is lost or invented (the pipe holds it
	 * all, so nothing may be dropped either). */
	for (ssize_t r;
	     (r = read(p[0], out_got + got, sizeof(out_got) - got)) > 0;)
		got += (size_t)r;
	if (model) {
		CHECK(serial_out_dropped(&s) == 0);
		CHECK(got == out_n && !memcmp(out_got, out_expect, got));
	}
	bus_destroy(&pio);
	serial_destroy(&s);
	i8042_destroy(&k);
	close(p[0]);
	close(p[1]);
	return 0;
}
