// SPDX-License-Identifier: MIT
/* Failing a virtio-blk request the device model will never complete
 * (virtio 1.2, 5.2.6): the last byte of the chain's last device-writable
 * buffer is the status. */
#include "virtio/standin.h"

#define VIRTIO_BLK_S_IOERR 1

bool virtio_blk_fail_chain(const struct virtq_chain *c)
{
	const struct virtq_seg *last;

	if (!c->nr_write)
		return false;
	last = &c->seg[c->nr_read + c->nr_write - 1];
	if (!last->len)
		return false;
	last->host[last->len - 1] = VIRTIO_BLK_S_IOERR;
	return true;
}
