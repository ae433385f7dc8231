# net-tap's flow (its l1.sh) with the device in an out-of-process
# wisp-net (--spawn-server): the same virtio-net code, behind the IOREQ
# protocol, with the tap opened by the server.
NET_OOP=1
. /rig/scenarios/net-tap/l1.sh
