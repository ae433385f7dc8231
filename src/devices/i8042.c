// SPDX-License-Identifier: MIT
#include "devices/i8042.h"

#include <errno.h>
#include <string.h>

#define STS_OBF 0x01 /* output buffer full: data for the guest */
#define STS_SYS 0x04 /* system flag: passed self test */
#define STS_UNLOCKED 0x10 /* keyboard not inhibited by the keylock */

#define CMD_READ_CTR 0x20
#define CMD_WRITE_CTR 0x60
#define CMD_AUX_DISABLE 0xa7
#define CMD_AUX_ENABLE 0xa8
#define CMD_AUX_TEST 0xa9
#define CMD_SELF_TEST 0xaa
#define CMD_KBD_TEST 0xab
#define CMD_KBD_DISABLE 0xad
#define CMD_KBD_ENABLE 0xae
#define CMD_WRITE_OUTPUT 0xd1
#define CMD_PULSE_RESET 0xfe

#define CTR_KBD_INT 0x01 /* interrupt on keyboard data */
#define CTR_KBD_OFF 0x10 /* keyboard clock disabled */
#define CTR_XLATE 0x40 /* translate to scan code set 1 */

void i8042_init(struct i8042 *k, void (*reset)(void *), void *opaque)
{
	memset(k, 0, sizeof(*k));
	pthread_mutex_init(&k->lock, NULL);
	k->reset = reset;
	k->reset_opaque = opaque;
	k->ctr = 0x44; /* system flag, translation; interrupts off */
}

void i8042_destroy(struct i8042 *k)
{
	pthread_mutex_destroy(&k->lock);
}

static void push_locked(struct i8042 *k, uint8_t v)
{
	if (k->out_count < (int)sizeof(k->out))
		k->out[k->out_count++] = v;
}

static void data_read(void *opaque, int cpu, uint64_t off, uint8_t *data,
		      uint32_t len)
{
	struct i8042 *k = opaque;
	uint8_t v = 0;
	bool more;

	pthread_mutex_lock(&k->lock);
	if (k->out_count) {
		v = k->out[0];
		memmove(k->out, k->out + 1, (size_t)--k->out_count);
	}
	more = k->out_count && (k->ctr & CTR_KBD_INT);
	pthread_mutex_unlock(&k->lock);
	memset(data, 0, len);
	data[0] = v;
	/* One byte per interrupt, as the guest's handler reads them. */
	if (more) {
		irq_line_set(&k->irq, 1);
		irq_line_set(&k->irq, 0);
	}
}

static void data_write(void *opaque, int cpu, uint64_t off, const uint8_t *data,
		       uint32_t len)
{
	struct i8042 *k = opaque;
	bool reset = false;

	pthread_mutex_lock(&k->lock);
	switch (k->pending_cmd) {
	case CMD_WRITE_CTR:
		k->ctr = data[0];
		break;
	case CMD_WRITE_OUTPUT:
		/* Output port bit 0 drives the CPU reset line (active low). */
		reset = !(data[0] & 1);
		break;
	default:
		/* Bytes for the (absent) keyboard: no answer, as when no
		 * keyboard is plugged in. */
		break;
	}
	k->pending_cmd = 0;
	pthread_mutex_unlock(&k->lock);
	if (reset && k->reset)
		k->reset(k->reset_opaque);
}

static void cmd_read(void *opaque, int cpu, uint64_t off, uint8_t *data,
		     uint32_t len)
{
	struct i8042 *k = opaque;

	pthread_mutex_lock(&k->lock);
	data[0] = STS_SYS | STS_UNLOCKED | (k->out_count ? STS_OBF : 0);
	pthread_mutex_unlock(&k->lock);
	memset(data + 1, 0, len - 1);
}

static void cmd_write(void *opaque, int cpu, uint64_t off, const uint8_t *data,
		      uint32_t len)
{
	struct i8042 *k = opaque;
	bool reset = false;

	pthread_mutex_lock(&k->lock);
	k->pending_cmd = 0;
	switch (data[0]) {
	case CMD_READ_CTR:
		push_locked(k, k->ctr);
		break;
	case CMD_WRITE_CTR:
	case CMD_WRITE_OUTPUT:
		k->pending_cmd = data[0];
		break;
	case CMD_SELF_TEST:
		push_locked(k, 0x55);
		break;
	case CMD_KBD_TEST:
	case CMD_AUX_TEST:
		push_locked(k, 0x00);
		break;
	case CMD_AUX_DISABLE:
		k->ctr |= 0x20;
		break;
	case CMD_AUX_ENABLE:
		k->ctr &= (uint8_t)~0x20;
		break;
	case CMD_KBD_DISABLE:
		k->ctr |= 0x10;
		break;
	case CMD_KBD_ENABLE:
		k->ctr &= (uint8_t)~0x10;
		break;
	case CMD_PULSE_RESET:
		reset = true;
		break;
	default:
		break;
	}
	pthread_mutex_unlock(&k->lock);
	if (reset && k->reset)
		k->reset(k->reset_opaque);
}

const struct bus_ops i8042_data_ops = { .read = data_read,
					.write = data_write };
const struct bus_ops i8042_cmd_ops = { .read = cmd_read, .write = cmd_write };

int i8042_ctrl_alt_del(struct i8042 *k)
{
	static const uint8_t set1[] = { 0x1d, 0x38, 0xe0, 0x53 };
	static const uint8_t set2[] = { 0x14, 0x11, 0xe0, 0x71 };
	const uint8_t *codes;
	bool irq;

	pthread_mutex_lock(&k->lock);
	if (k->out_count + (int)sizeof(set1) > (int)sizeof(k->out) ||
	    (k->ctr & CTR_KBD_OFF)) {
		pthread_mutex_unlock(&k->lock);
		return -EBUSY;
	}
	codes = k->ctr & CTR_XLATE ? set1 : set2;
	for (size_t i = 0; i < sizeof(set1); i++)
		push_locked(k, codes[i]);
	irq = k->ctr & CTR_KBD_INT;
	pthread_mutex_unlock(&k->lock);
	if (irq) {
		irq_line_set(&k->irq, 1);
		irq_line_set(&k->irq, 0);
	}
	return 0;
}
