/*
 * QuickJS host: one runtime, one context, `globalThis.__hal` (docs/hal.md, ABI 5), and every call
 * into the bundle made under the budgets:
 *   - memory: JS_SetMemoryLimit(limits.memoryBytes) on the whole runtime;
 *   - watchdog: an interrupt handler that stops a call running longer than limits.watchdogMs.
 * A stopped call is reported to the firmware through bulkhead.onFault(kind, detail) and the loop
 * goes on. The context has no std/os modules: quickjs-libc is not even linked.
 *
 * JS runs only from the event loop (loop.c), never from a signal handler and never re-entrantly:
 * the HAL functions below never call back into JS.
 */
#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "js.h"
#include "quickjs.h"
#include "trace.h"

static JSRuntime *rt;
static JSContext *ctx;
static JSValue board_obj;                /* parsed board, after overrides */
static char *board_json;                 /* the same, as the string the bundle gets */
static JSValue entry;                    /* globalThis.bulkhead (set by bh_js_load) */
static struct bh_board board;
static double deadline = INFINITY;
static bool watchdog_fired;

/*
 * QuickJS's own allocator, plus a count of allocations refused at the memory limit. In native
 * QuickJS running out of memory throws a catchable `null`, which the firmware's dispatcher may catch
 * itself (it quarantines the device model): this count is how the runtime still knows and says that
 * the limit was hit, and names a stopped call's fault "memory" without guessing from a message.
 */
static unsigned long limit_refusals;

static void *counting_malloc(JSMallocState *s, size_t size)
{
    if (s->malloc_size + size > s->malloc_limit) { limit_refusals++; return NULL; }
    void *p = malloc(size);
    if (!p) { limit_refusals++; return NULL; }
    s->malloc_count++;
    s->malloc_size += malloc_usable_size(p) + 8;
    return p;
}

static void counting_free(JSMallocState *s, void *p)
{
    if (!p) return;
    s->malloc_count--;
    s->malloc_size -= malloc_usable_size(p) + 8;
    free(p);
}

static void *counting_realloc(JSMallocState *s, void *p, size_t size)
{
    if (!p) return size ? counting_malloc(s, size) : NULL;
    size_t old = malloc_usable_size(p);
    if (size == 0) { counting_free(s, p); return NULL; }
    if (s->malloc_size + size - old > s->malloc_limit) { limit_refusals++; return NULL; }
    void *q = realloc(p, size);
    if (!q) { limit_refusals++; return NULL; }
    s->malloc_size += malloc_usable_size(q) - old;
    return q;
}

static size_t usable_size(const void *p) { return malloc_usable_size((void *)p); }

static const JSMallocFunctions counting_funcs = { counting_malloc, counting_free, counting_realloc, usable_size };

/* Polled by QuickJS every few thousand bytecodes: cheap clock read, no JS, no allocation. */
static int interrupt_handler(JSRuntime *r, void *opaque)
{
    if (bh_now_ms() > deadline) {
        watchdog_fired = true;
        return 1;
    }
    return bh_trace_stop; /* a replay that diverged stops the call at once */
}

static void ensure_ctx(void)
{
    if (ctx) return;
    rt = JS_NewRuntime2(&counting_funcs, NULL);
    if (!rt) bh_die("cannot create the QuickJS runtime");
    JS_SetMaxStackSize(rt, 512 * 1024);
    JS_SetCanBlock(rt, 0); /* no Atomics.wait: it would need futex, which seccomp denies */
    JS_SetInterruptHandler(rt, interrupt_handler, NULL);
    ctx = JS_NewContext(rt);
    if (!ctx) bh_die("cannot create the QuickJS context");
}

/* The message of the pending exception, as "Name: message" (caller frees). */
static char *take_exception(void)
{
    JSValue ex = JS_GetException(ctx);
    const char *s = JS_ToCString(ctx, ex);
    char *out = strdup(s ? s : "(exception without a message)");
    if (s) JS_FreeCString(ctx, s);
    JS_FreeValue(ctx, ex);
    return out;
}

/* --- board ----------------------------------------------------------------------------------- */

static double get_num(JSValueConst obj, const char *path1, const char *path2, double dflt)
{
    JSValue a = JS_GetPropertyStr(ctx, obj, path1);
    JSValue b = path2 ? JS_GetPropertyStr(ctx, a, path2) : JS_DupValue(ctx, a);
    double d = dflt;
    if (JS_IsNumber(b)) JS_ToFloat64(ctx, &d, b);
    JS_FreeValue(ctx, a);
    JS_FreeValue(ctx, b);
    return d;
}

/* An i2c service's targets are named backings too: --service TARGET=PATH sets a 24c02's file. */
static void override_i2c_targets(JSValueConst svc_obj)
{
    JSValue targets = JS_GetPropertyStr(ctx, svc_obj, "targets");
    uint32_t n = 0;
    JSValue len = JS_GetPropertyStr(ctx, targets, "length");
    if (JS_IsArray(ctx, targets)) JS_ToUint32(ctx, &n, len);
    JS_FreeValue(ctx, len);
    for (uint32_t i = 0; i < n && i < BH_I2C_MAX_TARGETS; i++) {
        JSValue t = JS_GetPropertyUint32(ctx, targets, i);
        JSValue nv = JS_GetPropertyStr(ctx, t, "name");
        const char *tn = JS_IsString(nv) ? JS_ToCString(ctx, nv) : NULL;
        const char *ov = tn ? bh_services_override_for(tn) : NULL;
        if (ov) JS_SetPropertyStr(ctx, t, "path", JS_NewString(ctx, ov));
        if (tn) JS_FreeCString(ctx, tn);
        JS_FreeValue(ctx, nv);
        JS_FreeValue(ctx, t);
    }
    JS_FreeValue(ctx, targets);
}

/*
 * A storage override: "PATH" or "ro:PATH", then any of ",ro", ",direct", ",sync", ",async" at the end
 * (the last comma-separated words that are one of these; a path may hold commas otherwise).
 */
