# the same as acpi-1cpu (one implementation)
. /rig/scenarios/acpi-1cpu/l2.sh
