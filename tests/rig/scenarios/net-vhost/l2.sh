# The guest's part is net-tap's: ping, 64 MiB each way at once, 20 short
# connections and 8 at once; it cannot tell vhost-net from wisp's own device.
. /rig/scenarios/net-tap/l2.sh
