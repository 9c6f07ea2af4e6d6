/*
 * GPIO services (docs/hal.md gpio rows, docs/gpio.md): the board's named lines behind
 * bulkhead.gpioSetDirection/SetValue/Sample, and the host's side of them through a control socket.
 * runtime/node/gpio.ts is the same line model in TypeScript (test/shared runs one suite on both).
 *
 *   lines    per line the direction and output value the driver set, and the value the host drives.
 *            A line's level is its output value while it is an output, else the host's value. A
 *            level change (from either side) sets the line's rose/fell latch; gpioSample reports
 *            and clears them, so no edge is lost between samples and any number costs two bits.
 *   control  `control: "unix:PATH"` (or --service NAME=unix:PATH): a listening unix socket, opened
 *            at boot, serving up to GPIO_CLIENTS clients at once with a line protocol
 *              list               one line per GPIO, then "ok"
 *              get LINE           that GPIO's line, then "ok"
 *              set LINE 0|1       drive LINE (a name or a number) from the host, then "ok"
 *            where a GPIO's line is "<n>\t<name>\t<none|out|in>\t<level>\t<output>\t<input>" and
 *            every failure is one "error: <reason>" line. A set that changes a level makes
 *            onService(h) due (event.c): the loop calls it once this event is handled.
 *            `npx bulkhead gpio …` is the client. Replies are written without blocking; a client
 *            that does not read them (its socket buffer full) is dropped, never waited for.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "services.h"

#define GPIO_CLIENTS 4
#define GPIO_LINE_MAX 256 /* longest command line */
#define ROSE 2
#define FELL 4

enum { DIR_NONE = 0, DIR_OUT = 1, DIR_IN = 2 };
static const char *const dir_names[] = { "none", "out", "in" };

struct line {
    char name[BH_GPIO_MAX_NAME + 1];
    uint8_t dir, out, in, edges;
};

struct client {
    int fd;
    size_t len;
    bool overflow; /* the current command line is too long: skip to its end */
    char buf[GPIO_LINE_MAX];
};

struct gpio {
    bool used;
    char name[64];
    int n;
    struct line *lines;
    int listen_fd;
    struct client c[GPIO_CLIENTS];
    unsigned long host_sets;
};

static struct gpio gpios[BH_MAX_SERVICES];
static bool gpio_event(int fd, uint32_t events, int h);
static void watch(int fd, uint32_t events, int h) { bh_event_watch(fd, events, gpio_event, h); }

static struct gpio *get_gpio(int h)
{
    return h >= 0 && h < BH_MAX_SERVICES && gpios[h].used ? &gpios[h] : NULL;
}

static int level(const struct line *l) { return l->dir == DIR_OUT ? l->out : l->in; }

/* Sets one of a line's fields and latches the edge that makes; returns true when the level changed. */
static bool change(struct line *l, uint8_t *field, uint8_t v)
{
    int before = level(l);
    *field = v;
    int after = level(l);
    if (after != before) l->edges |= after ? ROSE : FELL;
    return after != before;
}

