/* Bulkhead native runtime, floor 3: the event loop (loop.c): waits on event.c's set and calls the bundle's entry points. */
#ifndef BH_LOOP_H
#define BH_LOOP_H

#include "js.h"

/* loop.c */
void bh_loop_init(struct ivs_client *ivs);
void bh_loop_watch_doorbell(void);
void bh_loop_set_busy_poll(double us); /* 0 (default): sleep in epoll_wait as soon as nothing is ready */
int bh_loop_run(void);            /* returns the exit status */

#endif
