/*
 * The event loop: one epoll set, one thread, JS only from here.
 *
 *   our doorbell eventfd   -> bulkhead.onInterrupt(fromFrontend)
 *   timerfd                -> bulkhead.onTimer()
 *   stream fds             -> bulkhead.onService(h)   (input or room; see services.c)
 *   storage eventfds       -> bulkhead.onService(h)   (asynchronous requests finished; storage-aio.c)
 *   gpio control sockets   -> commands (gpio.c); a host set that moves a line -> bulkhead.onService(h)
 *   TAP fds                -> frames into the switch (packet.c), no JS
 *   packet ports pending   -> bulkhead.onService(h) once the call that delivered returned
 *   ivshmem server socket  -> peer joined/left bookkeeping (no JS)
 *   signalfd (TERM, INT)   -> bulkhead.stop(), fdatasync every storage, exit 0
 *   signalfd (USR1)        -> one stderr line "[fw] stats JSON" (bulkhead.stats(), for tests)
 *   a call returned 1      -> bulkhead.poll() once the other ready events had their turn
 *
 * Busy polling (runtime.busyPollUs / --busy-poll, off by default): after the last event the loop
 * keeps asking epoll without sleeping for that long before it sleeps. A doorbell rung meanwhile
 * then costs the frontend an eventfd write with nobody to wake, and us no wake-up: the round trip
 * loses the scheduler hop on our side, for a core that spins while traffic flows. The window
 * restarts at every event, so an idle partition sleeps again after busyPollUs.
 *
 * Signals arrive through a signalfd, so no JS (and nothing else) ever runs in signal context.
 * Nothing is queued here: an eventfd counter coalesces any number of doorbells into one wake-up,
 * so a frontend that rings without end costs us calls, never memory. An ivshmem doorbell eventfd is
 * watched edge-triggered and never read (bh_lines_edge): each ring while we wait is one event, and
 * the read a level-triggered fd needs would be one more syscall on every doorbell's path.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include "bh.h"

enum { EV_DOORBELL = 1, EV_TIMER, EV_SIGNAL, EV_IVSHMEM, EV_STREAM, EV_TAP };

static int ep = -1, sig_fd = -1, timer_fd = -1;
static struct ivs_client *ivs;
static double busy_poll_ms; /* 0: never */

void bh_loop_set_busy_poll(double us)
{
    busy_poll_ms = us / 1000;
    if (busy_poll_ms > 0) bh_log(BH_LOG_INFO, "busy polling %.0f us after each event", us);
}

/* epoll_wait that, with busy polling on, looks without sleeping until `until` (bh_now_ms) before it sleeps. */
static int wait_events(struct epoll_event *evs, int max, bool ready_now, double until)
{
    if (ready_now) return epoll_wait(ep, evs, max, 0);
    if (busy_poll_ms > 0) {
        do {
            int n = epoll_wait(ep, evs, max, 0);
            if (n != 0) return n;
        } while (bh_now_ms() < until);
    }
    return epoll_wait(ep, evs, max, -1);
}

static uint64_t tag(int type, int handle, int fd)
{
    return (uint64_t)type << 48 | (uint64_t)(uint16_t)handle << 32 | (uint32_t)fd;
}

static void add(int fd, uint32_t events, uint64_t data)
{
    struct epoll_event ev = { .events = events, .data.u64 = data };
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) bh_die("epoll_ctl: %s", strerror(errno));
}

/* services.c tells us which stream fds to watch; events 0 removes. A file that epoll refuses
 * (stdin redirected from a regular file or /dev/null) is simply never reported. */
void bh_loop_watch(int fd, uint32_t events, int handle)
{
    struct epoll_event ev = { .events = events, .data.u64 = tag(EV_STREAM, handle, fd) };
    if (events == 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
        return;
    }
    if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) < 0 && errno == ENOENT) epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

void bh_loop_init(struct ivs_client *c)
{
    ivs = c;
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) bh_die("epoll_create1: %s", strerror(errno));
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sig_fd < 0) bh_die("signalfd: %s", strerror(errno));
    add(sig_fd, EPOLLIN, tag(EV_SIGNAL, 0, sig_fd));
    timer_fd = bh_timer_init();
    add(timer_fd, EPOLLIN, tag(EV_TIMER, 0, timer_fd));
    if (ivs) add(ivs->sock, EPOLLIN, tag(EV_IVSHMEM, 0, ivs->sock));
    bh_services_set_watch(bh_loop_watch);
}

/* A TAP fd: level-triggered, read by packet.c (a bounded burst per wake-up). */
void bh_loop_watch_tap(int fd, int port)
{
    add(fd, EPOLLIN, tag(EV_TAP, port, fd));
}