int bh_gpio_attach(int h, const char *name, const char *const *names, int n, const char *control)
{
    if (h < 0 || h >= BH_MAX_SERVICES) return -EINVAL;
    struct gpio *g = &gpios[h];
    memset(g, 0, sizeof *g);
    g->listen_fd = -1;
    for (int i = 0; i < GPIO_CLIENTS; i++) g->c[i].fd = -1;
    if (n < 1 || n > BH_GPIO_MAX_LINES) {
        bh_log(BH_LOG_ERROR, "gpio service %s: %d lines, a service has 1..%d", name, n, BH_GPIO_MAX_LINES);
        return -EINVAL;
    }
    g->lines = calloc((size_t)n, sizeof *g->lines);
    if (!g->lines) return -ENOMEM;
    for (int i = 0; i < n; i++) {
        if (strlen(names[i]) > BH_GPIO_MAX_NAME) {
            bh_log(BH_LOG_ERROR, "gpio service %s: line name '%s' is longer than %d", name, names[i], BH_GPIO_MAX_NAME);
            goto fail;
        }
        snprintf(g->lines[i].name, sizeof g->lines[i].name, "%s", names[i]);
        g->lines[i].dir = DIR_IN;
    }
    g->n = n;
    snprintf(g->name, sizeof g->name, "%s", name);
    if (control && *control) {
        if (strncmp(control, "unix:", 5) != 0) {
            bh_log(BH_LOG_ERROR, "gpio service %s: control '%s' is not unix:PATH", name, control);
            goto fail;
        }
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(control + 5) >= sizeof sa.sun_path) {
            bh_log(BH_LOG_ERROR, "gpio service %s: control socket path longer than %zu bytes", name, sizeof sa.sun_path - 1);
            goto fail;
        }
        strcpy(sa.sun_path, control + 5);
        unlink(sa.sun_path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, GPIO_CLIENTS) < 0) {
            bh_log(BH_LOG_ERROR, "gpio service %s: control socket %s: %s", name, sa.sun_path, strerror(errno));
            if (fd >= 0) close(fd);
            goto fail;
        }
        g->listen_fd = fd;
        watch(fd, EPOLLIN, h);
        bh_log(BH_LOG_INFO, "gpio %s: %d lines, control socket %s", name, n, sa.sun_path);
    }
    g->used = true;
    return 0;
fail:
    free(g->lines);
    memset(g, 0, sizeof *g);
    return -EINVAL;
}

int bh_gpio_set_direction(int h, double line, double dir)
{
    struct gpio *g = get_gpio(h);
    if (!g) return -EBADF;
    if (!(line >= 0 && line < g->n) || line != (int)line || !(dir == DIR_NONE || dir == DIR_OUT || dir == DIR_IN)) return -EINVAL;
    struct line *l = &g->lines[(int)line];
    change(l, &l->dir, (uint8_t)dir);
    return 0;
}

int bh_gpio_set_value(int h, double line, double v)
{
    struct gpio *g = get_gpio(h);
    if (!g) return -EBADF;
    if (!(line >= 0 && line < g->n) || line != (int)line || !(v == 0 || v == 1)) return -EINVAL;
    struct line *l = &g->lines[(int)line];
    change(l, &l->out, (uint8_t)v);
    return 0;
}

int bh_gpio_sample(int h, uint32_t *out, size_t room)
{
    struct gpio *g = get_gpio(h);
    if (!g) return -EBADF;
    if (room < (size_t)g->n) return -EINVAL;
    for (int i = 0; i < g->n; i++) {
        out[i] = (uint32_t)level(&g->lines[i]) | g->lines[i].edges;
        g->lines[i].edges = 0;
    }
    return g->n;
}

/* --- the control socket ----------------------------------------------------------------------- */

static void drop(struct gpio *g, int h, struct client *c)
{
    watch(c->fd, 0, h);
    close(c->fd);
    c->fd = -1;
    c->len = 0;
    c->overflow = false;
}

/* Writes a reply whole or drops the client (replies are small; a client that does not read is gone). */
static bool reply(struct gpio *g, int h, struct client *c, const char *s, size_t n)
{
    while (n) {
        ssize_t w = write(c->fd, s, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            drop(g, h, c);
            return false;
        }
        s += w;
        n -= (size_t)w;
    }
    return true;
}

static bool say(struct gpio *g, int h, struct client *c, const char *s) { return reply(g, h, c, s, strlen(s)); }

static int describe(const struct gpio *g, int i, char *buf, size_t room)
{
    const struct line *l = &g->lines[i];
    return snprintf(buf, room, "%d\t%s\t%s\t%d\t%d\t%d\n", i, l->name, dir_names[l->dir], level(l), l->out, l->in);
}

/* The line named or numbered `s`, or -1. */
static int find_line(const struct gpio *g, const char *s)
{
    for (int i = 0; i < g->n; i++)
        if (g->lines[i].name[0] && !strcmp(g->lines[i].name, s)) return i;
    char *end;
    long v = strtol(s, &end, 10);
    if (*s && !*end && v >= 0 && v < g->n) return (int)v;
    return -1;
}

