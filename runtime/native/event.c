/*
 * The one epoll set, and the set of service handles whose onService is due (bh_event.h).
 *
 * This sits on the bottom floor so that services can ask to be woken without knowing the loop:
 * a service registers an fd with its own callback; the loop (top floor) waits here and calls
 * bh_event_dispatch(), which runs the callback. A callback that returns true, or a service that
 * calls bh_event_due(h) while it works (packet.c delivering a frame), makes onService(h) due;
 * the loop calls it once the current call has returned. Nothing is queued beyond one bit per
 * handle: any number of events on a handle before the loop looks costs one onService.
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include "bh.h"

struct watch {
    int fd; /* -1: free */
    bh_event_fn fn;
    int handle;
};

static int ep = -1;
static struct watch watches[BH_MAX_WATCHES];
static uint32_t due; /* bit h: onService(h) */

void bh_event_init(void)
{
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) bh_die("epoll_create1: %s", strerror(errno));
    for (int i = 0; i < BH_MAX_WATCHES; i++) watches[i].fd = -1;
}

static struct watch *find(int fd)
{
    for (int i = 0; i < BH_MAX_WATCHES; i++)
        if (watches[i].fd == fd) return &watches[i];
    return NULL;
}

void bh_event_watch(int fd, uint32_t events, bh_event_fn fn, int handle)
{
    struct watch *w = find(fd);
    if (events == 0) {
        if (w) {
            epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
            w->fd = -1;
        }
        return;
    }
    bool added = w != NULL;
    if (!w && !(w = find(-1))) bh_die("event: more than %d watched fds", BH_MAX_WATCHES);
    *w = (struct watch){ .fd = fd, .fn = fn, .handle = handle };
    /* The slot and the fd: an event for a slot that was freed and reused within one wake-up is
     * recognised as stale by its fd. */
    struct epoll_event ev = { .events = events, .data.u64 = (uint64_t)(w - watches) << 32 | (uint32_t)fd };
    if (epoll_ctl(ep, added ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) < 0) {
        /* A file that epoll refuses (stdin redirected from a regular file or /dev/null) is simply
         * never reported. */
        if (errno == EPERM) { w->fd = -1; return; }
        bh_die("epoll_ctl(fd %d): %s", fd, strerror(errno));
    }
}

int bh_event_wait(struct epoll_event *evs, int max, int timeout_ms)
{
    return epoll_wait(ep, evs, max, timeout_ms);
}

void bh_event_dispatch(const struct epoll_event *ev)
{
    struct watch *w = &watches[ev->data.u64 >> 32];
    if (w->fd != (int)(uint32_t)ev->data.u64) return; /* unwatched by an earlier callback of the same wake-up */
    if (w->fn(w->fd, ev->events, w->handle)) bh_event_due(w->handle);
}

void bh_event_due(int handle)
{
    if (handle >= 0 && handle < BH_MAX_SERVICES) due |= 1u << handle;
}

bool bh_event_any_due(void) { return due != 0; }

uint32_t bh_event_take_due(void)
{
    uint32_t d = due;
    due = 0;
    return d;
}
