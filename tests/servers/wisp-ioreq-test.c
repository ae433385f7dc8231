// SPDX-License-Identifier: MIT
/*
 * wisp-ioreq-test: a small IOREQ server for tests and benchmarks, and a
 * deliberately hostile one (--mode) for the VMM's fault tests.
 *
 * Its window (offsets from the assigned base):
 *   0x000 R   magic 0x10c0ffee
 *   0x008 W   sequenced write (synchronous range [0x000, 0x100))
 *   0x010 R   last sequenced value       0x018 R  sequence errors
 *   0x020 R   sequenced writes seen      0x028 R  read counter (+1 per read;
 *             the trigger for --mode misbehaviour)
 *   0x030 R   posted writes seen (writes to the posted range)
 *   0x038 R   of those, how many came through the buffered ring
 *   0x040 R   of those, how many came through a synchronous slot
 *   0x100 W   sequenced write, posted range [0x100, 0x200)
 * A sequenced write must carry last+1; anything else counts an error, so
 * the guest can check that posted and synchronous writes arrive in its
 * program order.
 *
 * Modes (acted on at the first read of 0x028):
 *   normal        answer
 *   noanswer      never answer (the handler blocks)
 *   badstate      write garbage into every slot's state, then block
 *   corrupt-ring  move the ring's tail past its head, then answer
 *   garbage       send a garbage control message, then block (an answer
 *                 would race the VMM's reading of the garbage)
 *   crash         exit at once (a crash with the request in flight)
 *   wrong-slot    answer in every other slot (with 0x41414141), never in
 *                 the one that asked, then block
 *
 * --jail SPEC is what wisp adds when it spawns a server (sandbox/jail.h):
 * the server confines itself once its socket is bound. --probe SPEC then
 * runs tests/jail's probe from inside the jail before the VMM connects.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ioreq/msg.h"
#include "ioreq/server.h"
#include "probe.h"
#include "sandbox/jail.h"

#define MAGIC 0x10c0ffee

static struct wisp_ioreq_server *srv;
static const char *mode = "normal";
static uint64_t last, errors, writes, posted, posted_ring, posted_slot, reads;

static void misbehave(void)
{
	if (!strcmp(mode, "noanswer")) {
		for (;;)
			pause();
	} else if (!strcmp(mode, "badstate")) {
		for (int i = 0; i < srv->nr_vcpus; i++)
			__atomic_store_n(&srv->slots[i].state, 0x77,
					 __ATOMIC_SEQ_CST);
		for (;;)
			pause();
	} else if (!strcmp(mode, "corrupt-ring") && srv->ring) {
		__atomic_store_n(&srv->ring->tail, srv->ring->head + 1000,
				 __ATOMIC_SEQ_CST);
	} else if (!strcmp(mode, "garbage")) {
		uint8_t junk[40];

		memset(junk, 0xa5, sizeof(junk));
		ioreq_send(srv->sock, junk, sizeof(junk), NULL, 0);
		for (;;)
			pause();
	} else if (!strcmp(mode, "crash")) {
		_exit(3);
	} else if (!strcmp(mode, "wrong-slot")) {
		for (int i = 0; i < srv->nr_vcpus; i++) {
			if (__atomic_load_n(&srv->slots[i].state,
					    __ATOMIC_ACQUIRE) !=
			    IOREQ_STATE_NONE)
				continue; /* the asking slot: no answer */
			srv->slots[i].data = 0x41414141;
			__atomic_store_n(&srv->slots[i].state,
					 IOREQ_STATE_IORESP_READY,
					 __ATOMIC_SEQ_CST);
		}
		for (;;)
			pause();
	}
}

/* cpu tells the path: the library passes BUS_CPU_NONE for ring entries
 * and the slot index for synchronous requests. */
static void seq_write(uint64_t v, bool is_posted, int cpu)
{
	if (v != last + 1)
		errors++;
	last = v;
	writes++;
	if (is_posted) {
		posted++;
		if (cpu == BUS_CPU_NONE)
			posted_ring++;
		else
			posted_slot++;
	}
}