static void storage_override(JSValueConst s, const char *ov)
{
    char path[512];
    snprintf(path, sizeof path, "%s", ov);
    bool ro = !strncmp(path, "ro:", 3), direct = false;
    const char *io = NULL;
    for (char *c; (c = strrchr(path, ',')) != NULL;) {
        if (!strcmp(c, ",ro")) ro = true;
        else if (!strcmp(c, ",direct")) direct = true;
        else if (!strcmp(c, ",sync")) io = "sync";
        else if (!strcmp(c, ",async")) io = "async";
        else break;
        *c = 0;
    }
    JS_SetPropertyStr(ctx, s, "path", JS_NewString(ctx, path + (!strncmp(path, "ro:", 3) ? 3 : 0)));
    if (ro) JS_SetPropertyStr(ctx, s, "readOnly", JS_TRUE);
    if (direct) JS_SetPropertyStr(ctx, s, "direct", JS_TRUE);
    if (io) JS_SetPropertyStr(ctx, s, "io", JS_NewString(ctx, io));
}

/* Applies --service overrides (storage: storage_override; stream: backing;
 * packet: "tap:IFNAME" sets tap, "switch:NAME" sets switch; vsock: uds; gpio: the control socket
 * "unix:PATH"; an i2c target's name: its file) so
 * that __hal.boardJson says what the runtime really serves. */
static void apply_overrides(void)
{
    JSValue services = JS_GetPropertyStr(ctx, board_obj, "services");
    if (!JS_IsObject(services)) { JS_FreeValue(ctx, services); return; }
    JSPropertyEnum *props;
    uint32_t n;
    if (JS_GetOwnPropertyNames(ctx, &props, &n, services, JS_GPN_STRING_MASK | JS_GPN_ENUM_ONLY) == 0) {
        for (uint32_t i = 0; i < n; i++) {
            const char *name = JS_AtomToCString(ctx, props[i].atom);
            const char *ov = name ? bh_services_override_for(name) : NULL;
            JSValue s = JS_GetProperty(ctx, services, props[i].atom);
            if (ov && JS_IsObject(s)) {
                JSValue kind = JS_GetPropertyStr(ctx, s, "kind");
                const char *k = JS_ToCString(ctx, kind);
                if (k && !strcmp(k, "storage")) {
                    storage_override(s, ov);
                } else if (k && !strcmp(k, "stream")) {
                    JS_SetPropertyStr(ctx, s, "backing", JS_NewString(ctx, ov));
                } else if (k && !strcmp(k, "packet") && !strncmp(ov, "tap:", 4)) {
                    JS_SetPropertyStr(ctx, s, "tap", JS_NewString(ctx, ov + 4));
                } else if (k && !strcmp(k, "packet") && !strncmp(ov, "switch:", 7)) {
                    JS_SetPropertyStr(ctx, s, "switch", JS_NewString(ctx, ov + 7));
                } else if (k && !strcmp(k, "gpio")) {
                    JS_SetPropertyStr(ctx, s, "control", JS_NewString(ctx, ov));
                } else if (k && !strcmp(k, "vsock")) {
                    JS_SetPropertyStr(ctx, s, "uds", JS_NewString(ctx, ov));
                }
                if (k) JS_FreeCString(ctx, k);
                JS_FreeValue(ctx, kind);
            }
            if (JS_IsObject(s)) override_i2c_targets(s);
            JS_FreeValue(ctx, s);
            if (name) JS_FreeCString(ctx, name);
        }
        for (uint32_t i = 0; i < n; i++) JS_FreeAtom(ctx, props[i].atom);
        js_free(ctx, props);
    }
    JS_FreeValue(ctx, services);
}

void bh_js_init(const char *json, struct bh_board *out)
{
    ensure_ctx();
    board_obj = JS_ParseJSON(ctx, json, strlen(json), "<board>");
    if (JS_IsException(board_obj) || !JS_IsObject(board_obj)) bh_die("board: not a JSON object");
    apply_overrides();
    JSValue str = JS_JSONStringify(ctx, board_obj, JS_UNDEFINED, JS_UNDEFINED);
    const char *s = JS_ToCString(ctx, str);
    board_json = strdup(s ? s : "{}");
    if (s) JS_FreeCString(ctx, s);
    JS_FreeValue(ctx, str);

    memset(&board, 0, sizeof board);
    board.id = (int)get_num(board_obj, "id", NULL, -1);
    JSValue name = JS_GetPropertyStr(ctx, board_obj, "name");
    const char *ns = JS_ToCString(ctx, name);
    snprintf(board.name, sizeof board.name, "%s", ns ? ns : "?");
    if (ns) JS_FreeCString(ctx, ns);
    JS_FreeValue(ctx, name);
    board.window_size = get_num(board_obj, "window", "size", 0);
    board.to_frontend = (int)get_num(board_obj, "lines", "toFrontend", 0);
    board.from_frontend = (int)get_num(board_obj, "lines", "fromFrontend", 1);
    board.memory_bytes = get_num(board_obj, "limits", "memoryBytes", 32 << 20);
    board.watchdog_ms = get_num(board_obj, "limits", "watchdogMs", 500);
    board.busy_poll_us = get_num(board_obj, "runtime", "busyPollUs", 0);
    if (!(board.window_size >= 4096 && board.window_size <= (double)(1u << 31)) || fmod(board.window_size, 4096) != 0)
        bh_die("board %s: window.size must be a multiple of 4096 between 4 KiB and 2 GiB", board.name);
    if (!(board.memory_bytes >= (1 << 20))) bh_die("board %s: limits.memoryBytes too small", board.name);
    if (!(board.watchdog_ms > 0)) bh_die("board %s: limits.watchdogMs must be positive", board.name);
    if (!(board.busy_poll_us >= 0 && board.busy_poll_us <= 1e6))
        bh_die("board %s: runtime.busyPollUs must be between 0 and 1000000", board.name);
    *out = board;
}

const char *bh_js_board_json(void) { return board_json; }

char *bh_json_member(const char *json, size_t len, const char *key)
{
    ensure_ctx();
    char *out = NULL;
    char *copy = malloc(len + 1); /* QuickJS's JSON parser needs a NUL after the text */
    if (!copy) return NULL;
    memcpy(copy, json, len);
    copy[len] = 0;
    JSValue o = JS_ParseJSON(ctx, copy, len, "<manifest>");
    free(copy);
    if (JS_IsException(o)) { free(take_exception()); return NULL; }
    JSValue v = JS_GetPropertyStr(ctx, o, key);
    if (JS_IsString(v)) {
        const char *s = JS_ToCString(ctx, v);
        if (s) { out = strdup(s); JS_FreeCString(ctx, s); }
    } else if (JS_IsObject(v) || JS_IsNumber(v)) {
        JSValue str = JS_JSONStringify(ctx, v, JS_UNDEFINED, JS_UNDEFINED);
        const char *s = JS_ToCString(ctx, str);
        if (s) { out = strdup(s); JS_FreeCString(ctx, s); }
        JS_FreeValue(ctx, str);
    }
    JS_FreeValue(ctx, v);
    JS_FreeValue(ctx, o);
    return out;
}

