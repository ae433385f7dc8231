# net-tap's flow (its l1.sh) with vhost=on: the kernel's vhost-net runs
# the guest's rx and tx queues; wisp keeps the transport and relays
# vhost's call eventfds into InterruptStatus and the irqfd.
NET_VHOST=1
. /rig/scenarios/net-tap/l1.sh
