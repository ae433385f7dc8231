// SPDX-License-Identifier: MIT
#include "snapshot/kvm_state.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

int snap_vm_save(int vm_fd, struct ser_w *w, struct err *e)
{
	struct snap_vm_state s;

	memset(&s, 0, sizeof(s));
	for (uint32_t i = 0; i < 3; i++) {
		s.chip[i].chip_id = i;
		if (ioctl(vm_fd, KVM_GET_IRQCHIP, &s.chip[i]) < 0)
			return err_set(e, -errno,
				       "snapshot: KVM_GET_IRQCHIP %u: %s", i,
				       strerror(errno));
	}
	if (ioctl(vm_fd, KVM_GET_PIT2, &s.pit) < 0)
		return err_set(e, -errno, "snapshot: KVM_GET_PIT2: %s",
			       strerror(errno));
	if (ioctl(vm_fd, KVM_GET_CLOCK, &s.clock) < 0)
		return err_set(e, -errno, "snapshot: KVM_GET_CLOCK: %s",
			       strerror(errno));
	for (int i = 0; i < 3; i++)
		ser_blob(w, &s.chip[i], sizeof(s.chip[i]));
	ser_blob(w, &s.pit, sizeof(s.pit));
	ser_blob(w, &s.clock, sizeof(s.clock));
	return 0;
}

int snap_vm_decode(struct snap_vm_state *s, const uint8_t *p, uint64_t len,
		   struct err *e)
{
	struct ser_r r = { p, (size_t)len, 0, false };

	memset(s, 0, sizeof(*s));
	for (int i = 0; i < 3; i++)
		deser_blob(&r, &s->chip[i], sizeof(s->chip[i]));
	deser_blob(&r, &s->pit, sizeof(s->pit));
	deser_blob(&r, &s->clock, sizeof(s->clock));
	if (!deser_done(&r))
		return err_config(e, -EINVAL, "snapshot: VM section malformed");
	for (uint32_t i = 0; i < 3; i++)
		if (s->chip[i].chip_id != i)
			return err_config(e, -EINVAL,
					  "snapshot: irqchip %u has id %u", i,
					  s->chip[i].chip_id);
	return 0;
}

int snap_vm_apply(int sys_fd, int vm_fd, const struct snap_vm_state *s,
		  struct err *e)
{
	struct kvm_clock_data clock = s->clock;
	int flags = ioctl(sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_ADJUST_CLOCK);

	for (int i = 0; i < 3; i++)
		if (ioctl(vm_fd, KVM_SET_IRQCHIP, &s->chip[i]) < 0)
			return err_config(e, -errno,
					  "restore: KVM_SET_IRQCHIP %d: %s", i,
					  strerror(errno));
	if (ioctl(vm_fd, KVM_SET_PIT2, &s->pit) < 0)
		return err_config(e, -errno, "restore: KVM_SET_PIT2: %s",
				  strerror(errno));
	/* With REALTIME, KVM moves the clock on by the wall-clock time that
	 * passed since the snapshot, so guest time matches the host's. */
	clock.flags = 0;
	if (flags > 0 && (flags & KVM_CLOCK_REALTIME) &&
	    (s->clock.flags & KVM_CLOCK_REALTIME))
		clock.flags = KVM_CLOCK_REALTIME;
	if (ioctl(vm_fd, KVM_SET_CLOCK, &clock) < 0)
		return err_config(e, -errno, "restore: KVM_SET_CLOCK: %s",
				  strerror(errno));
	return 0;
}
