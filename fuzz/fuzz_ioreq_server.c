// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: a hostile VMM against the server library
 * (wisp_ioreq_handshake + wisp_ioreq_serve) over a socketpair.
 *
 * Input: a 64-byte header (zero-padded) giving the WELCOME and MEM_MAP
 * fields verbatim (so offsets can wrap) and the real sizes of the memfds
 * behind them, then the shared page's initial bytes, then records:
 *   op 0: {u16 len, len bytes}   one control packet (op bit 4: + 1 fd)
 *   op 1: {u16 off, u8 n (<= 24), n bytes} store into the shared page while the
 *         server runs (ring head, slot states, entries...)
 *   op 2: write the wake eventfd
 *   op 3: give the server a moment; with op bit 4: {u16 len, len bytes}
 *         one packet on the IOMMU channel (op bit 5: + 1 fd), and the
 *         answers waiting there are read
 * WELCOME granting IOREQ_F_IOMMU (a fuzzed feature byte) carries one more
 * fd, chosen by the header's last byte: the IOMMU channel (a socketpair
 * end), none, an eventfd or a stream socket. The server also translates a
 * few fuzzed addresses from another thread, as a device would.
 * The VMM then hangs up. The server must fail with a message or serve;
 * it must never crash, hang or leak an fd.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ioreq/msg.h"
#include "ioreq/server.h"

#define MAX_SHM (64u << 10)
#define MAX_RAM (256u << 10)

struct in {
	const uint8_t *p, *end;
};

static uint64_t take(struct in *in, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v |= (uint64_t)(in->p < in->end ? *in->p++ : 0) << (8 * i);
	return v;
}

/* Device callbacks that use guest RAM the way a device does. */
static void d_read(void *o, int cpu, uint64_t off, uint8_t *d, uint32_t len)
{
	struct wisp_ioreq_server *s = o;
	void *p = guest_mem_ptr(&s->mem, off * 64, len);

	if (p)
		memcpy(d, p, len);
}

static void d_write(void *o, int cpu, uint64_t off, const uint8_t *d,
		    uint32_t len)
{
	struct wisp_ioreq_server *s = o;
	void *p = guest_mem_ptr(&s->mem, off * 64, len);

	if (p)
		memcpy(p, d, len);
}

static const struct bus_ops dev_ops = { d_read, d_write };

static int open_fds(void)
{
	int n = 0;

	for (int fd = 0; fd < 256; fd++)
		n += fcntl(fd, F_GETFD) >= 0;
	return n;
}

struct server_arg {
	int sock;
	int ret;
	uint64_t probe[4]; /* addresses a "device" thread translates */
};

struct dev_arg {
	struct wisp_ioreq_server *s;
	const uint64_t *probe;
	volatile int stop;
};

/* A device thread: translations and in-flight brackets racing with the
 * table changes the serving thread applies. */
static void *device(void *arg)
{
	struct dev_arg *d = arg;

	for (int k = 0; !d->stop && k < 200; k++) {
		uint64_t iova = d->probe[k % 4], gpa, n;
		int tok = wisp_ioreq_dma_begin(d->s);

		if (wisp_ioreq_translate(d->s, tok, iova, 1 + (iova & 0x1fff),
					 iova & 1, &gpa, &n) == 0 &&
		    (n == 0 || n > 1 + (iova & 0x1fff)))
			__builtin_trap();
		wisp_ioreq_dma_end(d->s, tok);
		usleep(10);
	}
	return NULL;
}

static void *server(void *arg)
{
	struct server_arg *a = arg;
	struct wisp_ioreq_server *s;
	struct err e = { 0 };

	a->ret = wisp_ioreq_handshake(a->sock, "fuzz", IOREQ_F_ALL, &s, &e);
	if (a->ret) {
		if (!e.msg[0] || s)
			__builtin_trap(); /* every failure names its cause */
		return NULL;
	}
	s->timeout_ms = 20;
	s->spin_ns = 2000;
	/* Ranges without MAP_RANGE (the fuzzed VMM sends no ACKs). */
	s->ranges[0] = (struct wisp_ioreq_range){ s->welcome.window_base, 0x100,
						  IOREQ_RANGE_SYNC, &dev_ops,
						  s };
	s->ranges[1] =
		(struct wisp_ioreq_range){ s->welcome.window_base + 0x100,
					   0x100, IOREQ_RANGE_POSTED, &dev_ops,
					   s };
	s->nr_ranges = 2;
	wisp_ioreq_ready(s, &e);
	e.msg[0] = 0;
	{
		struct dev_arg d = { s, a->probe, 0 };
		pthread_t dt;
		bool dev = wisp_ioreq_iommu(s) &&
			   pthread_create(&dt, NULL, device, &d) == 0;

		a->ret = wisp_ioreq_serve(s, &e);
		d.stop = 1;
		if (dev)
			pthread_join(dt, NULL);
	}
	if (a->ret && !e.msg[0])
		__builtin_trap();
	wisp_ioreq_close(s);
	return NULL;
}