/* --- __hal ----------------------------------------------------------------------------------- */

static double arg(JSValueConst *argv, int argc, int i)
{
    double d = NAN;
    if (i < argc) JS_ToFloat64(ctx, &d, argv[i]);
    return d;
}

/* A service handle: an integer in [0, BH_MAX_SERVICES), else -1 (no floor(): a libm call per HAL call). */
static int arg_handle(JSValueConst *argv, int argc, int i)
{
    double d = arg(argv, argc, i);
    if (!(d >= 0 && d < BH_MAX_SERVICES)) return -1;
    int h = (int)d;
    return h == d ? h : -1;
}

#define HAL_FN(name) static JSValue name(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv)
#define A(i) arg(argv, argc, i)
#define H(i) arg_handle(argv, argc, i)

HAL_FN(hal_raise) { bh_lines_raise((int)A(0)); return JS_UNDEFINED; }
HAL_FN(hal_fence) { bh_fence(); return JS_UNDEFINED; }
HAL_FN(hal_now) { return JS_NewFloat64(c, bh_now_ms()); }
HAL_FN(hal_set_timer) { bh_timer_set(A(0)); return JS_UNDEFINED; }

HAL_FN(hal_log)
{
    int level = (int)A(0);
    const char *msg = argc > 1 ? JS_ToCString(c, argv[1]) : NULL;
    bh_log(level < 0 ? 0 : level > 3 ? 3 : level, "%s", msg ? msg : "");
    if (msg) JS_FreeCString(c, msg);
    return JS_UNDEFINED;
}

static char *service_str(JSValueConst s, const char *prop)
{
    JSValue v = JS_GetPropertyStr(ctx, s, prop);
    char *out = NULL;
    if (JS_IsString(v)) {
        const char *p = JS_ToCString(ctx, v);
        if (p) { out = strdup(p); JS_FreeCString(ctx, p); }
    }
    JS_FreeValue(ctx, v);
    return out;
}

/* `targets` of an i2c service (docs/i2c.md): name, type, address (a number or "0x50"), path / celsius. */
static int open_i2c(const char *name, JSValueConst s)
{
    static struct bh_i2c_target_cfg cfg[BH_I2C_MAX_TARGETS];
    JSValue targets = JS_GetPropertyStr(ctx, s, "targets");
    JSValue lenv = JS_GetPropertyStr(ctx, targets, "length");
    uint32_t n = 0;
    int r = 0;
    if (!JS_IsArray(ctx, targets) || JS_ToUint32(ctx, &n, lenv) < 0) {
        bh_log(BH_LOG_ERROR, "i2c service %s: targets must be an array", name);
        r = -EINVAL;
    } else if (n > BH_I2C_MAX_TARGETS) {
        bh_log(BH_LOG_ERROR, "i2c service %s: %u targets, at most %d", name, n, BH_I2C_MAX_TARGETS);
        r = -EINVAL;
    }
    for (uint32_t i = 0; r == 0 && i < n; i++) {
        JSValue t = JS_GetPropertyUint32(ctx, targets, i);
        char *tn = service_str(t, "name"), *type = service_str(t, "type"), *path = service_str(t, "path");
        JSValue av = JS_GetPropertyStr(ctx, t, "address");
        double addr = -1;
        if (JS_IsNumber(av)) JS_ToFloat64(ctx, &addr, av);
        else if (JS_IsString(av)) {
            char *as = service_str(t, "address"), *end;
            addr = as && *as ? (double)strtol(as, &end, 0) : -1;
            if (!as || *end) addr = -1;
            free(as);
        }
        JS_FreeValue(ctx, av);
        memset(&cfg[i], 0, sizeof cfg[i]);
        snprintf(cfg[i].name, sizeof cfg[i].name, "%s", tn ? tn : "");
        cfg[i].address = (int)addr;
        cfg[i].celsius = 25;
        if (!tn || !*tn || strlen(tn) > 63) {
            bh_log(BH_LOG_ERROR, "i2c service %s: a target needs a name", name);
            r = -EINVAL;
        } else if (!(addr >= 0x03 && addr <= 0x77) || addr != (int)addr) {
            bh_log(BH_LOG_ERROR, "i2c target %s: address is not a 7-bit address 0x03..0x77", tn);
            r = -EINVAL;
        } else if (type && !strcmp(type, "24c02")) {
            cfg[i].type = BH_I2C_24C02;
            if (!path || strlen(path) >= sizeof cfg[i].path) {
                bh_log(BH_LOG_ERROR, "i2c target %s: a 24c02 needs a path (its contents file)", tn);
                r = -EINVAL;
            } else strcpy(cfg[i].path, path);
        } else if (type && !strcmp(type, "temperature-sensor")) {
            cfg[i].type = BH_I2C_SENSOR;
            JSValue cv = JS_GetPropertyStr(ctx, t, "celsius");
            if (JS_IsNumber(cv)) JS_ToFloat64(ctx, &cfg[i].celsius, cv);
            JS_FreeValue(ctx, cv);
            if (!(cfg[i].celsius >= -128 && cfg[i].celsius < 128)) {
                bh_log(BH_LOG_ERROR, "i2c target %s: celsius is outside -128..127.99", tn);
                r = -EINVAL;
            }
        } else {
            bh_log(BH_LOG_ERROR, "i2c target %s: unknown type %s (24c02, temperature-sensor)", tn, type ? type : "(none)");
            r = -EINVAL;
        }
        free(tn);
        free(type);
        free(path);
        JS_FreeValue(ctx, t);
    }
    JS_FreeValue(ctx, lenv);
    JS_FreeValue(ctx, targets);
    return r < 0 ? r : bh_i2c_open(name, cfg, (int)n);
}

