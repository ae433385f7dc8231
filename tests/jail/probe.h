/* SPDX-License-Identifier: MIT */
/*
 * The jail probe (tests only): from inside a jail, try what a jail must
 * prevent and print one line per attempt, "jail-probe: WHAT: RESULT",
 * RESULT being the errno's name or "ok" (it worked). The tests compare
 * each line with the errno a working jail gives, and run the same probe
 * unjailed to see that each attempt can succeed.
 */
#ifndef WISP_TESTS_JAIL_PROBE_H
#define WISP_TESTS_JAIL_PROBE_H

/* spec: comma-separated file=PATH (open it), tcp=PORT (connect to
 * 127.0.0.1:PORT), unix=PATH (connect to that socket), pid=N (ptrace
 * and signal that process), each repeatable, sleep=S (wait S seconds
 * after the report, for a test to look at the process); the privilege probes
 * (setuid(0), mount, chroot, capabilities, no_new_privs) always run.
 * Returns 0, or -1 when spec is malformed. */
int jail_probe_run(const char *spec);

#endif
