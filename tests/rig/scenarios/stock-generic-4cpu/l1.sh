# the same as stock-cloud-4cpu (one implementation)
. /rig/scenarios/stock-cloud-4cpu/l1.sh