/* `lines` (names, '' for an unnamed line) and `control` of a gpio service (docs/gpio.md). */
static int open_gpio(const char *name, JSValueConst s)
{
    static char names[BH_GPIO_MAX_LINES][BH_GPIO_MAX_NAME + 1];
    static const char *ptrs[BH_GPIO_MAX_LINES];
    JSValue lines = JS_GetPropertyStr(ctx, s, "lines");
    JSValue lenv = JS_GetPropertyStr(ctx, lines, "length");
    uint32_t n = 0;
    int r = 0;
    if (!JS_IsArray(ctx, lines) || JS_ToUint32(ctx, &n, lenv) < 0 || n < 1 || n > BH_GPIO_MAX_LINES) {
        bh_log(BH_LOG_ERROR, "gpio service %s: lines must be an array of 1..%d names", name, BH_GPIO_MAX_LINES);
        r = -EINVAL;
    }
    for (uint32_t i = 0; r == 0 && i < n; i++) {
        JSValue v = JS_GetPropertyUint32(ctx, lines, i);
        const char *str = JS_IsString(v) ? JS_ToCString(ctx, v) : NULL;
        if (!str || strlen(str) > BH_GPIO_MAX_NAME) {
            bh_log(BH_LOG_ERROR, "gpio service %s: line %u: a name is a string of at most %d characters", name, i, BH_GPIO_MAX_NAME);
            r = -EINVAL;
        } else {
            snprintf(names[i], sizeof names[i], "%s", str);
            ptrs[i] = names[i];
        }
        if (str) JS_FreeCString(ctx, str);
        JS_FreeValue(ctx, v);
    }
    JS_FreeValue(ctx, lenv);
    JS_FreeValue(ctx, lines);
    if (r < 0) return r;
    char *control = service_str(s, "control");
    r = bh_gpio_open(name, ptrs, (int)n, control);
    free(control);
    return r;
}

/*
 * Every service of the board is opened once, before the bundle runs and long before seccomp:
 * xxxOpen(name) then only hands out the handle (or the -errno the open gave). The set of backings
 * is fixed at boot, and a firmware that opens a service late needs no open(2) after lock-down.
 */
static struct { char name[64]; char kind[16]; int handle; } opened[BH_MAX_SERVICES];
static int n_opened;

static int open_one(const char *name, const char *kind, JSValueConst s)
{
    if (!strcmp(kind, "storage")) {
        char *path = service_str(s, "path"), *io = service_str(s, "io");
        JSValue ro = JS_GetPropertyStr(ctx, s, "readOnly"), direct = JS_GetPropertyStr(ctx, s, "direct");
        int r = -ENOENT;
        /* io: "async" (the native runtime's default) or "sync" (docs/hal.md). */
        if (io && strcmp(io, "sync") && strcmp(io, "async")) {
            bh_log(BH_LOG_ERROR, "storage %s: io must be \"sync\" or \"async\", not \"%s\"", name, io);
            r = -EINVAL;
        } else if (!path) {
            bh_log(BH_LOG_ERROR, "storage %s: no path", name);
        } else {
            r = bh_storage_open(name, path, JS_ToBool(ctx, ro), JS_ToBool(ctx, direct), !io || !strcmp(io, "async"));
        }
        free(path);
        free(io);
        JS_FreeValue(ctx, ro);
        JS_FreeValue(ctx, direct);
        return r;
    }
    if (!strcmp(kind, "stream")) {
        char *backing = service_str(s, "backing");
        int r = bh_stream_open(name, backing);
        free(backing);
        return r;
    }
    if (!strcmp(kind, "entropy")) return bh_entropy_open(name);
    if (!strcmp(kind, "packet")) {
        char *sw = service_str(s, "switch"), *tap = service_str(s, "tap");
        int r = bh_packet_open(name, sw, tap);
        free(sw);
        free(tap);
        return r;
    }
    if (!strcmp(kind, "i2c")) return open_i2c(name, s);
    if (!strcmp(kind, "gpio")) return open_gpio(name, s);
    if (!strcmp(kind, "vsock")) {
        char *uds = service_str(s, "uds");
        int r = bh_vsock_open(name, uds);
        free(uds);
        return r;
    }
    bh_log(BH_LOG_WARN, "service %s: unknown kind %s", name, kind);
    return -ENOENT;
}

static void preopen_services(void)
{
    JSValue services = JS_GetPropertyStr(ctx, board_obj, "services");
    JSPropertyEnum *props;
    uint32_t n;
    if (JS_IsObject(services) && JS_GetOwnPropertyNames(ctx, &props, &n, services, JS_GPN_STRING_MASK | JS_GPN_ENUM_ONLY) == 0) {
        for (uint32_t i = 0; i < n; i++) {
            const char *name = JS_AtomToCString(ctx, props[i].atom);
            JSValue s = JS_GetProperty(ctx, services, props[i].atom);
            char *kind = JS_IsObject(s) ? service_str(s, "kind") : NULL;
            if (name && kind && strlen(name) < 64 && strlen(kind) < 16 && n_opened < BH_MAX_SERVICES) {
                snprintf(opened[n_opened].name, 64, "%s", name);
                snprintf(opened[n_opened].kind, 16, "%s", kind);
                opened[n_opened].handle = open_one(name, kind, s);
                n_opened++;
            }
            free(kind);
            JS_FreeValue(ctx, s);
            if (name) JS_FreeCString(ctx, name);
            JS_FreeAtom(ctx, props[i].atom);
        }
        js_free(ctx, props);
    }
    JS_FreeValue(ctx, services);
}

/* The handle of a pre-opened service, if it exists with that kind (the capability check). */
static int lookup_service(JSValueConst name_v, const char *kind)
{
    const char *n = JS_ToCString(ctx, name_v);
    int r = -ENOENT;
    for (int i = 0; n && i < n_opened; i++)
        if (!strcmp(opened[i].name, n) && !strcmp(opened[i].kind, kind)) r = opened[i].handle;
    if (n) JS_FreeCString(ctx, n);
    return r;
}

HAL_FN(hal_storage_open) { return JS_NewInt32(c, argc > 0 ? lookup_service(argv[0], "storage") : -ENOENT); }

HAL_FN(hal_storage_info)
{
    double size = -EBADF;
    int ro = 0, depth = 0, block = 512;
    bh_storage_info(H(0), &size, &ro, &depth, &block);
    JSValue a = JS_NewArray(c);
    JS_SetPropertyUint32(c, a, 0, JS_NewFloat64(c, size));
    JS_SetPropertyUint32(c, a, 1, JS_NewInt32(c, ro));
    JS_SetPropertyUint32(c, a, 2, JS_NewInt32(c, depth));
    JS_SetPropertyUint32(c, a, 3, JS_NewInt32(c, block));
    return a;
}