static int memfd_of(uint64_t size)
{
	int fd = memfd_create("fuzz", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	/* Sealed as wisp seals them, so the checks past the seal run. */
	if (fd < 0 || ftruncate(fd, (off_t)size) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0)
		__builtin_trap();
	return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, data + size };
	struct ioreq_welcome w = { 0 };
	struct ioreq_mem_map m = { 0 };
	struct server_arg a;
	uint8_t *shm = MAP_FAILED;
	int sv[2], fds[IOREQ_MAX_FDS], nfds, shm_fd, ram_fd, probe, flags,
		nresp, efd[4 + IOREQ_MAX_VCPUS], ch[2] = { -1, -1 }, nefd,
						 chan_kind;
	uint64_t shm_real, ram_real;
	uint8_t hello[IOREQ_MAX_MSG];
	pthread_t th;

	probe = open_fds();

	/* Header: 64 bytes. */
	flags = (int)take(&in, 1);
	w.hdr = (struct ioreq_hdr){ IOREQ_MSG_WELCOME, sizeof(w), 0, 0 };
	w.magic = (flags & 1) ? (uint32_t)take(&in, 4) : IOREQ_MAGIC;
	w.version = IOREQ_VERSION;
	w.features = (uint32_t)take(&in, 1);
	w.nr_vcpus = (uint32_t)take(&in, 1) % (IOREQ_MAX_VCPUS + 2);
	nresp = (flags & 2) ?
			(int)(take(&in, 1) % (IOREQ_MAX_VCPUS + 1)) :
			(int)(w.nr_vcpus > IOREQ_MAX_VCPUS ? IOREQ_MAX_VCPUS :
							     w.nr_vcpus);
	w.shared_size = (flags & 4) ? take(&in, 8) : take(&in, 2) * 64;
	shm_real = (flags & 8)		   ? take(&in, 2) % MAX_SHM :
		   w.shared_size < MAX_SHM ? w.shared_size :
					     MAX_SHM;
	w.ring_offset = (flags & 16) ? take(&in, 8) : take(&in, 1) * 64;
	w.ring_entries = (flags & 32) ? (uint32_t)take(&in, 4) :
					1u << (take(&in, 1) % 12);
	w.gsi = 5;
	w.window_base = (flags & 64) ? take(&in, 8) : 0xd0000000;
	w.window_size = 0x1000;
	m.hdr = (struct ioreq_hdr){ IOREQ_MSG_MEM_MAP, sizeof(m), 0, 0 };
	m.generation = 1;
	m.nr_regions = (uint32_t)take(&in, 1) % 4;
	ram_real = (take(&in, 1) % (MAX_RAM / 4096 + 1)) * 4096;
	for (uint32_t i = 0; i < IOREQ_MAX_MEM_REGIONS; i++) {
		if (flags & 128) {
			m.regions[i].gpa = take(&in, 8);
			m.regions[i].size = take(&in, 8);
			m.regions[i].offset = take(&in, 8);
		} else if (i == 0) {
			m.regions[0].size = ram_real;
		}
	}
	chan_kind = (int)take(&in, 1) % 4;
	for (int i = 0; i < 4; i++)
		a.probe[i] = take(&in, 3) << 4;
	if (in.p - data < 64)
		in.p = data + 64 < in.end ? data + 64 : in.end;

	shm_fd = memfd_of(shm_real);
	ram_fd = memfd_of(ram_real);
	/* The shared page's initial contents. */
	{
		size_t n = (size_t)(in.end - in.p);

		if (n > shm_real)
			n = (size_t)shm_real;
		if (n > 512)
			n = 512;
		if (n && pwrite(shm_fd, in.p, n, 0) != (ssize_t)n)
			__builtin_trap();
		in.p += n;
	}
	if (shm_real)
		shm = mmap(NULL, shm_real, PROT_READ | PROT_WRITE, MAP_SHARED,
			   shm_fd, 0);

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		__builtin_trap();
	a.sock = sv[0];
	pthread_create(&th, NULL, server, &a);

	/* HELLO, then WELCOME with its fds, then MEM_MAP. */
	if (ioreq_recv(sv[1], hello, sizeof(hello), fds, IOREQ_MAX_FDS, &nfds,
		       2000) > 0)
		ioreq_close_fds(fds, nfds);
	efd[0] = shm_fd;
	for (int i = 1; i < 3 + nresp; i++)
		efd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	nefd = 3 + nresp;
	if (w.features & IOREQ_F_IOMMU) {
		/* 0: the real channel; 1: none; 2: an eventfd; 3: a stream
		 * socket. */
		if (chan_kind == 0 || chan_kind == 3) {
			if (socketpair(AF_UNIX,
				       (chan_kind ? SOCK_STREAM :
						    SOCK_SEQPACKET) |
					       SOCK_CLOEXEC,
				       0, ch) < 0)
				__builtin_trap();
			efd[nefd++] = ch[1];
		} else if (chan_kind == 2) {
			ch[1] = eventfd(0, EFD_CLOEXEC);
			efd[nefd++] = ch[1];
		}
	}
	ioreq_send(sv[1], &w, sizeof(w), efd, nefd);
	if (ch[1] >= 0)
		close(ch[1]); /* the server has its own */
	ioreq_send(sv[1], &m, sizeof(m), &ram_fd, 1);

	while (in.end - in.p >= 1) {
		uint8_t op = *in.p++;

		switch (op & 3) {
		case 0: {
			size_t len =
				(size_t)take(&in, 2) % (IOREQ_MAX_MSG + 32);
			uint8_t buf[IOREQ_MAX_MSG + 32] = { 0 };

			if (len > (size_t)(in.end - in.p))
				len = (size_t)(in.end - in.p);
			memcpy(buf, in.p, len);
			in.p += len;
			/* With the RAM memfd: a MEM_MAP after an invalidate,
			 * or fds where none belong. */
			if (op & 16)
				ioreq_send(sv[1], buf, len, &ram_fd, 1);
			else
				send(sv[1], buf, len,
				     MSG_DONTWAIT | MSG_NOSIGNAL);
			break;
		}
		case 1: {
			uint64_t off = take(&in, 2);
			size_t n = (size_t)take(&in, 1) % 25;

			if (n > (size_t)(in.end - in.p))
				n = (size_t)(in.end - in.p);
			if (shm != MAP_FAILED && off + n <= shm_real)
				memcpy(shm + off, in.p, n);
			in.p += n;
			break;
		}
		case 2: {
			uint64_t one = 1;

			if (write(efd[2], &one, sizeof(one)) < 0)
				break;
			break;
		}
		default:
			if ((op & 16) && ch[0] >= 0) {
				size_t len = (size_t)take(&in, 2) %
					     (IOREQ_MAX_MSG + 32);
				uint8_t buf[IOREQ_MAX_MSG + 32] = { 0 };
				int rfds[IOREQ_MAX_FDS], rn;

				if (len > (size_t)(in.end - in.p))
					len = (size_t)(in.end - in.p);
				memcpy(buf, in.p, len);
				in.p += len;
				if (op & 32)
					ioreq_send(ch[0], buf, len, &ram_fd, 1);
				else
					send(ch[0], buf, len,
					     MSG_DONTWAIT | MSG_NOSIGNAL);
				while (ioreq_recv(ch[0], buf, sizeof(buf), rfds,
						  IOREQ_MAX_FDS, &rn, 0) > 0)
					ioreq_close_fds(rfds, rn);
				break;
			}
			usleep(50);
			break;
		}
	}
	usleep(200);
	close(sv[1]); /* the VMM goes away: serving ends */
	if (ch[0] >= 0)
		close(ch[0]);
	pthread_join(th, NULL);
	for (int i = 1; i < 3 + nresp; i++)
		close(efd[i]);
	close(shm_fd);
	close(ram_fd);
	if (shm != MAP_FAILED)
		munmap(shm, shm_real);
	/* Everything the server received is closed again. */
	if (open_fds() != probe)
		__builtin_trap();
	return 0;
}
