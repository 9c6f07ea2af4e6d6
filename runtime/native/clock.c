/* fence, monotonic clock and the one timer of the HAL. */
#include <errno.h>
#include <math.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include "bh.h"

static int timer_fd = -1;

/* JS has no barrier; on a weakly ordered CPU (aarch64) ring writes and index updates need one. */
void bh_fence(void) { atomic_thread_fence(memory_order_seq_cst); }

double bh_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int bh_timer_init(void)
{
    timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (timer_fd < 0) bh_die("timerfd_create: %s", strerror(errno));
    return timer_fd;
}

/* One-shot. A zero it_value would disarm a timerfd, so "now" is 1 ns. */
void bh_timer_set(double ms)
{
    struct itimerspec its = { 0 };
    if (!(ms < 0) && isfinite(ms)) {
        if (ms > 86400e3) ms = 86400e3;
        long long ns = (long long)(ms * 1e6);
        if (ns < 1) ns = 1;
        its.it_value.tv_sec = ns / 1000000000LL;
        its.it_value.tv_nsec = ns % 1000000000LL;
    }
    timerfd_settime(timer_fd, 0, &its, NULL);
}

bool bh_timer_drain(void)
{
    uint64_t v;
    return read(timer_fd, &v, sizeof v) == sizeof v;
}