/* The elements of typed array `v` of element size `bpe`, at least `min` of them, or NULL (*abuf to free). */
static void *typed_elems(JSContext *c, JSValueConst v, size_t bpe_want, size_t min, size_t *count, JSValue *abuf)
{
    size_t off, len, bpe, size;
    *abuf = JS_UNDEFINED;
    if (!JS_IsObject(v)) return NULL;
    *abuf = JS_GetTypedArrayBuffer(c, v, &off, &len, &bpe);
    if (JS_IsException(*abuf)) { JS_FreeValue(c, JS_GetException(c)); *abuf = JS_UNDEFINED; return NULL; }
    uint8_t *p = JS_GetArrayBuffer(c, &size, *abuf);
    if (!p || bpe != bpe_want || len < min * bpe || off + len > size) return NULL;
    *count = len / bpe;
    return p + off;
}

/* storageSubmit(h, tag, op, fileOffset, ranges: Uint32Array, n): n (offset, length) pairs of ranges. */
HAL_FN(hal_storage_submit)
{
    double n = A(5);
    size_t count = 0;
    JSValue abuf;
    const uint32_t *ranges = argc > 4 ? typed_elems(c, argv[4], 4, 0, &count, &abuf) : NULL;
    if (argc <= 4) abuf = JS_UNDEFINED;
    int r;
    if (A(2) != BH_AIO_FLUSH && (!ranges || !(n >= 0 && 2 * n <= (double)count))) r = -EINVAL;
    else r = bh_storage_submit(H(0), A(1), A(2), A(3), ranges, n);
    JS_FreeValue(c, abuf);
    return JS_NewInt32(c, r);
}

/* storageComplete(h, out: Int32Array): (tag, result) pairs into out; the number of pairs. */
HAL_FN(hal_storage_complete)
{
    size_t count = 0;
    JSValue abuf;
    int32_t *out = argc > 1 ? typed_elems(c, argv[1], 4, 2, &count, &abuf) : NULL;
    if (argc <= 1) abuf = JS_UNDEFINED;
    int r = out ? bh_storage_complete(H(0), out, (int)(count / 2)) : -EINVAL;
    JS_FreeValue(c, abuf);
    return JS_NewInt32(c, r);
}

/* storageCancel may wait for the disk: that time is the storage's, not the firmware's, so the watchdog's
 * deadline moves on by it. */
HAL_FN(hal_storage_cancel)
{
    double t0 = bh_now_ms();
    int r = bh_storage_cancel(H(0), A(1));
    deadline += bh_now_ms() - t0;
    return JS_NewInt32(c, r);
}

HAL_FN(hal_storage_read) { return JS_NewInt32(c, bh_storage_read(H(0), A(1), A(2), A(3))); }
HAL_FN(hal_storage_write) { return JS_NewInt32(c, bh_storage_write(H(0), A(1), A(2), A(3))); }
HAL_FN(hal_storage_flush) { return JS_NewInt32(c, bh_storage_flush(H(0))); }
HAL_FN(hal_storage_discard) { return JS_NewInt32(c, bh_storage_discard(H(0), A(1), A(2))); }
HAL_FN(hal_storage_write_zeroes) { return JS_NewInt32(c, bh_storage_write_zeroes(H(0), A(1), A(2))); }

HAL_FN(hal_stream_open) { return JS_NewInt32(c, argc > 0 ? lookup_service(argv[0], "stream") : -ENOENT); }
HAL_FN(hal_stream_write) { return JS_NewInt32(c, bh_stream_write(H(0), A(1), A(2))); }
HAL_FN(hal_stream_read) { return JS_NewInt32(c, bh_stream_read(H(0), A(1), A(2))); }

HAL_FN(hal_entropy_open) { return JS_NewInt32(c, argc > 0 ? lookup_service(argv[0], "entropy") : -ENOENT); }
HAL_FN(hal_entropy_read) { return JS_NewInt32(c, bh_entropy_read(H(0), A(1), A(2))); }

HAL_FN(hal_packet_open) { return JS_NewInt32(c, argc > 0 ? lookup_service(argv[0], "packet") : -ENOENT); }
HAL_FN(hal_packet_send) { return JS_NewInt32(c, bh_packet_send(H(0), A(1), A(2), A(3), A(4), A(5))); }
HAL_FN(hal_packet_recv) { return JS_NewInt32(c, bh_packet_recv(H(0), A(1), A(2), A(3))); }
HAL_FN(hal_packet_promote) { return JS_NewInt32(c, bh_packet_promote(H(0), A(1))); }
HAL_FN(hal_packet_set_offloads) { return JS_NewInt32(c, bh_packet_set_offloads(H(0), A(1))); }

/* packetPeek(h) answers a fresh array; packetPeek(h, out), out a Uint32Array of at least 7 elements,
 * writes the same seven values into it and answers 1 (no allocation per frame). packetPeek(h, out, k)
 * peeks the frame k places behind the next one. */
HAL_FN(hal_packet_peek)
{
    double info[7];
    uint32_t *out = NULL;
    JSValue abuf = JS_UNDEFINED;
    if (argc > 1 && JS_IsObject(argv[1])) {
        size_t off, len, bpe, size;
        abuf = JS_GetTypedArrayBuffer(c, argv[1], &off, &len, &bpe);
        if (JS_IsException(abuf)) return abuf;
        uint8_t *p = JS_GetArrayBuffer(c, &size, abuf);
        if (!p || bpe != 4 || len < 7 * 4 || off + len > size) {
            JS_FreeValue(c, abuf);
            return JS_ThrowTypeError(c, "packetPeek: out must be a Uint32Array of at least 7 elements");
        }
        out = (uint32_t *)(p + off);
    }
    int r = bh_packet_peek(H(0), info, argc > 2 && !JS_IsUndefined(argv[2]) ? A(2) : 0);
    if (out) {
        if (r > 0)
            for (int i = 0; i < 7; i++) out[i] = (uint32_t)info[i];
        JS_FreeValue(c, abuf);
        return JS_NewInt32(c, r);
    }
    if (r <= 0) return JS_NewInt32(c, r);
    JSValue a = JS_NewArray(c);
    for (int i = 0; i < 7; i++) JS_SetPropertyUint32(c, a, i, JS_NewFloat64(c, info[i]));
    return a;
}