/* Runs one command line; returns true when a line's level changed (onService is due). */
static bool command(struct gpio *g, int h, struct client *c, char *cmd)
{
    char out[512];
    size_t len = strlen(cmd);
    while (len && (cmd[len - 1] == '\r' || cmd[len - 1] == ' ')) cmd[--len] = 0;
    if (!strcmp(cmd, "list")) {
        for (int i = 0; i < g->n; i++) {
            int n = describe(g, i, out, sizeof out);
            if (!reply(g, h, c, out, (size_t)n)) return false;
        }
        say(g, h, c, "ok\n");
        return false;
    }
    if (!strncmp(cmd, "get ", 4)) {
        int i = find_line(g, cmd + 4);
        if (i < 0) {
            int n = snprintf(out, sizeof out, "error: no line '%.200s'\n", cmd + 4);
            reply(g, h, c, out, (size_t)n);
            return false;
        }
        int n = describe(g, i, out, sizeof out);
        if (reply(g, h, c, out, (size_t)n)) say(g, h, c, "ok\n");
        return false;
    }
    if (!strncmp(cmd, "set ", 4)) {
        /* "set NAME V": the value is the last word, the name everything before it (names may hold spaces). */
        char *sp = strrchr(cmd + 4, ' ');
        if (!sp || (strcmp(sp + 1, "0") && strcmp(sp + 1, "1"))) {
            say(g, h, c, "error: usage: set LINE 0|1\n");
            return false;
        }
        *sp = 0;
        int i = find_line(g, cmd + 4);
        if (i < 0) {
            int n = snprintf(out, sizeof out, "error: no line '%.200s'\n", cmd + 4);
            reply(g, h, c, out, (size_t)n);
            return false;
        }
        struct line *l = &g->lines[i];
        bool changed = change(l, &l->in, (uint8_t)(sp[1] - '0'));
        g->host_sets++;
        say(g, h, c, "ok\n");
        return changed;
    }
    say(g, h, c, "error: unknown command (list | get LINE | set LINE 0|1)\n");
    return false;
}

static void accept_client(struct gpio *g, int h)
{
    int fd = accept4(g->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    for (int i = 0; i < GPIO_CLIENTS; i++)
        if (g->c[i].fd < 0) {
            g->c[i].fd = fd;
            g->c[i].len = 0;
            g->c[i].overflow = false;
            watch(fd, EPOLLIN, h);
            return;
        }
    static const char busy[] = "error: too many control clients\n";
    ssize_t r = write(fd, busy, sizeof busy - 1);
    (void)r;
    close(fd);
}

/* event.c's callback for the control socket's fds: true when a host set moved a level. */
static bool gpio_event(int fd, uint32_t events, int h)
{
    struct gpio *g = get_gpio(h);
    if (!g) return false;
    if (fd == g->listen_fd) {
        accept_client(g, h);
        return false;
    }
    struct client *c = NULL;
    for (int i = 0; i < GPIO_CLIENTS; i++)
        if (g->c[i].fd == fd) c = &g->c[i];
    if (!c) return false;
    bool due = false;
    char in[512];
    ssize_t n = read(fd, in, sizeof in);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return false;
    if (n <= 0) {
        drop(g, h, c);
        return false;
    }
    for (ssize_t i = 0; i < n && c->fd >= 0; i++) {
        char ch = in[i];
        if (ch != '\n') {
            if (c->len + 1 < sizeof c->buf) c->buf[c->len++] = ch;
            else c->overflow = true;
            continue;
        }
        c->buf[c->len] = 0;
        if (c->overflow) say(g, h, c, "error: command too long\n");
        else due = command(g, h, c, c->buf) || due;
        c->len = 0;
        c->overflow = false;
    }
    (void)events;
    return due;
}

void bh_gpio_log_counters(int level)
{
    for (int h = 0; h < BH_MAX_SERVICES; h++)
        if (gpios[h].used) bh_log(level, "gpio service %s: %lu host sets", gpios[h].name, gpios[h].host_sets);
}