/* The doorbell fd exists only after the ivshmem handshake; main adds it before the bundle runs. */
void bh_loop_watch_doorbell(void)
{
    int fd = bh_lines_rx_fd();
    if (fd >= 0) add(fd, EPOLLIN | (bh_lines_edge() ? EPOLLET : 0), tag(EV_DOORBELL, 0, fd));
}

static int stop(const char *why)
{
    bh_log(BH_LOG_INFO, "%s: stopping", why);
    bh_js_call("stop", 0, NULL);
    bh_packet_log_counters(BH_LOG_INFO);
    bh_i2c_log_counters(BH_LOG_INFO);
    bh_gpio_log_counters(BH_LOG_INFO);
    bh_storage_flush_all(); /* belt and braces: the firmware's stop() flushed already */
    return 0;
}

/* SIGUSR1: the backend's counters as one line on stderr, written whole (one writer, so a reader
 * that sees the line sees every earlier log line too), then "[fw] storage {json}" (each storage
 * service: sync/async, engine, requests, bounces; services.c), then "[fw] calls {json}": how often each entry
 * point ran and for how long (bh_js_call_times; the benchmarks' JS time per request). */
static void write_line(const char *prefix, char *s)
{
    size_t p = strlen(prefix), n = strlen(s), len = p + n + 1;
    char *line = malloc(len);
    if (line) {
        memcpy(line, prefix, p);
        memcpy(line + p, s, n);
        line[len - 1] = '\n';
        for (size_t off = 0; off < len;) {
            ssize_t w = write(2, line + off, len - off);
            if (w <= 0) break;
            off += (size_t)w;
        }
        free(line);
    }
    free(s);
}

static void dump_stats(void)
{
    char *s = bh_js_stats();
    if (!s) { bh_log(BH_LOG_WARN, "stats: the firmware returned none"); return; }
    write_line("[fw] stats ", s);
    s = bh_storage_stats();
    if (s) write_line("[fw] storage ", s);
    s = bh_js_call_times();
    if (s) write_line("[fw] calls ", s);
}

int bh_loop_run(void)
{
    struct epoll_event evs[16];
    bool pending = false; /* the last call said work was left over */
    double a[1];
    double poll_until = 0;
    for (;;) {
        int n = wait_events(evs, 16, pending || bh_packet_pending(), poll_until);
        if (n < 0) {
            if (errno == EINTR) continue;
            bh_die("epoll_wait: %s", strerror(errno));
        }
        for (int i = 0; i < n; i++) {
            uint64_t t = evs[i].data.u64;
            int type = (int)(t >> 48), handle = (int)(uint16_t)(t >> 32), fd = (int)(uint32_t)t;
            switch (type) {
            case EV_SIGNAL: {
                struct signalfd_siginfo si;
                if (read(sig_fd, &si, sizeof si) != sizeof si) break;
                if (si.ssi_signo == SIGUSR1) { dump_stats(); break; }
                return stop(si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
            }
            case EV_DOORBELL:
                if (bh_lines_edge() || bh_lines_drain()) {
                    a[0] = bh_lines_from_frontend();
                    pending = bh_js_call("onInterrupt", 1, a) == 1;
                }
                break;
            case EV_TIMER:
                if (bh_timer_drain()) pending = bh_js_call("onTimer", 0, NULL) == 1;
                break;
            case EV_STREAM:
                if (bh_service_event(handle, fd, evs[i].events)) {
                    a[0] = handle;
                    pending = bh_js_call("onService", 1, a) == 1;
                }
                break;
            case EV_TAP:
                bh_packet_tap_event(handle);
                break;
            case EV_IVSHMEM:
                if (ivs_process(ivs) < 0) {
                    /* Existing doorbells keep working without the server; new peers cannot join. */
                    bh_log(BH_LOG_WARN, "ivshmem server went away; serving the peers we have");
                    epoll_ctl(ep, EPOLL_CTL_DEL, ivs->sock, NULL);
                }
                break;
            }
        }
        /* Frames delivered to packet ports during the calls above (or from a TAP): one onService
         * per port, after those calls returned. Ports they make pending wait for the next turn. */
        for (uint32_t due = bh_packet_take_pending(); due; due &= due - 1) {
            a[0] = __builtin_ctz(due);
            pending = bh_js_call("onService", 1, a) == 1;
        }
        if (n == 0 && pending) pending = bh_js_call("poll", 0, NULL) == 1;
        /* Storage requests the calls of this turn submitted go to the kernel together; what they
         * finished at once (page-cache hits complete inside the submit) is taken now, not a turn later. */
        bh_storage_flush_submissions();
        for (int round = 0; round < 4; round++) {
            uint32_t due = bh_storage_take_ready();
            if (!due) break;
            for (; due; due &= due - 1) {
                a[0] = __builtin_ctz(due);
                pending = bh_js_call("onService", 1, a) == 1;
            }
            bh_storage_flush_submissions();
        }
        if (busy_poll_ms > 0 && n > 0) poll_until = bh_now_ms() + busy_poll_ms;
    }
}