HAL_FN(hal_vsock_open) { return JS_NewInt32(c, argc > 0 ? lookup_service(argv[0], "vsock") : -ENOENT); }
HAL_FN(hal_vsock_connect) { return JS_NewInt32(c, bh_vsock_connect(H(0), A(1))); }
HAL_FN(hal_vsock_established) { return JS_NewInt32(c, bh_vsock_established(H(0), A(1), A(2))); }
HAL_FN(hal_vsock_send) { return JS_NewInt32(c, bh_vsock_send(H(0), A(1), A(2), A(3))); }
HAL_FN(hal_vsock_recv) { return JS_NewInt32(c, bh_vsock_recv(H(0), A(1), A(2), A(3))); }
HAL_FN(hal_vsock_shutdown) { return JS_NewInt32(c, bh_vsock_shutdown(H(0), A(1), A(2))); }
HAL_FN(hal_vsock_close) { return JS_NewInt32(c, bh_vsock_close(H(0), A(1))); }

/* vsockPoll(h, out): out a Uint32Array; (id, flags, value) triples of connections with news, as many
 * as fit; answers how many. */
HAL_FN(hal_vsock_poll)
{
    size_t off, len, bpe, size;
    if (argc < 2 || !JS_IsObject(argv[1])) return JS_ThrowTypeError(c, "vsockPoll: out must be a Uint32Array");
    JSValue abuf = JS_GetTypedArrayBuffer(c, argv[1], &off, &len, &bpe);
    if (JS_IsException(abuf)) return abuf;
    uint8_t *p = JS_GetArrayBuffer(c, &size, abuf);
    if (!p || bpe != 4 || off + len > size) {
        JS_FreeValue(c, abuf);
        return JS_ThrowTypeError(c, "vsockPoll: out must be a Uint32Array");
    }
    int r = bh_vsock_poll(H(0), (uint32_t *)(p + off), (int)(len / 12));
    JS_FreeValue(c, abuf);
    return JS_NewInt32(c, r);
}

/* A Uint32Array argument's elements (NULL unless argv[i] is one with at least `min` elements). */
static uint32_t *u32_array(JSContext *c, JSValueConst v, size_t min, size_t *count, JSValue *abuf)
{
    size_t off, len, bpe, size;
    *abuf = JS_GetTypedArrayBuffer(c, v, &off, &len, &bpe);
    if (JS_IsException(*abuf)) {
        JS_FreeValue(c, JS_GetException(c));
        *abuf = JS_UNDEFINED;
        return NULL;
    }
    uint8_t *p = JS_GetArrayBuffer(c, &size, *abuf);
    if (!p || bpe != 4 || len < 4 * min || off + len > size) return NULL;
    *count = len / 4;
    return (uint32_t *)(p + off);
}

HAL_FN(hal_i2c_open) { return JS_NewInt32(c, argc > 0 ? lookup_service(argv[0], "i2c") : -ENOENT); }
HAL_FN(hal_gpio_open) { return JS_NewInt32(c, argc > 0 ? lookup_service(argv[0], "gpio") : -ENOENT); }
HAL_FN(hal_gpio_set_direction) { return JS_NewInt32(c, bh_gpio_set_direction(H(0), A(1), A(2))); }
HAL_FN(hal_gpio_set_value) { return JS_NewInt32(c, bh_gpio_set_value(H(0), A(1), A(2))); }

/* i2cTransfer(h, msgs, entries): msgs a Uint32Array of at least 4 x entries words, copied out first. */
HAL_FN(hal_i2c_transfer)
{
    static uint32_t words[4 * BH_I2C_MAX_ENTRIES];
    double entries = A(2);
    if (!(entries >= 0 && entries <= BH_I2C_MAX_ENTRIES) || entries != (int)entries || argc < 2) return JS_NewInt32(c, -EINVAL);
    size_t count;
    JSValue abuf;
    uint32_t *p = u32_array(c, argv[1], 4 * (size_t)entries, &count, &abuf);
    int r = -EINVAL;
    if (p) {
        memcpy(words, p, 16 * (size_t)entries);
        r = bh_i2c_transfer(H(0), words, (int)entries);
    }
    JS_FreeValue(c, abuf);
    return JS_NewInt32(c, r);
}

/* gpioSample(h, out): out a Uint32Array with an element per line. */
HAL_FN(hal_gpio_sample)
{
    size_t count = 0;
    JSValue abuf = JS_UNDEFINED;
    uint32_t *p = argc > 1 ? u32_array(c, argv[1], 0, &count, &abuf) : NULL;
    int r = p ? bh_gpio_sample(H(0), p, count) : -EINVAL;
    JS_FreeValue(c, abuf);
    return JS_NewInt32(c, r);
}

static const struct { const char *name; JSCFunction *fn; int len; } hal_fns[] = {
    { "raise", hal_raise, 1 },           { "fence", hal_fence, 0 },
    { "now", hal_now, 0 },               { "log", hal_log, 2 },
    { "setTimer", hal_set_timer, 1 },
    { "storageOpen", hal_storage_open, 1 },   { "storageInfo", hal_storage_info, 1 },
    { "storageRead", hal_storage_read, 4 },   { "storageWrite", hal_storage_write, 4 },
    { "storageFlush", hal_storage_flush, 1 }, { "storageDiscard", hal_storage_discard, 3 },
    { "storageWriteZeroes", hal_storage_write_zeroes, 3 },
    { "storageSubmit", hal_storage_submit, 6 },  { "storageComplete", hal_storage_complete, 2 },
    { "storageCancel", hal_storage_cancel, 2 },
    { "streamOpen", hal_stream_open, 1 },     { "streamWrite", hal_stream_write, 3 },
    { "streamRead", hal_stream_read, 3 },
    { "entropyOpen", hal_entropy_open, 1 },   { "entropyRead", hal_entropy_read, 3 },
    { "packetOpen", hal_packet_open, 1 },     { "packetSend", hal_packet_send, 6 },
    { "packetRecv", hal_packet_recv, 4 },     { "packetPeek", hal_packet_peek, 3 },
    { "packetPromote", hal_packet_promote, 2 }, { "packetSetOffloads", hal_packet_set_offloads, 2 },
    { "vsockOpen", hal_vsock_open, 1 },       { "vsockConnect", hal_vsock_connect, 2 },
    { "vsockEstablished", hal_vsock_established, 3 }, { "vsockSend", hal_vsock_send, 4 },
    { "vsockRecv", hal_vsock_recv, 4 },       { "vsockShutdown", hal_vsock_shutdown, 3 },
    { "vsockClose", hal_vsock_close, 2 },     { "vsockPoll", hal_vsock_poll, 2 },
    { "i2cOpen", hal_i2c_open, 1 },           { "i2cTransfer", hal_i2c_transfer, 3 },
    { "gpioOpen", hal_gpio_open, 1 },         { "gpioSetDirection", hal_gpio_set_direction, 3 },
    { "gpioSetValue", hal_gpio_set_value, 3 }, { "gpioSample", hal_gpio_sample, 2 },
};

