# The same battery as hostile-guest.
. /rig/scenarios/hostile-guest/l2.sh
