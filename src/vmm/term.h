/* SPDX-License-Identifier: MIT */
/* Raw mode for an interactive console. The saved settings are restored by
 * term_restore() on every exit path, including fatal signals (the handler
 * restores, then re-raises with the default action). */
#ifndef WISP_VMM_TERM_H
#define WISP_VMM_TERM_H

#include <stdbool.h>

/* Puts fd (a tty) into raw mode; returns 0, or -errno if it is not a tty. */
int term_raw_enter(int fd);
void term_restore(void);
bool term_is_raw(void);

#endif