/* With a trace on, every HAL function goes through trace.c, generically (a new service in hal_fns is
 * recorded and replayed with no code of its own); the watchdog does not count the trace's own work. */
static JSValue hal_traced(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv, int magic)
{
    double t0 = bh_now_ms();
    JSValue r = bh_trace_hal(c, hal_fns[magic].name, hal_fns[magic].fn, this_val, argc, argv);
    deadline += bh_now_ms() - t0;
    return r;
}

/* Run before the bundle: the window must never be detached or resized, and __hal never changed. */
static const char harden_js[] =
    "delete ArrayBuffer.prototype.transfer;"
    "delete ArrayBuffer.prototype.transferToFixedLength;"
    "delete ArrayBuffer.prototype.resize;"
    "Object.freeze(globalThis.__hal);";

void bh_js_install_hal(void)
{
    JSValue hal = JS_NewObject(ctx);
    JS_SetPropertyStr(ctx, hal, "abi", JS_NewInt32(ctx, BH_ABI));
    /* No free function: the memory is the shm mapping (or the trace's copy), which lives as long as the process. */
    uint8_t *win = bh_trace_mode ? bh_trace_window() : bh_win.base;
    JS_SetPropertyStr(ctx, hal, "window", JS_NewArrayBuffer(ctx, win, bh_win.size, NULL, NULL, 0));
    JS_SetPropertyStr(ctx, hal, "boardJson", JS_NewString(ctx, board_json));
    int peer = bh_trace_mode == BH_TRACE_REPLAY ? bh_trace_peer_id() : bh_lines_peer_id();
    if (peer >= 0) JS_SetPropertyStr(ctx, hal, "peerId", JS_NewInt32(ctx, peer));
    for (size_t i = 0; i < sizeof hal_fns / sizeof hal_fns[0]; i++)
        JS_SetPropertyStr(ctx, hal, hal_fns[i].name,
                          bh_trace_mode ? JS_NewCFunctionMagic(ctx, hal_traced, hal_fns[i].name, hal_fns[i].len, JS_CFUNC_generic_magic, (int)i)
                                        : JS_NewCFunction(ctx, hal_fns[i].fn, hal_fns[i].name, hal_fns[i].len));
    JSValue global = JS_GetGlobalObject(ctx);
    JS_SetPropertyStr(ctx, global, "__hal", hal);
    JS_FreeValue(ctx, global);
    if (bh_trace_mode != BH_TRACE_REPLAY) preopen_services(); /* a replay answers from the trace */
    JSValue r = JS_Eval(ctx, harden_js, sizeof harden_js - 1, "<harden>", JS_EVAL_TYPE_GLOBAL);
    if (JS_IsException(r)) bh_die("harden: %s", take_exception());
    JS_FreeValue(ctx, r);
    /* Limits apply from here on: the bundle's parse and evaluation count too. */
    JS_SetMemoryLimit(rt, (size_t)board.memory_bytes);
}

void bh_js_load(const uint8_t *code, size_t len, bool is_bytecode, const char *name)
{
    JSValue r;
    bool run = !bh_trace_mode || bh_trace_call(ctx, "(load)", 0, NULL);
    deadline = bh_now_ms() + 10000; /* evaluation: generous, still bounded */
    if (is_bytecode) {
        JSValue fn = JS_ReadObject(ctx, code, len, JS_READ_OBJ_BYTECODE);
        if (JS_IsException(fn)) bh_die("%s: bytecode rejected by QuickJS %s: %s", name, BH_QJS_VERSION, take_exception());
        r = JS_EvalFunction(ctx, fn);
    } else {
        /* JS_Eval needs a NUL after the source. */
        char *src = malloc(len + 1);
        if (!src) bh_die("out of memory");
        memcpy(src, code, len);
        src[len] = 0;
        r = run ? JS_Eval(ctx, src, len, name, JS_EVAL_TYPE_GLOBAL) : JS_UNDEFINED;
        free(src);
    }
    deadline = INFINITY;
    if (bh_trace_mode) {
        const char *kind = NULL;
        char *detail = NULL;
        if (JS_IsException(r)) { kind = "exception"; detail = take_exception(); r = JS_ThrowInternalError(ctx, "%s", detail); }
        bh_trace_return(ctx, JS_IsException(r) ? JS_UNDEFINED : JS_NewInt32(ctx, 0), &kind, &detail);
        free(detail);
        if (bh_trace_mode == BH_TRACE_REPLAY && (bh_trace_stop || !run)) { JS_FreeValue(ctx, r); return; } /* the verdict says why */
    }
    if (JS_IsException(r)) bh_die("%s: firmware failed to load: %s", name, take_exception());
    JS_FreeValue(ctx, r);
    JSValue global = JS_GetGlobalObject(ctx);
    entry = JS_GetPropertyStr(ctx, global, "bulkhead");
    JS_FreeValue(ctx, global);
    if (!JS_IsObject(entry)) bh_die("%s: the firmware did not define globalThis.bulkhead", name);
}

/* --- calls under the budgets ------------------------------------------------------------------ */

unsigned long bh_js_faults;

/*
 * The bundle's entry points, by name. Their atoms are made once (a call does not hash the name), and
 * the first four are timed: SIGUSR1 reports calls and time per entry (bh_js_call_times), which the
 * benchmarks divide by the requests they made.
 */
static const char *const entry_names[] = { "onInterrupt", "poll", "onTimer", "onService", "onFault", "stop", "stats", "start" };
enum { N_ENTRIES = sizeof entry_names / sizeof entry_names[0], N_TIMED = 4 };
static JSAtom entry_atoms[N_ENTRIES];
static struct { unsigned long calls; double ms; } timed[N_TIMED];

static JSValue entry_function(const char *fn_name, int *index)
{
    for (int i = 0; i < N_ENTRIES; i++)
        if (!strcmp(fn_name, entry_names[i])) {
            if (!entry_atoms[i]) entry_atoms[i] = JS_NewAtom(ctx, entry_names[i]);
            *index = i;
            return JS_GetProperty(ctx, entry, entry_atoms[i]);
        }
    *index = -1;
    return JS_GetPropertyStr(ctx, entry, fn_name);
}

