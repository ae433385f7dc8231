// SPDX-License-Identifier: MIT
/*
 * wisp-api's metrics thread (src/cli/api_main.c): wakes every period,
 * reads the VM's counters from memory and writes one JSON line to the
 * metrics sink the API opened. The smallest table.
 */
#include "sandbox/seccomp_rules.h"

static const struct sb_rule rules[] = {
	ALLOW(writev, "the metrics line"),
	ALLOW(getrandom, "glibc's malloc randomizes its tcache"),
};

SB_TABLE(sb_table_metrics, "metrics", rules);
