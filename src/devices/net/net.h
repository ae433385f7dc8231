/* SPDX-License-Identifier: MIT */
/*
 * virtio-net (virtio 1.2, 5.1) on a host tap device: one receive and one
 * transmit queue, no control queue. The tap is opened with IFF_TAP |
 * IFF_NO_PI | IFF_VNET_HDR and a 12-byte virtio_net_hdr_v1, so the header
 * the guest writes goes to the kernel as is (after validation) and the
 * header the kernel writes reaches the guest as is (with num_buffers
 * filled in). TUNSETOFFLOAD follows the GUEST_* features the driver
 * negotiated, so the kernel never hands the guest a frame it cannot take.
 *
 * Receive never busy-polls: the tap is watched (through a private epoll
 * set published in d->watch_fds[0]) only while the guest has rx buffers.
 * A frame read while the ring is empty is held, the tap is dropped from
 * the set, and the next rx kick delivers the held frame and re-arms it.
 *
 * With rate limits (rx_rate / tx_rate, or Firecracker's bandwidth and
 * ops buckets per direction, changeable while running), a frame over
 * budget waits (the tx chain stays
 * in the ring, the rx frame stays held and the tap unwatched) and a
 * timerfd, d->watch_fds[1], resumes the queue when the bucket allows it.
 *
 * Hostile input from the guest (headers with unnegotiated offloads, bad
 * checksum offsets, frames larger than NET_MAX_FRAME, chains too short
 * for a header, rx buffers too small) is dropped and counted; chains
 * that break the ring's rules (readable buffers in the rx queue, ...)
 * set NEEDS_RESET. Frames from the backend are checked the same way.
 *
 * Threads: everything runs under the device's lock (struct virtio_dev),
 * on its I/O thread.
 */
#ifndef WISP_DEVICES_NET_NET_H
#define WISP_DEVICES_NET_NET_H

#include <stdbool.h>
#include <stdint.h>

#include "mem/guest_mem.h"
#include "util/err.h"
#include "util/ratelimit.h"
#include "virtio/virtio.h"

/* Feature bits (5.1.3). */
#define VIRTIO_NET_F_CSUM 0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_GUEST_ECN 9
#define VIRTIO_NET_F_GUEST_UFO 10
#define VIRTIO_NET_F_HOST_TSO4 11
#define VIRTIO_NET_F_HOST_TSO6 12
#define VIRTIO_NET_F_HOST_ECN 13
#define VIRTIO_NET_F_HOST_UFO 14
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_NET_F_STATUS 16
#define VIRTIO_NET_F_CTRL_VQ 17

/* struct virtio_net_hdr_v1 (5.1.6). */
#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_F_DATA_VALID 2
#define VIRTIO_NET_HDR_GSO_NONE 0
#define VIRTIO_NET_HDR_GSO_TCPV4 1
#define VIRTIO_NET_HDR_GSO_UDP 3
#define VIRTIO_NET_HDR_GSO_TCPV6 4
#define VIRTIO_NET_HDR_GSO_ECN 0x80

struct virtio_net_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
};

#define NET_HDR_SIZE 12
#define VIRTIO_NET_S_LINK_UP 1
#define NET_CONFIG_SIZE 10 /* mac, status, max_virtqueue_pairs */
#define NET_QUEUE_SIZE 256
#define NET_RXQ 0
#define NET_TXQ 1
/* Largest frame (after the header) in either direction: a 64 KiB GSO
 * super-frame plus an Ethernet header with a VLAN tag. */
#define NET_MAX_FRAME (65536 + 18)
/* Smallest frame passed on: an Ethernet header. */
#define NET_MIN_FRAME 14

/* TUNSETOFFLOAD bits (linux/if_tun.h), here so the pure offload logic
 * is testable without a tap. */
#define NET_TUN_F_CSUM 0x01
#define NET_TUN_F_TSO4 0x02
#define NET_TUN_F_TSO6 0x04

struct net_config {
	const char *tap; /* interface name, < IFNAMSIZ */
	const char *id; /* for messages; NULL: the tap name */
	uint8_t mac[6];
	bool has_mac; /* false: a random locally administered address */
	/* Bandwidth limits in bytes per second (frame bytes, header not
	 * counted), each a token bucket holding one second; 0: none. */
	uint64_t rx_rate, tx_rate;
	/* Firecracker's rate limiters (bytes and frames); a bandwidth bucket
	 * here overrides rx_rate / tx_rate. */
	struct rl_config rx_rl, tx_rl;
	/* vhost=on: the kernel's vhost-net runs the rings (vhost_net.c);
	 * without /dev/vhost-net wisp's own device, with a warning. Rate
	 * limits do not apply then (the caller refuses both). */
	bool vhost;
};

