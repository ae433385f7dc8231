// SPDX-License-Identifier: MIT
#include "snapshot/kvm_state.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define KVM_PV_MSR_FIRST 0x4b564d00u
#define KVM_PV_MSR_LAST 0x4b564d07u

static int msr_rank(uint32_t idx)
{
	switch (idx) {
	case MSR_IA32_TSC_:
		return 0;
	case MSR_KVM_ASYNC_PF_INT_:
		return 2;
	case MSR_KVM_ASYNC_PF_EN_:
		return 3;
	case MSR_IA32_TSC_DEADLINE_:
		return 4;
	default:
		return 1;
	}
}

void snap_msr_order(struct kvm_msr_entry *m, uint32_t n)
{
	/* Insertion sort by rank: stable, and n is a few hundred. */
	for (uint32_t i = 1; i < n; i++) {
		struct kvm_msr_entry x = m[i];
		uint32_t j = i;

		while (j > 0 && msr_rank(m[j - 1].index) > msr_rank(x.index)) {
			m[j] = m[j - 1];
			j--;
		}
		m[j] = x;
	}
}

int snap_msr_list(int sys_fd, uint32_t **idx, uint32_t *n, struct err *e)
{
	struct kvm_msr_list probe = { 0 }, *l;
	struct kvm_msr_entry *tmp;
	uint32_t *out, cnt;

	*idx = NULL;
	*n = 0;
	if (ioctl(sys_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
		return err_set(e, -errno, "KVM_GET_MSR_INDEX_LIST: %s",
			       strerror(errno));
	if (probe.nmsrs > SNAP_MAX_MSRS - 8)
		return err_set(e, -E2BIG, "KVM lists %u MSRs, more than %d",
			       probe.nmsrs, SNAP_MAX_MSRS - 8);
	l = calloc(1, sizeof(*l) + probe.nmsrs * sizeof(uint32_t));
	out = calloc(probe.nmsrs + 8, sizeof(uint32_t));
	tmp = calloc(probe.nmsrs + 8, sizeof(*tmp));
	if (!l || !out || !tmp) {
		free(l);
		free(out);
		free(tmp);
		return err_set(e, -ENOMEM, "MSR list: out of memory");
	}
	l->nmsrs = probe.nmsrs;
	if (ioctl(sys_fd, KVM_GET_MSR_INDEX_LIST, l) < 0) {
		int ret = -errno;

		free(l);
		free(out);
		free(tmp);
		return err_set(e, ret, "KVM_GET_MSR_INDEX_LIST: %s",
			       strerror(-ret));
	}
	cnt = 0;
	for (uint32_t i = 0; i < l->nmsrs; i++)
		tmp[cnt++].index = l->indices[i];
	/* The PV MSRs are emulated and listed by every KVM that has them;
	 * add any that is missing, reading it tells whether it exists. */
	for (uint32_t m = KVM_PV_MSR_FIRST; m <= KVM_PV_MSR_LAST; m++) {
		bool have = false;

		for (uint32_t i = 0; i < cnt; i++)
			have |= tmp[i].index == m;
		if (!have)
			tmp[cnt++].index = m;
	}
	snap_msr_order(tmp, cnt);
	for (uint32_t i = 0; i < cnt; i++)
		out[i] = tmp[i].index;
	free(tmp);
	free(l);
	*idx = out;
	*n = cnt;
	return 0;
}

static int vget(int fd, unsigned long req, void *arg, const char *what,
		struct err *e)
{
	if (ioctl(fd, req, arg) < 0)
		return err_set(e, -errno, "snapshot: %s: %s", what,
			       strerror(errno));
	return 0;
}

/* KVM_GET_MSRS stops at the first MSR it cannot read (one the guest's
 * CPUID does not have): skip that one and go on from the next. */
static int read_msrs(int fd, const uint32_t *idx, uint32_t n,
		     struct kvm_msrs *m, struct err *e)
{
	uint32_t done = 0;

	m->nmsrs = 0;
	while (done < n) {
		struct kvm_msrs *part;
		uint32_t want = n - done;
		int got;

		part = calloc(1,
			      sizeof(*part) + want * sizeof(part->entries[0]));
		if (!part)
			return err_set(e, -ENOMEM, "MSRs: out of memory");
		part->nmsrs = want;
		for (uint32_t i = 0; i < want; i++)
			part->entries[i].index = idx[done + i];
		got = ioctl(fd, KVM_GET_MSRS, part);
		if (got < 0) {
			int ret = -errno;

			free(part);
			return err_set(e, ret, "snapshot: KVM_GET_MSRS: %s",
				       strerror(-ret));
		}
		for (int i = 0; i < got; i++)
			m->entries[m->nmsrs++] = part->entries[i];
		free(part);
		done += (uint32_t)got + 1; /* got read, the next one failed */
	}
	return 0;
}

int snap_vcpu_save(int fd, int vm_fd, uint32_t id, const uint32_t *msrs,
		   uint32_t nr_msrs, struct ser_w *w, struct err *e)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xcrs xcrs;
	struct kvm_debugregs dregs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events ev;
	struct kvm_mp_state mp;
	struct kvm_msrs *m = NULL;
	uint8_t *xs = NULL;
	int xsize, ret, has_xcrs;
	unsigned long xreq = KVM_GET_XSAVE;

	/* KVM_GET_XSAVE2's size covers AMX and other large state; KVM
	 * without it has the 4 KiB struct kvm_xsave. */
	xsize = ioctl(vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	if (xsize > 0)
		xreq = KVM_GET_XSAVE2;
	if (xsize < (int)sizeof(struct kvm_xsave))
		xsize = sizeof(struct kvm_xsave);
	if ((uint32_t)xsize > SNAP_MAX_XSAVE)
		return err_set(e, -E2BIG, "snapshot: XSAVE area of %d bytes",
			       xsize);
	xs = calloc(1, (size_t)xsize);
	m = calloc(1, sizeof(*m) + nr_msrs * sizeof(m->entries[0]));
	if (!xs || !m) {
		ret = err_set(e, -ENOMEM, "snapshot: out of memory");
		goto out;
	}
	has_xcrs = ioctl(vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0;
	memset(&xcrs, 0, sizeof(xcrs));
	/* mp_state first: it flushes pending LAPIC events into the state
	 * the other reads see. */
	ret = vget(fd, KVM_GET_MP_STATE, &mp, "KVM_GET_MP_STATE", e);
	if (!ret)
		ret = vget(fd, KVM_GET_REGS, &regs, "KVM_GET_REGS", e);
	if (!ret)
		ret = vget(fd, KVM_GET_SREGS, &sregs, "KVM_GET_SREGS", e);
	if (!ret)
		ret = vget(fd, xreq, xs, "KVM_GET_XSAVE", e);
	if (!ret && has_xcrs)
		ret = vget(fd, KVM_GET_XCRS, &xcrs, "KVM_GET_XCRS", e);
	if (!ret)
		ret = vget(fd, KVM_GET_DEBUGREGS, &dregs, "KVM_GET_DEBUGREGS",
			   e);
	if (!ret)
		ret = vget(fd, KVM_GET_LAPIC, &lapic, "KVM_GET_LAPIC", e);
	if (!ret)
		ret = read_msrs(fd, msrs, nr_msrs, m, e);
	if (!ret)
		ret = vget(fd, KVM_GET_VCPU_EVENTS, &ev, "KVM_GET_VCPU_EVENTS",
			   e);
	if (ret)
		goto out;
	ser_u32(w, id);
	ser_blob(w, &regs, sizeof(regs));
	ser_blob(w, &sregs, sizeof(sregs));
	ser_blob(w, xs, (uint32_t)xsize);
	ser_u8(w, has_xcrs ? 1 : 0);
	ser_blob(w, &xcrs, sizeof(xcrs));
	ser_blob(w, &dregs, sizeof(dregs));
	ser_blob(w, &lapic, sizeof(lapic));
	ser_blob(w, &ev, sizeof(ev));
	ser_blob(w, &mp, sizeof(mp));
	ser_u32(w, m->nmsrs);
	for (uint32_t i = 0; i < m->nmsrs; i++) {
		ser_u32(w, m->entries[i].index);
		ser_u64(w, m->entries[i].data);
	}
out:
	free(xs);
	free(m);
	return ret;
}

int snap_vcpu_decode(struct snap_vcpu_state *s, const uint8_t *p, uint64_t len,
		     struct err *e)
{
	struct ser_r r = { p, (size_t)len, 0, false };
	const uint8_t *xs;

	memset(s, 0, sizeof(*s));
	s->id = deser_u32(&r);
	deser_blob(&r, &s->regs, sizeof(s->regs));
	deser_blob(&r, &s->sregs, sizeof(s->sregs));
	xs = deser_blob_ref(&r, SNAP_MAX_XSAVE, &s->xsave_len);
	s->has_xcrs = deser_bool(&r);
	deser_blob(&r, &s->xcrs, sizeof(s->xcrs));
	deser_blob(&r, &s->dregs, sizeof(s->dregs));
	deser_blob(&r, &s->lapic, sizeof(s->lapic));
	deser_blob(&r, &s->events, sizeof(s->events));
	deser_blob(&r, &s->mp, sizeof(s->mp));
	s->nr_msrs = deser_u32(&r);
	if (r.fail || s->nr_msrs > SNAP_MAX_MSRS ||
	    s->xsave_len < sizeof(struct kvm_xsave) ||
	    s->xcrs.nr_xcrs > KVM_MAX_XCRS)
		goto bad;
	s->msrs = calloc(s->nr_msrs ? s->nr_msrs : 1, sizeof(*s->msrs));
	s->xsave = malloc(s->xsave_len);
	if (!s->msrs || !s->xsave) {
		snap_vcpu_state_free(s);
		return err_set(e, -ENOMEM, "snapshot: out of memory");
	}
	memcpy(s->xsave, xs, s->xsave_len);
	for (uint32_t i = 0; i < s->nr_msrs; i++) {
		s->msrs[i].index = deser_u32(&r);
		s->msrs[i].data = deser_u64(&r);
	}
	if (!deser_done(&r)) {
		snap_vcpu_state_free(s);
		goto bad;
	}
	snap_msr_order(s->msrs, s->nr_msrs);
	return 0;
bad:
	memset(s, 0, sizeof(*s));
	return err_config(e, -EINVAL, "snapshot: vCPU section malformed");
}

static int vset(int fd, unsigned long req, const void *arg, int id,
		const char *what, struct err *e)
{
	if (ioctl(fd, req, arg) < 0)
		return err_config(e, -errno,
				  "restore: vCPU %d: %s: %s (a snapshot from "
				  "another host or KVM?)",
				  id, what, strerror(errno));
	return 0;
}

static int write_msrs(int fd, const struct snap_vcpu_state *s, struct err *e)
{
	struct kvm_msrs *m;
	int got;

	m = calloc(1, sizeof(*m) + s->nr_msrs * sizeof(m->entries[0]));
	if (!m)
		return err_set(e, -ENOMEM, "restore: out of memory");
	m->nmsrs = s->nr_msrs;
	memcpy(m->entries, s->msrs, s->nr_msrs * sizeof(m->entries[0]));
	got = ioctl(fd, KVM_SET_MSRS, m);
	free(m);
	if (got < 0)
		return err_set(e, -errno, "restore: vCPU %u: KVM_SET_MSRS: %s",
			       s->id, strerror(errno));
	if ((uint32_t)got != s->nr_msrs)
		return err_config(e, -EINVAL,
				  "restore: vCPU %u: KVM refused MSR 0x%x "
				  "(value 0x%llx)",
				  s->id, s->msrs[got].index,
				  (unsigned long long)s->msrs[got].data);
	return 0;
}

int snap_vcpu_apply(int fd, int vm_fd, const struct snap_vcpu_state *s,
		    struct err *e)
{
	struct kvm_vcpu_events ev = s->events;
	int xsize = ioctl(vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	uint8_t *xs;
	int id = (int)s->id, ret;

	/* KVM_SET_XSAVE reads as many bytes as this KVM's XSAVE area has:
	 * a smaller saved area is padded with zeros (features not in use). */
	if (xsize < (int)s->xsave_len)
		xsize = (int)s->xsave_len;
	xs = calloc(1, (size_t)xsize);
	if (!xs)
		return err_set(e, -ENOMEM, "restore: out of memory");
	memcpy(xs, s->xsave, s->xsave_len);
	/* NMI and SIPI state as they were, not only what KVM flagged. */
	ev.flags |= KVM_VCPUEVENT_VALID_NMI_PENDING |
		    KVM_VCPUEVENT_VALID_SIPI_VECTOR;
	ret = vset(fd, KVM_SET_MP_STATE, &s->mp, id, "KVM_SET_MP_STATE", e);
	if (!ret)
		ret = vset(fd, KVM_SET_REGS, &s->regs, id, "KVM_SET_REGS", e);
	if (!ret)
		ret = vset(fd, KVM_SET_SREGS, &s->sregs, id, "KVM_SET_SREGS",
			   e);
	if (!ret)
		ret = vset(fd, KVM_SET_XSAVE, xs, id, "KVM_SET_XSAVE", e);
	if (!ret && s->has_xcrs)
		ret = vset(fd, KVM_SET_XCRS, &s->xcrs, id, "KVM_SET_XCRS", e);
	if (!ret)
		ret = vset(fd, KVM_SET_DEBUGREGS, &s->dregs, id,
			   "KVM_SET_DEBUGREGS", e);
	/* The LAPIC before the MSRs: TSC_DEADLINE is dropped unless the
	 * timer is already in deadline mode. */
	if (!ret)
		ret = vset(fd, KVM_SET_LAPIC, &s->lapic, id, "KVM_SET_LAPIC",
			   e);
	if (!ret)
		ret = write_msrs(fd, s, e);
	if (!ret)
		ret = vset(fd, KVM_SET_VCPU_EVENTS, &ev, id,
			   "KVM_SET_VCPU_EVENTS", e);
	free(xs);
	return ret;
}

void snap_vcpu_state_free(struct snap_vcpu_state *s)
{
	free(s->xsave);
	free(s->msrs);
	s->xsave = NULL;
	s->msrs = NULL;
}
