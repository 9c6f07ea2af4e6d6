/*
 * The event loop (the top floor but main.c): one thread, JS only from here. It waits on event.c's
 * epoll set, where every fd has a callback, registered by the loop itself or by a service:
 *
 *   our doorbell eventfd   -> bulkhead.onInterrupt(fromFrontend)
 *   timerfd                -> bulkhead.onTimer()
 *   stream fds             -> services.c: input or room makes onService(h) due
 *   storage eventfds       -> services.c: asynchronous requests finished (storage-aio.c) make onService(h) due;
 *                             after every turn the loop submits what the calls queued and takes at once what
 *                             finished inside the submit (page-cache hits)
 *   TAP fds                -> packet.c: frames into the switch; a delivery makes the port's onService(h) due
 *   vsock fds              -> vsock.c: a host client's CONNECT line, connection news make onService(h) due
 *   gpio control sockets   -> gpio.c: commands; a host set that moves a level makes onService(h) due
 *   due service handles    -> bulkhead.onService(h), once the calls of this wake-up returned
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
#include "loop.h"
#include "trace.h"

static int sig_fd = -1, timer_fd = -1;
static struct ivs_client *ivs;
static double busy_poll_ms; /* 0: never */
static bool pending;        /* the last call said work was left over */
static int stop_status = -1; /* >= 0: a signal asked us to stop; the exit status */

void bh_loop_set_busy_poll(double us)
{
    busy_poll_ms = us / 1000;
    if (busy_poll_ms > 0) bh_log(BH_LOG_INFO, "busy polling %.0f us after each event", us);
}

/* bh_event_wait that, with busy polling on, looks without sleeping until `until` (bh_now_ms) before it sleeps. */
static int wait_events(struct epoll_event *evs, int max, bool ready_now, double until)
{
    if (ready_now) return bh_event_wait(evs, max, 0);
    if (busy_poll_ms > 0) {
        do {
            int n = bh_event_wait(evs, max, 0);
            if (n != 0) return n;
        } while (bh_now_ms() < until);
    }
    return bh_event_wait(evs, max, -1);
}

static int stop(const char *why);
static void dump_stats(void);

/* The loop's own fds. They call into the bundle themselves and never make a service handle due. */
static bool on_doorbell(int fd, uint32_t events, int handle)
{
    if (bh_lines_edge() || bh_lines_drain()) {
        double a[1] = { bh_lines_from_frontend() };
        pending = bh_js_call("onInterrupt", 1, a) == 1;
    }
    return false;
}

static bool on_timer(int fd, uint32_t events, int handle)
{
    if (bh_timer_drain()) pending = bh_js_call("onTimer", 0, NULL) == 1;
    return false;
}

static bool on_signal(int fd, uint32_t events, int handle)
{
    struct signalfd_siginfo si;
    if (read(sig_fd, &si, sizeof si) != sizeof si) return false;
    if (si.ssi_signo == SIGUSR1) dump_stats();
    else stop_status = stop(si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
    return false;
}

static bool on_ivshmem(int fd, uint32_t events, int handle)
{
    if (ivs_process(ivs) < 0) {
        /* Existing doorbells keep working without the server; new peers cannot join. */
        bh_log(BH_LOG_WARN, "ivshmem server went away; serving the peers we have");
        bh_event_watch(ivs->sock, 0, NULL, 0);
    }
    return false;
}

void bh_loop_init(struct ivs_client *c)
{
    ivs = c;
    bh_event_init();
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sig_fd < 0) bh_die("signalfd: %s", strerror(errno));
    bh_event_watch(sig_fd, EPOLLIN, on_signal, -1);
    timer_fd = bh_timer_init();
    bh_event_watch(timer_fd, EPOLLIN, on_timer, -1);
    if (ivs) bh_event_watch(ivs->sock, EPOLLIN, on_ivshmem, -1);
}

/* The doorbell fd exists only after the ivshmem handshake; main adds it before the bundle runs. */
void bh_loop_watch_doorbell(void)
{
    int fd = bh_lines_rx_fd();
    if (fd >= 0) bh_event_watch(fd, EPOLLIN | (bh_lines_edge() ? EPOLLET : 0), on_doorbell, -1);
}

static int stop(const char *why)
{
    bh_log(BH_LOG_INFO, "%s: stopping", why);
    bh_js_call("stop", 0, NULL);
    bh_trace_close();
    bh_packet_log_counters(BH_LOG_INFO);
    bh_vsock_log_counters(BH_LOG_INFO);
    bh_i2c_log_counters(BH_LOG_INFO);
    bh_gpio_log_counters(BH_LOG_INFO);
    bh_storage_flush_all(); /* belt and braces: the firmware's stop() flushed already */
    return 0;
}

/* SIGUSR1: the backend's counters as one line on stderr, written whole (one writer, so a reader
 * that sees the line sees every earlier log line too), then "[fw] storage {json}" (each storage
 * service's engine and counters), then "[fw] calls {json}": how often each entry
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
    double poll_until = 0;
    for (;;) {
        int n = wait_events(evs, 16, pending || bh_event_any_due(), poll_until);
        if (n < 0) {
            if (errno == EINTR) continue;
            bh_die("epoll_wait: %s", strerror(errno));
        }
        for (int i = 0; i < n; i++) {
            bh_event_dispatch(&evs[i]);
            if (stop_status >= 0) return stop_status;
        }
        /* Services that reported news during the calls above (a stream's fd, a frame delivered to a
         * packet port, from a TAP or another port): one onService per handle, after those calls
         * returned. Handles they make due wait for the next turn. */
        for (uint32_t due = bh_event_take_due(); due; due &= due - 1) {
            double a[1] = { __builtin_ctz(due) };
            pending = bh_js_call("onService", 1, a) == 1;
        }
        if (n == 0 && pending) pending = bh_js_call("poll", 0, NULL) == 1;
        /* Storage requests the calls of this turn submitted go to the kernel together; what they
         * finished at once (page-cache hits complete inside the submit) is taken now, not a turn later. */
        bh_storage_flush_submissions();
        int round = 0;
        for (; round < 4; round++) {
            uint32_t ready = bh_storage_take_ready();
            if (!ready) break;
            for (; ready; ready &= ready - 1) {
                double a[1] = { __builtin_ctz(ready) };
                pending = bh_js_call("onService", 1, a) == 1;
            }
            bh_storage_flush_submissions();
        }
        /* Completions still waiting after the rounds (inline ones signal nothing): the next turn's. */
        if (round == 4) bh_storage_wake_ready();
        if (busy_poll_ms > 0 && n > 0) poll_until = bh_now_ms() + busy_poll_ms;
    }
}