/* Counters of wisp's own device: written by its I/O thread (under the
 * device's lock), read by net_get_stats from any thread (util/counter.h).
 * A vhost=on device has none: the kernel moves its frames. */
struct net_stats {
	uint64_t rx_frames, rx_bytes, rx_dropped;
	uint64_t tx_frames, tx_bytes, tx_dropped, tx_errors;
	uint64_t rx_held; /* frames held because the ring was empty */
	uint64_t rx_throttled, tx_throttled; /* waits on a rate limit */
};

/* Opens cfg->tap through /dev/net/tun and creates the device. cfg is
 * not kept. On success *out belongs to the caller, released with
 * (*out)->ops->destroy (which closes the tap) or handed to a transport;
 * on failure *out is NULL and nothing is left open. Errors name the tap
 * and are ERR_CONFIG when the user can fix them (a bad name, no such
 * tap or no permission, a tap without vnet header support) and ERR_HOST
 * otherwise. */
int net_create(const struct net_config *cfg, struct guest_mem *mem,
	       struct virtio_dev **out, struct err *e);

/* Opens /dev/net/tun and attaches it to the existing tap cfg->tap with a
 * virtio_net_hdr and no offloads, as net_create does; returns the fd
 * (non-blocking, close-on-exec) or -errno. For a server that opens its
 * tap once, before its jail takes the means to (docs/jail.md). */
int net_open_tap(const struct net_config *cfg, struct err *e);

/* The same device on an already open, non-blocking, frame-preserving fd
 * that carries a 12-byte virtio_net_hdr before each frame (a tap, or a
 * SOCK_SEQPACKET socket in tests); is_tap selects the TUNSETOFFLOAD
 * calls. Takes fd in every case: on failure it is closed. */
int net_create_fd(const struct net_config *cfg, int fd, bool is_tap,
		  struct guest_mem *mem, struct virtio_dev **out,
		  struct err *e);

/* For vhost_net.c: opens /dev/vhost-net and takes ownership (*fd, its
 * features in *features); config-class errors when it is missing. */
int net_vhost_open(const char *label, int *fd, uint64_t *features,
		   struct err *e);
/* The vhost-net device on an open tap and vhost fd (both taken, closed
 * on failure); same ownership as net_create_fd. */
int net_vhost_create(const struct net_config *cfg, int tap, int vhost,
		     uint64_t vhost_features, struct guest_mem *mem,
		     struct virtio_dev **out, struct err *e);
/* Shared by both devices: the feature bits offered, the config space
 * (mac, status, max_virtqueue_pairs) and the MAC (given or random). */
uint64_t net_device_features(void);
void net_config_bytes(const uint8_t mac[6], uint32_t off, uint8_t *data,
		      uint32_t len);
int net_pick_mac(const struct net_config *cfg, uint8_t mac[6], struct err *e);

/* TUNSETOFFLOAD flags for a negotiated feature set: an offload is asked
 * of the kernel only when the guest can take it (GUEST_TSO* also needs
 * GUEST_CSUM). */
unsigned int net_tap_offloads(uint64_t features);

/* Checks a transmit header against the negotiated features and the frame
 * length (bytes after the header). Returns NULL if the frame may go to
 * the backend, else why not. */
const char *net_check_tx_hdr(const struct virtio_net_hdr *h, uint64_t features,
			     uint32_t frame_len);

/* The same for a header the backend produced for the guest. */
const char *net_check_rx_hdr(const struct virtio_net_hdr *h, uint64_t features,
			     uint32_t frame_len);

/* The limits cfg asks for, rx_rate / tx_rate folded in. */
void net_limits(const struct net_config *cfg, struct rl_config *rx,
		struct rl_config *tx);

/* New limits while the device runs (NULL: that direction unchanged);
 * the buckets start full. Takes d->lock. */
void net_set_limits(struct virtio_dev *d, const struct rl_config *rx,
		    const struct rl_config *tx);

/* The device's own snapshot payload (after the transport's), checked
 * whole: the version and the MAC (unicast, not zero). Writes mac only
 * on success; -EINVAL with *why otherwise. Pure, for the fuzz target
 * and the unit test. */
int net_state_decode(const uint8_t *p, uint32_t len, uint8_t mac[6],
		     const char **why);

void net_get_stats(struct virtio_dev *d, struct net_stats *s);
/* Whether d is wisp's own virtio-net (net_get_stats applies), not the
 * vhost-net device that net_create returns for vhost=on. */
bool net_is_own(const struct virtio_dev *d);
/* Whether the tap is in the watched set (receive armed). */
bool net_rx_polling(struct virtio_dev *d);
unsigned int net_current_offloads(struct virtio_dev *d);

#endif
