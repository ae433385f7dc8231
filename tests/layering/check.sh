#!/usr/bin/env bash
# The layering rules of docs/architecture.md that a compiler cannot see:
# which folders may include which. The link-level rule (device and server
# binaries link without the kvm and vmm libraries) is enforced by meson.
# Prints each violation; exits 1 if there is any.
set -u
src=${1:?usage: check.sh SRC_DIR}
bad=0

# folder: the include prefixes it must not use
rules=(
	"devices:kvm/ vmm/ ioreq/ arch/ boot/ linux/kvm.h"
	"virtio:kvm/ vmm/ ioreq/ devices/ arch/ boot/ vhost_user/ linux/kvm.h"
	"vhost_user:kvm/ vmm/ ioreq/ virtio/ devices/ bus/ mem/ arch/ boot/ linux/kvm.h"
	"ioreq:kvm/ vmm/ arch/ boot/ devices/ linux/kvm.h"
	"servers:kvm/ vmm/ arch/ boot/ linux/kvm.h"
	"bus:kvm/ vmm/ ioreq/ virtio/ devices/ linux/kvm.h"
	"mem:kvm/ vmm/ ioreq/ virtio/ devices/ bus/ linux/kvm.h"
	"util:kvm/ vmm/ ioreq/ virtio/ devices/ bus/ mem/ boot/ arch/ linux/kvm.h"
	"boot:kvm/ vmm/ ioreq/ virtio/ devices/ linux/kvm.h"
	# sandbox: linux/kvm.h for the KVM ioctl numbers its filters allow
	"sandbox:kvm/ vmm/ ioreq/ virtio/ devices/ bus/ mem/ arch/ boot/ api/"
	"api:kvm/ arch/ boot/ bus/ mem/ virtio/ devices/ ioreq/ vmm/vm_priv.h vmm/vcpu.h linux/kvm.h"
)
for r in "${rules[@]}"; do
	dir=${r%%:*}
	[ -d "$src/$dir" ] || { echo "layering: $src/$dir missing"; bad=1; continue; }
	for p in ${r#*:}; do
		hits=$(grep -rnE "#include [\"<]$p" "$src/$dir" || true)
		if [ -n "$hits" ]; then
			echo "layering: src/$dir must not include $p:"
			echo "$hits"
			bad=1
		fi
	done
done
# The server library's public header pulls in nothing of the VMM side.
if grep -nE '#include "(ioreq/vmm|ioreq/client|bus/ioeventfd|vmm/)' \
	"$src/ioreq/server.h"; then
	echo "layering: src/ioreq/server.h includes VMM-side headers"
	bad=1
fi
[ $bad = 0 ] && echo "layering: OK"
exit $bad
