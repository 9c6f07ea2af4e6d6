/* Logging: formatted in memory, written with one write(2) so lines from concurrent processes do not
 * interleave and nothing but write is needed once seccomp is on (no stdio buffering, no ioctl). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "bh.h"

int bh_log_level = BH_LOG_INFO;

static void emit(const char *prefix, const char *fmt, va_list ap)
{
    char buf[1024];
    int n = snprintf(buf, sizeof buf, "%s", prefix);
    int m = vsnprintf(buf + n, sizeof buf - n - 1, fmt, ap);
    if (m < 0) m = 0;
    n += m;
    if (n > (int)sizeof buf - 2) n = sizeof buf - 2;
    buf[n++] = '\n';
    ssize_t r = write(2, buf, n);
    (void)r;
}

void bh_log(int level, const char *fmt, ...)
{
    static const char *const tag[] = { "[fw] error: ", "[fw] warn: ", "[fw] ", "[fw] debug: " };
    if (level > bh_log_level) return;
    if (level < 0 || level > 3) level = 3;
    va_list ap;
    va_start(ap, fmt);
    emit(tag[level], fmt, ap);
    va_end(ap);
}

void bh_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit("bulkhead-fw: ", fmt, ap);
    va_end(ap);
    _exit(2);
}