static JSValue call_raw(const char *fn_name, int nargs, JSValueConst *argv, bool *faulted, char **why)
{
    int idx;
    JSValue f = entry_function(fn_name, &idx);
    *faulted = false;
    if (!JS_IsFunction(ctx, f)) { JS_FreeValue(ctx, f); return JS_UNDEFINED; }
    if (bh_trace_mode && !bh_trace_call(ctx, fn_name, nargs, argv)) { JS_FreeValue(ctx, f); return JS_UNDEFINED; }
    watchdog_fired = false;
    double t0 = bh_now_ms();
    deadline = t0 + board.watchdog_ms;
    JSValue r = JS_Call(ctx, f, entry, nargs, argv);
    deadline = INFINITY;
    if (idx >= 0 && idx < N_TIMED) {
        timed[idx].calls++;
        timed[idx].ms += bh_now_ms() - t0;
    }
    JS_FreeValue(ctx, f);
    if (JS_IsException(r)) {
        *faulted = true;
        *why = take_exception();
    }
    return r;
}

/* The kind of a stopped call: our own flags, not the text of the exception. */
static const char *fault_kind(unsigned long refusals_before)
{
    if (watchdog_fired) return "watchdog";
    if (limit_refusals != refusals_before) return "memory";
    return "exception";
}

int bh_js_call(const char *fn_name, int nargs, const double *args)
{
    JSValue argv[4];
    if (nargs > 4) nargs = 4;
    for (int i = 0; i < nargs; i++) argv[i] = JS_NewFloat64(ctx, args[i]);
    bool faulted;
    char *why = NULL;
    unsigned long refusals = limit_refusals;
    JSValue r = call_raw(fn_name, nargs, argv, &faulted, &why);
    const char *kind = faulted ? fault_kind(refusals) : NULL;
    if (bh_trace_mode) {
        /* A replay may turn the call into the fault the recorded one had (its kind and detail). */
        bh_trace_return(ctx, faulted ? JS_UNDEFINED : r, &kind, &why);
        if (kind && !faulted) JS_FreeValue(ctx, r);
        faulted = kind != NULL;
    }
    if (!faulted) {
        int32_t v = 0;
        if (JS_IsNumber(r)) JS_ToInt32(ctx, &v, r);
        JS_FreeValue(ctx, r);
        if (limit_refusals != refusals)
            bh_log(BH_LOG_WARN, "%s: memory limit reached (%lu allocations refused); the firmware contained it",
                   fn_name, limit_refusals - refusals);
        return v;
    }
    bh_js_faults++;
    bh_log(BH_LOG_WARN, "%s stopped (%s): %s", fn_name, kind, why);
    JS_RunGC(rt); /* give onFault room after a memory fault */
    char detail[512];
    snprintf(detail, sizeof detail, "%s: %s", fn_name, why);
    free(why);
    JSValue fargs[2] = { JS_NewString(ctx, kind), JS_NewString(ctx, detail) };
    JSValue fr = call_raw("onFault", 2, fargs, &faulted, &why);
    JS_FreeValue(ctx, fargs[0]);
    JS_FreeValue(ctx, fargs[1]);
    if (bh_trace_mode) {
        const char *k = faulted ? "exception" : NULL;
        bh_trace_return(ctx, faulted ? JS_UNDEFINED : fr, &k, &why);
    }
    /* onFault quarantines the device that was running and says whether work is left (1). */
    int32_t left = 0;
    if (faulted) {
        bh_log(BH_LOG_ERROR, "onFault failed too: %s", why);
        free(why);
    } else {
        if (JS_IsNumber(fr)) JS_ToInt32(ctx, &left, fr);
        JS_FreeValue(ctx, fr);
    }
    return left;
}

/* {"onInterrupt":{"calls":N,"us":T},...}: calls into the bundle per entry point and the time they took. */
char *bh_js_call_times(void)
{
    enum { ENTRY_MAX = 128 }; /* name, a 20-digit count and a %.1f of at most ~20 digits fit */
    char *out = malloc(ENTRY_MAX * N_TIMED + 3);
    if (!out) return NULL;
    size_t n = 0;
    out[n++] = '{';
    for (int i = 0; i < N_TIMED; i++) {
        int w = snprintf(out + n, ENTRY_MAX, "%s\"%s\":{\"calls\":%lu,\"us\":%.1f}", i ? "," : "", entry_names[i],
                         timed[i].calls, timed[i].ms * 1e3);
        if (w < 0 || w >= ENTRY_MAX) { free(out); return NULL; }
        n += (size_t)w;
    }
    out[n++] = '}';
    out[n] = 0;
    return out;
}

char *bh_js_stats(void)
{
    bool faulted;
    char *why = NULL;
    JSValue r = call_raw("stats", 0, NULL, &faulted, &why);
    if (bh_trace_mode) {
        const char *k = faulted ? "exception" : NULL;
        bh_trace_return(ctx, faulted ? JS_UNDEFINED : r, &k, &why);
    }
    if (faulted) { free(why); return NULL; }
    const char *s = JS_IsString(r) ? JS_ToCString(ctx, r) : NULL;
    char *out = s ? strdup(s) : NULL;
    if (s) JS_FreeCString(ctx, s);
    JS_FreeValue(ctx, r);
    return out;
}

size_t bh_js_memory_used(void)
{
    JSMemoryUsage mu;
    JS_ComputeMemoryUsage(rt, &mu);
    return (size_t)mu.malloc_size;
}

/* --- compile (image builder) ----------------------------------------------------------------- */

uint8_t *bh_js_compile(const char *src, size_t len, const char *name, size_t *out_len, char *err, size_t errlen)
{
    ensure_ctx();
    char *copy = malloc(len + 1);
    if (!copy) { snprintf(err, errlen, "out of memory"); return NULL; }
    memcpy(copy, src, len);
    copy[len] = 0;
    JSValue fn = JS_Eval(ctx, copy, len, name, JS_EVAL_TYPE_GLOBAL | JS_EVAL_FLAG_COMPILE_ONLY);
    free(copy);
    if (JS_IsException(fn)) {
        char *why = take_exception();
        snprintf(err, errlen, "%s", why);
        free(why);
        return NULL;
    }
    uint8_t *bc = JS_WriteObject(ctx, out_len, fn, JS_WRITE_OBJ_BYTECODE);
    JS_FreeValue(ctx, fn);
    if (!bc) { snprintf(err, errlen, "JS_WriteObject failed"); return NULL; }
    uint8_t *out = malloc(*out_len);
    if (out) memcpy(out, bc, *out_len);
    js_free(ctx, bc);
    return out;
}