static void rd(void *opaque, int cpu, uint64_t off, uint8_t *data, uint32_t len)
{
	uint64_t v = 0;

	switch (off) {
	case 0x000:
		v = MAGIC;
		break;
	case 0x010:
		v = last;
		break;
	case 0x018:
		v = errors;
		break;
	case 0x020:
		v = writes;
		break;
	case 0x028:
		if (reads++ == 0)
			misbehave();
		v = reads;
		break;
	case 0x030:
		v = posted;
		break;
	case 0x038:
		v = posted_ring;
		break;
	case 0x040:
		v = posted_slot;
		break;
	}
	memcpy(data, &v, len);
}

static void wr_sync(void *opaque, int cpu, uint64_t off, const uint8_t *data,
		    uint32_t len)
{
	uint64_t v = 0;

	memcpy(&v, data, len);
	if (off == 0x008)
		seq_write(v, false, cpu);
}

static void wr_posted(void *opaque, int cpu, uint64_t off, const uint8_t *data,
		      uint32_t len)
{
	uint64_t v = 0;

	memcpy(&v, data, len);
	if (off == 0)
		seq_write(v, true, cpu);
}

static const struct bus_ops sync_ops = { .read = rd, .write = wr_sync };
static const struct bus_ops posted_ops = { .read = rd, .write = wr_posted };

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "mode", required_argument, NULL, 'm' },
		{ "no-spin", no_argument, NULL, 'n' },
		{ "jail", required_argument, NULL, 'j' },
		{ "probe", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL, *jail = NULL, *probe = NULL;
	struct jail_server js;
	bool spin = true;
	struct err e;
	int c, lfd, ret;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (c == 's')
			path = optarg;
		else if (c == 'm')
			mode = optarg;
		else if (c == 'n')
			spin = false;
		else if (c == 'j')
			jail = optarg;
		else if (c == 'p')
			probe = optarg;
		else
			return 1;
	}
	if (!path) {
		fprintf(stderr,
			"usage: wisp-ioreq-test --socket PATH [--mode MODE] [--no-spin] "
			"[--jail SPEC] [--probe SPEC]\n");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	lfd = wisp_ioreq_listen(path, &e);
	if (lfd >= 0 && jail &&
	    (jail_server_parse(jail, &js, &e) || jail_server_enter(&js, &e))) {
		fprintf(stderr, "wisp-ioreq-test: %s\n", e.msg);
		return 1;
	}
	if (lfd >= 0 && probe && jail_probe_run(probe)) {
		fprintf(stderr, "wisp-ioreq-test: bad --probe '%s'\n", probe);
		return 1;
	}
	if (lfd < 0 ||
	    wisp_ioreq_accept(lfd, "wisp-ioreq-test",
			      IOREQ_F_BUFFERED_RING | IOREQ_F_DOORBELLS, &srv,
			      &e)) {
		fprintf(stderr, "wisp-ioreq-test: %s\n", e.msg);
		return 1;
	}
	if (!spin)
		srv->spin_ns = 0;
	if (wisp_ioreq_map_range(srv, srv->welcome.window_base, 0x100,
				 IOREQ_RANGE_SYNC, &sync_ops, NULL, &e) ||
	    wisp_ioreq_map_range(srv, srv->welcome.window_base + 0x100, 0x100,
				 IOREQ_RANGE_POSTED, &posted_ops, NULL, &e) ||
	    wisp_ioreq_ready(srv, &e)) {
		fprintf(stderr, "wisp-ioreq-test: %s\n", e.msg);
		return 1;
	}
	ret = wisp_ioreq_serve(srv, &e);
	fprintf(stderr,
		"wisp-ioreq-test: done (%s): %llu sync, %llu posted, %llu sequence errors\n",
		ret ? e.msg : "VMM gone", (unsigned long long)srv->handled_sync,
		(unsigned long long)srv->handled_posted,
		(unsigned long long)errors);
	wisp_ioreq_close(srv);
	close(lfd);
	unlink(path);
	return ret ? 1 : 0;
}
