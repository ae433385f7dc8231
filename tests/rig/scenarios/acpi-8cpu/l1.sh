# the same as acpi-1cpu (one implementation)
. /rig/scenarios/acpi-1cpu/l1.sh
