/*
 * Trace record and replay at the Board HAL boundary (docs/trace-format.md), the native twin of
 * runtime/node/trace.ts: the same .bhtrace format, written and read here.
 *
 * Record (--record FILE): the firmware's ArrayBuffer is a private copy of the window. At every HAL
 * call and every entry-point call the two are brought in step: the firmware's writes since the last
 * sync go to the shared window (a WRITES record) — merged word by word with a compare-and-swap, so a
 * frontend writing a neighbouring byte of the same word meanwhile loses nothing and no aligned
 * store the firmware made is torn — then the call runs, then whatever the frontend and the services
 * wrote meanwhile is read (each word with one atomic load) into the private copy (an INPUT record).
 * The firmware sees outside bytes change only at HAL calls, and every change is in the trace, so a
 * concurrent frontend cannot make a replay inexact. The one visible effect: the frontend sees the
 * firmware's stores at the next HAL call (fence, raise, ...) instead of at once, the ordering a weakly
 * ordered CPU may show anyway.
 *
 * Replay (--replay TRACE --bundle FILE): the bundle runs against a HAL that answers from the trace and
 * checks every step; the verdict is one JSON line on stdout, which `bulkhead replay` renders.
 *
 * The reader treats the file as hostile: every length is checked against the bytes left and the
 * limits before use; values live in a fixed arena; errors are one line.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "trace.h"

enum { R_NAME = 0x01, R_CALL = 0x02, R_RETURN = 0x03, R_HAL = 0x04, R_WRITES = 0x05, R_INPUT = 0x06, R_END = 0x07, R_HEADER = 0x10, R_INIT = 0x11 };
enum { V_UNDEF, V_UINT, V_NEGINT, V_F64, V_STRING, V_LIST, V_TYPED, V_BYTES, V_TRUE, V_FALSE, V_NULL, V_THROW };
static const char *const typed_kinds[] = { "", "Uint8Array", "Uint16Array", "Uint32Array", "Int32Array", "Float64Array" };
enum { N_KINDS = 6 };

#define MAX_FILE (1u << 30)
#define MAX_WINDOW (256u << 20)
#define MAX_STRING (1u << 20)
#define MAX_STORED_STRING (MAX_STRING / 4) /* what the writer keeps of a longer string */
#define MAX_LIST 4096
#define MAX_DEPTH 4
#define MAX_NAMES 256
#define MERGE_GAP 8
#define BLOCK 256

int bh_trace_mode;
volatile int bh_trace_stop;

struct tv;
struct buf;
static void json_tv(struct buf *b, const struct tv *t);

static uint8_t *shared, *priv, *base; /* record: shared window, firmware's copy, last agreed state */
static size_t wsize;
static double last_ms;

/* ---- spans: where two window images differ ------------------------------------------------------ */

struct span { size_t off, len; };
static struct span *spans;
static size_t n_spans, cap_spans;

static void span_add(size_t off, size_t end)
{
    if (n_spans && off - (spans[n_spans - 1].off + spans[n_spans - 1].len) < MERGE_GAP) {
        spans[n_spans - 1].len = end - spans[n_spans - 1].off;
        return;
    }
    if (n_spans == cap_spans) {
        cap_spans = cap_spans ? cap_spans * 2 : 256;
        spans = realloc(spans, cap_spans * sizeof *spans);
        if (!spans) bh_die("trace: out of memory");
    }
    spans[n_spans++] = (struct span){ off, end - off };
}

/* The spans where `now` differs from `ref`. With `atomic`, `now` is shared memory another party writes:
 * each differing block is first read into `snap` (same layout as the window) one aligned word at a
 * time with an atomic load, and compared from there, so every word is seen whole and once. */
static void diff(const uint8_t *now, const uint8_t *ref, uint8_t *snap)
{
    n_spans = 0;
    for (size_t blk = 0; blk < wsize; blk += BLOCK) {
        if (!memcmp(now + blk, ref + blk, BLOCK)) continue;
        const uint8_t *p = now + blk;
        if (snap) {
            for (size_t w = 0; w < BLOCK; w += 4)
                *(uint32_t *)(snap + blk + w) = __atomic_load_n((const uint32_t *)(now + blk + w), __ATOMIC_RELAXED);
            p = snap + blk;
        }
        for (size_t i = 0; i < BLOCK; i++) {
            if (p[i] == ref[blk + i]) continue;
            size_t s = blk + i;
            while (i < BLOCK && p[i] != ref[blk + i]) i++;
            span_add(s, blk + i);
        }
    }
}

/* ---- writer ------------------------------------------------------------------------------------- */

struct buf { uint8_t *p; size_t len, cap; };
static struct buf out, pl;
static int trace_fd = -1;
static const char *names[MAX_NAMES];
static int n_names;
static unsigned long steps_written;

static void reserve(struct buf *b, size_t n)
{
    if (b->len + n <= b->cap) return;
    size_t cap = b->cap ? b->cap : 65536;
    while (cap < b->len + n) cap *= 2;
    b->p = realloc(b->p, cap);
    if (!b->p) bh_die("trace: out of memory");
    b->cap = cap;
}
static void put_byte(struct buf *b, uint8_t v) { reserve(b, 1); b->p[b->len++] = v; }
static void put_bytes(struct buf *b, const void *p, size_t n) { reserve(b, n); memcpy(b->p + b->len, p, n); b->len += n; }
static void put_uint(struct buf *b, uint64_t v)
{
    reserve(b, 10);
    while (v >= 0x80) { b->p[b->len++] = (uint8_t)(v | 0x80); v >>= 7; }
    b->p[b->len++] = (uint8_t)v;
}

static void put_number(struct buf *b, double d)
{
    if (d == floor(d) && fabs(d) <= 9007199254740991.0 && !(d == 0 && signbit(d))) {
        put_byte(b, d >= 0 ? V_UINT : V_NEGINT);
        put_uint(b, (uint64_t)fabs(d));
    } else {
        put_byte(b, V_F64);
        put_bytes(b, &d, 8); /* both targets are little-endian */
    }
}

/* A string cut at the writer's limit on a UTF-8 character boundary. */
static void put_string(struct buf *b, const char *s, size_t n)
{
    if (n > MAX_STORED_STRING) {
        n = MAX_STORED_STRING;
        while (n && ((uint8_t)s[n] & 0xc0) == 0x80) n--;
    }
    put_byte(b, V_STRING);
    put_uint(b, n);
    put_bytes(b, s, n);
}

static void finish(int type)
{
    put_byte(&out, (uint8_t)type);
    put_uint(&out, pl.len);
    put_bytes(&out, pl.p, pl.len);
    pl.len = 0;
}

static void flush_out(void)
{
    for (size_t off = 0; off < out.len;) {
        ssize_t w = write(trace_fd, out.p + off, out.len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) { bh_log(BH_LOG_ERROR, "trace: write failed (%s): recording stopped", strerror(errno)); bh_trace_mode = BH_TRACE_OFF; break; }
        off += (size_t)w;
    }
    out.len = 0;
}

static int name_id(const char *name)
{
    for (int i = 0; i < n_names; i++)
        if (!strcmp(names[i], name)) return i;
    if (n_names == MAX_NAMES) bh_die("trace: more than %d distinct names", MAX_NAMES);
    names[n_names] = strdup(name);
    put_uint(&pl, (uint64_t)n_names);
    put_string(&pl, name, strlen(name));
    finish(R_NAME);
    return n_names++;
}

static uint64_t dt_us(void)
{
    double now = bh_now_ms(), d = (now - last_ms) * 1000;
    last_ms = now;
    return d > 0 ? (uint64_t)llround(d) : 0;
}

/* The kind of a typed array (its constructor's name), 0 when it is not one. */
static int typed_kind(JSContext *c, JSValueConst v)
{
    JSValue ctor = JS_GetPropertyStr(c, v, "constructor");
    JSValue nm = JS_GetPropertyStr(c, ctor, "name");
    const char *s = JS_ToCString(c, nm);
    int k = 0;
    for (int i = 1; s && i < N_KINDS; i++)
        if (!strcmp(s, typed_kinds[i])) k = i;
    if (s) JS_FreeCString(c, s);
    JS_FreeValue(c, nm);
    JS_FreeValue(c, ctor);
    return k;
}

static double typed_get(const uint8_t *p, int kind, size_t i)
{
    switch (kind) {
    case 1: return p[i];
    case 2: return ((const uint16_t *)p)[i];
    case 3: return ((const uint32_t *)p)[i];
    case 4: return ((const int32_t *)p)[i];
    default: return ((const double *)p)[i];
    }
}

/* Encodes any value the firmware passes or gets at the HAL: generic, so new services need nothing here. */
static void put_value(struct buf *b, JSContext *c, JSValueConst v, int depth)
{
    if (JS_IsUndefined(v)) { put_byte(b, V_UNDEF); return; }
    if (JS_IsNull(v)) { put_byte(b, V_NULL); return; }
    if (JS_IsBool(v)) { put_byte(b, JS_ToBool(c, v) ? V_TRUE : V_FALSE); return; }
    if (JS_IsNumber(v)) { double d; JS_ToFloat64(c, &d, v); put_number(b, d); return; }
    if (JS_IsString(v)) {
        size_t n;
        const char *s = JS_ToCStringLen(c, &n, v);
        put_string(b, s ? s : "", s ? n : 0);
        if (s) JS_FreeCString(c, s);
        return;
    }
    if (depth < MAX_DEPTH && JS_IsArray(c, v) > 0) {
        JSValue l = JS_GetPropertyStr(c, v, "length");
        uint32_t n = 0;
        JS_ToUint32(c, &n, l);
        JS_FreeValue(c, l);
        if (n > MAX_LIST) n = MAX_LIST;
        put_byte(b, V_LIST);
        put_uint(b, n);
        for (uint32_t i = 0; i < n; i++) {
            JSValue e = JS_GetPropertyUint32(c, v, i);
            put_value(b, c, e, depth + 1);
            JS_FreeValue(c, e);
        }
        return;
    }
    if (JS_IsObject(v)) {
        size_t off, len, bpe, size;
        JSValue ab = JS_GetTypedArrayBuffer(c, v, &off, &len, &bpe);
        if (!JS_IsException(ab)) {
            uint8_t *p = JS_GetArrayBuffer(c, &size, ab);
            int k = typed_kind(c, v);
            if (p && k && off + len <= size) {
                size_t n = len / bpe > MAX_LIST ? MAX_LIST : len / bpe;
                put_byte(b, V_TYPED);
                put_byte(b, (uint8_t)k);
                put_uint(b, n);
                for (size_t i = 0; i < n; i++) put_number(b, typed_get(p + off, k, i));
                JS_FreeValue(c, ab);
                return;
            }
            JS_FreeValue(c, ab);
        } else {
            JS_FreeValue(c, JS_GetException(c));
        }
    }
    put_byte(b, V_NULL);
}

static void put_args(struct buf *b, JSContext *c, int argc, JSValueConst *argv)
{
    put_byte(b, V_LIST);
    put_uint(b, (uint64_t)argc);
    for (int i = 0; i < argc; i++) put_value(b, c, argv[i], 1);
}

static void put_ranges(const uint8_t *from)
{
    put_uint(&pl, n_spans);
    size_t end = 0;
    for (size_t i = 0; i < n_spans; i++) {
        put_uint(&pl, spans[i].off - end);
        put_uint(&pl, spans[i].len);
        put_bytes(&pl, from + spans[i].off, spans[i].len);
        end = spans[i].off + spans[i].len;
    }
}

/* The firmware's writes since the last sync: merged into the shared window, recorded as WRITES. */
static void sync_out(void)
{
    diff(priv, base, NULL);
    if (!n_spans) return;
    for (size_t i = 0; i < n_spans; i++) {
        size_t s = spans[i].off & ~(size_t)3, e = (spans[i].off + spans[i].len + 3) & ~(size_t)3;
        for (size_t w = s; w < e; w += 4) {
            uint32_t p = *(uint32_t *)(priv + w), b = *(uint32_t *)(base + w), mask = 0;
            for (int k = 0; k < 4; k++)
                if (((p ^ b) >> (8 * k)) & 0xff) mask |= 0xffu << (8 * k);
            if (!mask) continue;
            uint32_t *sw = (uint32_t *)(shared + w), old = __atomic_load_n(sw, __ATOMIC_RELAXED);
            while (!__atomic_compare_exchange_n(sw, &old, (old & ~mask) | (p & mask), true, __ATOMIC_RELEASE, __ATOMIC_RELAXED)) {}
            *(uint32_t *)(base + w) = (b & ~mask) | (p & mask);
        }
    }
    put_ranges(priv);
    finish(R_WRITES);
}

/* What the frontend and services wrote since the last sync: into the private copy, recorded as INPUT. */
static void sync_in(void)
{
    static uint8_t *snap;
    if (!snap && !(snap = malloc(wsize))) bh_die("trace: out of memory");
    diff(shared, base, snap);
    if (!n_spans) return;
    for (size_t i = 0; i < n_spans; i++) {
        memcpy(priv + spans[i].off, snap + spans[i].off, spans[i].len);
        memcpy(base + spans[i].off, snap + spans[i].off, spans[i].len);
    }
    put_ranges(snap);
    finish(R_INPUT);
}

void bh_trace_record_open(const char *path)
{
    trace_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (trace_fd < 0) bh_die("--record %s: %s", path, strerror(errno));
    bh_trace_mode = BH_TRACE_RECORD;
}

uint8_t *bh_trace_record_begin(const char *board_json, const uint8_t sha[32], bool bytecode, int peer_id)
{
    shared = bh_win.base;
    wsize = bh_win.size;
    priv = aligned_alloc(4096, wsize);
    base = aligned_alloc(4096, wsize);
    uint8_t *zero = calloc(1, wsize);
    if (!priv || !base || !zero) bh_die("trace: cannot allocate window copies (%zu bytes)", wsize);
    /* The window as recording starts (a previous instance may have left it mid-flight): each word read once. */
    for (size_t w = 0; w < wsize; w += 4) *(uint32_t *)(priv + w) = __atomic_load_n((const uint32_t *)(shared + w), __ATOMIC_RELAXED);
    memcpy(base, priv, wsize);
    diff(priv, zero, NULL);
    free(zero);
    put_bytes(&out, "BHTRACE\0", 8);
    put_bytes(&out, "\x01\x00\x00\x00", 4);
    put_string(&pl, "native", 6);
    put_byte(&pl, V_BYTES);
    put_uint(&pl, 32);
    put_bytes(&pl, sha, 32);
    put_string(&pl, bytecode ? "bytecode" : "source", bytecode ? 8 : 6);
    put_string(&pl, board_json, strlen(board_json));
    put_number(&pl, (double)wsize);
    put_number(&pl, BH_ABI);
    put_number(&pl, peer_id);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    put_number(&pl, floor(ts.tv_sec * 1e3 + ts.tv_nsec / 1e6));
    static const char who[] = "bulkhead-fw " BH_QJS_VERSION;
    put_string(&pl, who, sizeof who - 1);
    finish(R_HEADER);
    put_ranges(base);
    finish(R_INIT);
    flush_out();
    last_ms = bh_now_ms();
    return priv;
}

/* ---- reader ------------------------------------------------------------------------------------- */

struct tv {
    uint8_t tag, kind;
    double num;
    const uint8_t *s; /* string or bytes */
    uint32_t len;     /* their length, or list/typed element count */
    struct tv *items;
};

struct rec {
    int type, index;
    size_t at;
    uint64_t dt, u;   /* u: NAME id, END steps */
    int name;
    struct tv args, value, fault, outs;
    const uint8_t *ranges; size_t ranges_len; /* validated, applied later */
};

static const uint8_t *tr;   /* the trace file */
static size_t tr_len, tr_pos;
static int rec_index;
static char err[512];
static struct tv arena[2][1 << 16]; /* two records' values: the one being used and the one peeked */
static int arena_side, arena_used;
static const char *rnames[MAX_NAMES];
static int n_rnames;
static size_t hdr_window;

struct cur { const uint8_t *p, *end; bool bad; };

static void failf(struct cur *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void failf(struct cur *c, const char *fmt, ...)
{
    if (c) c->bad = true;
    if (err[0]) return;
    int n = snprintf(err, sizeof err, "byte %zu (record %d): ", tr_pos, rec_index);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, sizeof err - (size_t)n, fmt, ap);
    va_end(ap);
}

static uint8_t get_byte(struct cur *c)
{
    if (c->bad || c->p >= c->end) { failf(c, "record ends early"); return 0; }
    return *c->p++;
}

static uint64_t get_uint(struct cur *c)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        uint8_t x = get_byte(c);
        if (c->bad) return 0;
        v |= (uint64_t)(x & 0x7f) << (7 * i);
        if (!(x & 0x80)) {
            if (v > 9007199254740991ull) { failf(c, "integer above 2^53"); return 0; }
            return v;
        }
    }
    failf(c, "integer longer than 8 bytes");
    return 0;
}

static const uint8_t *take(struct cur *c, uint64_t n)
{
    if (c->bad) return NULL;
    if (n > (uint64_t)(c->end - c->p)) { failf(c, "needs %llu bytes, %zu left in the record", (unsigned long long)n, (size_t)(c->end - c->p)); return NULL; }
    const uint8_t *p = c->p;
    c->p += n;
    return p;
}

static struct tv *alloc_tv(struct cur *c, size_t n)
{
    if (arena_used + n > sizeof arena[0] / sizeof arena[0][0]) { failf(c, "record holds too many values"); return NULL; }
    struct tv *t = &arena[arena_side][arena_used];
    arena_used += (int)n;
    return t;
}

/* Well-formed UTF-8 (lead byte, then the continuation bytes it announces, all inside the string). */
static bool utf8_ok(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint8_t x = s[i];
        size_t k = x < 0x80 ? 0 : (x & 0xe0) == 0xc0 ? 1 : (x & 0xf0) == 0xe0 ? 2 : (x & 0xf8) == 0xf0 ? 3 : 4;
        if (k == 4 || i + k >= n) return false;
        for (size_t j = 1; j <= k; j++)
            if ((s[i + j] & 0xc0) != 0x80) return false;
        i += k + 1;
    }
    return true;
}

static void get_value(struct cur *c, struct tv *t, int depth)
{
    memset(t, 0, sizeof *t);
    t->tag = get_byte(c);
    if (c->bad) return;
    switch (t->tag) {
    case V_UNDEF: case V_NULL: case V_TRUE: case V_FALSE: return;
    case V_UINT: t->num = (double)get_uint(c); return;
    case V_NEGINT: t->num = -(double)get_uint(c); return;
    case V_F64: { const uint8_t *p = take(c, 8); if (p) memcpy(&t->num, p, 8); return; }
    case V_STRING: case V_BYTES: {
        uint64_t n = get_uint(c);
        if (t->tag == V_STRING && n > MAX_STRING) { failf(c, "string of %llu bytes (limit %u)", (unsigned long long)n, MAX_STRING); return; }
        t->s = take(c, n);
        t->len = (uint32_t)n;
        if (t->s && t->tag == V_STRING && !utf8_ok(t->s, n)) failf(c, "string is not UTF-8");
        return;
    }
    case V_LIST: case V_TYPED: {
        if (depth >= MAX_DEPTH) { failf(c, "values nested too deep"); return; }
        if (t->tag == V_TYPED) {
            t->kind = get_byte(c);
            if (!c->bad && !(t->kind >= 1 && t->kind < N_KINDS)) { failf(c, "unknown typed-array kind %d", t->kind); return; }
        }
        uint64_t n = get_uint(c);
        if (c->bad) return;
        if (n > MAX_LIST || n > (uint64_t)(c->end - c->p)) { failf(c, "list of %llu elements (limit %d, %zu bytes left)", (unsigned long long)n, MAX_LIST, (size_t)(c->end - c->p)); return; }
        t->len = (uint32_t)n;
        t->items = alloc_tv(c, n);
        for (uint32_t i = 0; t->items && i < n && !c->bad; i++) {
            get_value(c, &t->items[i], depth + 1);
            if (t->tag == V_TYPED && !c->bad && t->items[i].tag != V_UINT && t->items[i].tag != V_NEGINT && t->items[i].tag != V_F64) failf(c, "typed array holds a non-number");
        }
        return;
    }
    case V_THROW: {
        struct tv *m = alloc_tv(c, 1);
        if (!m) return;
        get_value(c, m, depth + 1);
        if (!c->bad && m->tag != V_STRING) failf(c, "exception without a message");
        t->items = m;
        return;
    }
    default: failf(c, "unknown value tag %d", t->tag);
    }
}

/* Validates the ranges of a WRITES/INPUT/INIT payload against the window. */
static void check_ranges(struct cur *c)
{
    uint64_t n = get_uint(c), end = 0;
    if (!c->bad && n > (uint64_t)(c->end - c->p)) { failf(c, "%llu ranges in %zu bytes", (unsigned long long)n, (size_t)(c->end - c->p)); return; }
    for (uint64_t i = 0; i < n && !c->bad; i++) {
        uint64_t off = end + get_uint(c), len = get_uint(c);
        if (c->bad) return;
        if (len == 0 || off + len > hdr_window) { failf(c, "range [%llu +%llu] outside the %zu-byte window", (unsigned long long)off, (unsigned long long)len, hdr_window); return; }
        take(c, len);
        end = off + len;
    }
    if (!c->bad && c->p != c->end) failf(c, "%zu bytes after the ranges", (size_t)(c->end - c->p));
}

static void apply_ranges(const uint8_t *p, size_t len, uint8_t *a, uint8_t *b)
{
    struct cur c = { p, p + len, false };
    uint64_t n = get_uint(&c), end = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t off = end + get_uint(&c), l = get_uint(&c);
        const uint8_t *d = take(&c, l);
        if (a) memcpy(a + off, d, l);
        if (b) memcpy(b + off, d, l);
        end = off + l;
    }
}

/* Reads the next record (NULL at the end or on an error: `err` says which). */
static bool next_record(struct rec *r)
{
    if (err[0] || tr_pos >= tr_len) return false;
    struct cur h = { tr + tr_pos, tr + tr_len, false };
    memset(r, 0, sizeof *r);
    r->type = get_byte(&h);
    uint64_t len = get_uint(&h);
    if (h.bad) { err[0] = 0; failf(NULL, "truncated (the record's length is cut off)"); return false; }
    if (len > (uint64_t)(h.end - h.p)) { failf(NULL, "truncated (the record needs %llu bytes, the file has %zu more)", (unsigned long long)len, (size_t)(h.end - h.p)); return false; }
    struct cur c = { h.p, h.p + len, false };
    r->at = tr_pos;
    r->index = rec_index;
    arena_side ^= 1;
    arena_used = 0;
    switch (r->type) {
    case R_NAME: {
        r->u = get_uint(&c);
        struct tv n;
        get_value(&c, &n, 0);
        if (!c.bad && (r->u != (uint64_t)n_rnames || n_rnames >= MAX_NAMES || n.tag != V_STRING)) failf(&c, "name id %llu out of sequence", (unsigned long long)r->u);
        if (!c.bad) {
            char *s = malloc(n.len + 1);
            if (!s) bh_die("trace: out of memory");
            memcpy(s, n.s, n.len);
            s[n.len] = 0;
            rnames[n_rnames++] = s;
        }
        break;
    }
    case R_CALL: case R_HAL:
        r->dt = get_uint(&c);
        r->name = (int)get_uint(&c);
        if (!c.bad && r->name >= n_rnames) failf(&c, "name id %d used before its NAME record", r->name);
        get_value(&c, &r->args, 0);
        if (!c.bad && r->args.tag != V_LIST) failf(&c, "expected a list of values");
        if (r->type == R_HAL) {
            get_value(&c, &r->value, 0);
            get_value(&c, &r->outs, 0);
            if (!c.bad && r->outs.tag != V_LIST) failf(&c, "expected a list of out-parameters");
        }
        break;
    case R_RETURN:
        r->dt = get_uint(&c);
        get_value(&c, &r->value, 0);
        get_value(&c, &r->fault, 0);
        if (!c.bad && r->fault.tag != V_UNDEF && !(r->fault.tag == V_LIST && r->fault.len == 2 && r->fault.items[0].tag == V_STRING && r->fault.items[1].tag == V_STRING))
            failf(&c, "fault is not [kind, detail]");
        break;
    case R_WRITES: case R_INPUT: case R_INIT:
        r->ranges = c.p;
        r->ranges_len = len;
        check_ranges(&c);
        break;
    case R_END:
        r->u = get_uint(&c);
        break;
    case R_HEADER: failf(&c, "a second HEADER"); break;
    default: failf(&c, "unknown record type 0x%x", r->type);
    }
    if (!c.bad && (r->type == R_CALL || r->type == R_HAL || r->type == R_RETURN) && c.p != c.end) failf(&c, "%zu stray bytes at the end of the record", (size_t)(c.end - c.p));
    if (c.bad) return false;
    tr_pos += (size_t)(c.end - (tr + tr_pos));
    rec_index++;
    return true;
}

/* ---- replay ------------------------------------------------------------------------------------- */

static struct rec peeked;
static bool have_peeked, saw_end, stopping;
static uint8_t *expected;
static unsigned long steps_done, calls_done;
static char current_call[256] = "(none)";
static struct buf verdict; /* the divergence object, JSON */
static bool diverged;
static int peer_from_trace = -1;

static struct rec *peek(void)
{
    while (!have_peeked) {
        if (!next_record(&peeked)) return NULL;
        if (peeked.type != R_NAME) have_peeked = true;
    }
    return &peeked;
}

static void consume(void)
{
    have_peeked = false;
    if (peeked.type == R_CALL || peeked.type == R_HAL || peeked.type == R_RETURN) steps_done++;
    if (peeked.type == R_END) saw_end = true;
}

static void take_writes(void)
{
    struct rec *r = peek();
    if (r && r->type == R_WRITES) { apply_ranges(r->ranges, r->ranges_len, expected, NULL); consume(); }
}

static void take_input(void)
{
    struct rec *r = peek();
    if (r && r->type == R_INPUT) { apply_ranges(r->ranges, r->ranges_len, expected, bh_win.base); consume(); }
}

static void json_str(struct buf *b, const char *s, size_t n)
{
    put_byte(b, '"');
    for (size_t i = 0; i < n; i++) {
        uint8_t x = (uint8_t)s[i];
        if (x == '"' || x == '\\') { put_byte(b, '\\'); put_byte(b, x); }
        else if (x < 0x20) { char e[8]; snprintf(e, sizeof e, "\\u%04x", x); put_bytes(b, e, 6); }
        else put_byte(b, x);
    }
    put_byte(b, '"');
}

static void json_num(struct buf *b, double d)
{
    char s[32];
    int n = isfinite(d) ? snprintf(s, sizeof s, "%.17g", d) : snprintf(s, sizeof s, "null");
    put_bytes(b, s, (size_t)n);
}

static void json_value(struct buf *b, JSContext *c, JSValueConst v)
{
    struct buf tmp = { 0 };
    put_value(&tmp, c, v, 1); /* encode, then render the encoding: one walk over JS values */
    struct cur cu = { tmp.p, tmp.p + tmp.len, false };
    struct tv t;
    int side = arena_side, used = arena_used;
    arena_side ^= 1; arena_used = 0; /* a scratch arena: the live record keeps its own */
    get_value(&cu, &t, 1);
    err[0] = 0;
    json_tv(b, &t);
    arena_side = side; arena_used = used;
    free(tmp.p);
}

static void json_tv(struct buf *b, const struct tv *t)
{
    switch (t->tag) {
    case V_UINT: case V_NEGINT: case V_F64: json_num(b, t->num); break;
    case V_STRING: json_str(b, (const char *)t->s, t->len); break;
    case V_TRUE: put_bytes(b, "true", 4); break;
    case V_FALSE: put_bytes(b, "false", 5); break;
    case V_UNDEF: put_bytes(b, "{\"undefined\":true}", 18); break;
    case V_LIST:
        put_byte(b, '[');
        for (uint32_t i = 0; i < t->len; i++) { if (i) put_byte(b, ','); json_tv(b, &t->items[i]); }
        put_byte(b, ']');
        break;
    case V_TYPED:
        put_bytes(b, "{\"typed\":", 9);
        json_str(b, typed_kinds[t->kind], strlen(typed_kinds[t->kind]));
        put_bytes(b, ",\"values\":[", 11);
        for (uint32_t i = 0; i < t->len; i++) { if (i) put_byte(b, ','); json_num(b, t->items[i].num); }
        put_bytes(b, "]}", 2);
        break;
    default: put_bytes(b, "null", 4);
    }
}

/* Starts the divergence object; the caller adds "got". */
static bool diverge_begin(const char *kind, const char *at)
{
    if (diverged) return false;
    peek();
    if (err[0]) { bh_trace_stop = 1; return false; } /* the trace ends here (cut off, damaged): the verdict says that */
    diverged = true;
    bh_trace_stop = 1;
    struct rec *r = peek();
    if (err[0]) { bh_trace_stop = 1; return false; }
    char head[512];
    int n = snprintf(head, sizeof head, "{\"step\":%lu,\"record\":%d,\"kind\":\"%s\",\"at\":\"%s\",\"inCall\":", steps_done + 1, r ? r->index : rec_index, kind, at);
    put_bytes(&verdict, head, (size_t)n);
    json_str(&verdict, current_call, strlen(current_call));
    return true;
}

static void got_call(const char *what, const char *name, int argc, JSValueConst *argv, JSContext *c)
{
    put_bytes(&verdict, ",\"got\":{\"what\":\"", 16);
    put_bytes(&verdict, what, strlen(what));
    put_bytes(&verdict, "\",\"name\":", 9);
    json_str(&verdict, name, strlen(name));
    put_bytes(&verdict, ",\"args\":[", 9);
    for (int i = 0; i < argc; i++) { if (i) put_byte(&verdict, ','); json_value(&verdict, c, argv[i]); }
    put_bytes(&verdict, "]}}", 3);
}

static bool window_matches(const char *at, const char *name, int argc, JSValueConst *argv, JSContext *c)
{
    if (!memcmp(bh_win.base, expected, wsize)) return true;
    if (!diverge_begin("window", at)) return false;
    diff(bh_win.base, expected, NULL);
    put_bytes(&verdict, ",\"spans\":[", 10);
    size_t budget = 65536;
    for (size_t i = 0; i < n_spans && i < 64; i++) {
        size_t len = spans[i].len < budget ? spans[i].len : budget;
        budget -= len;
        char h[64];
        int n = snprintf(h, sizeof h, "%s[%zu,%zu,\"", i ? "," : "", spans[i].off, spans[i].len);
        put_bytes(&verdict, h, (size_t)n);
        for (size_t k = 0; k < len; k++) { char x[3]; snprintf(x, sizeof x, "%02x", bh_win.base[spans[i].off + k]); put_bytes(&verdict, x, 2); }
        put_bytes(&verdict, "\"]", 2);
    }
    char tail[64];
    int n = snprintf(tail, sizeof tail, "],\"totalSpans\":%zu", n_spans);
    put_bytes(&verdict, tail, (size_t)n);
    if (name) got_call("hal", name, argc, argv, c);
    else put_byte(&verdict, '}');
    return false;
}

/* Same value? (numbers by value, strings by their stored bytes, typed arrays by kind and contents as
 * they were before the call.) */
static bool same(JSContext *c, const struct tv *t, JSValueConst v)
{
    switch (t->tag) {
    case V_UNDEF: return JS_IsUndefined(v);
    case V_NULL: return JS_IsNull(v);
    case V_TRUE: case V_FALSE: return JS_IsBool(v) && JS_ToBool(c, v) == (t->tag == V_TRUE);
    case V_UINT: case V_NEGINT: case V_F64: {
        if (!JS_IsNumber(v)) return false;
        double d;
        JS_ToFloat64(c, &d, v);
        return d == t->num || (isnan(d) && isnan(t->num));
    }
    case V_STRING: {
        if (!JS_IsString(v)) return false;
        struct buf tmp = { 0 };
        put_value(&tmp, c, v, 1);
        struct cur cu = { tmp.p + 1, tmp.p + tmp.len, false };
        uint64_t n = get_uint(&cu);
        bool eq = n == t->len && !memcmp(cu.p, t->s, t->len);
        free(tmp.p);
        return eq;
    }
    case V_LIST: {
        if (JS_IsArray(c, v) <= 0) return false;
        JSValue l = JS_GetPropertyStr(c, v, "length");
        uint32_t n = 0;
        JS_ToUint32(c, &n, l);
        JS_FreeValue(c, l);
        if (n != t->len) return false;
        for (uint32_t i = 0; i < n; i++) {
            JSValue e = JS_GetPropertyUint32(c, v, i);
            bool ok = same(c, &t->items[i], e);
            JS_FreeValue(c, e);
            if (!ok) return false;
        }
        return true;
    }
    case V_TYPED: {
        if (!JS_IsObject(v) || typed_kind(c, v) != t->kind) return false;
        size_t off, len, bpe, size;
        JSValue ab = JS_GetTypedArrayBuffer(c, v, &off, &len, &bpe);
        if (JS_IsException(ab)) { JS_FreeValue(c, JS_GetException(c)); return false; }
        uint8_t *p = JS_GetArrayBuffer(c, &size, ab);
        bool eq = p && off + len <= size && (len / bpe == t->len || (t->len == MAX_LIST && len / bpe > MAX_LIST));
        for (uint32_t i = 0; eq && i < t->len; i++) {
            double d = typed_get(p + off, t->kind, i);
            eq = d == t->items[i].num || (isnan(d) && isnan(t->items[i].num));
        }
        JS_FreeValue(c, ab);
        return eq;
    }
    default: return false;
    }
}

static JSValue to_js(JSContext *c, const struct tv *t)
{
    switch (t->tag) {
    case V_UINT: case V_NEGINT: case V_F64: return JS_NewFloat64(c, t->num);
    case V_STRING: return JS_NewStringLen(c, (const char *)t->s, t->len);
    case V_TRUE: return JS_TRUE;
    case V_FALSE: return JS_FALSE;
    case V_NULL: return JS_NULL;
    case V_LIST: {
        JSValue a = JS_NewArray(c);
        for (uint32_t i = 0; i < t->len; i++) JS_SetPropertyUint32(c, a, i, to_js(c, &t->items[i]));
        return a;
    }
    case V_THROW: return JS_ThrowTypeError(c, "%.*s", (int)t->items[0].len, (const char *)t->items[0].s);
    default: return JS_UNDEFINED;
    }
}

static void write_outs(JSContext *c, const struct tv *args, JSValueConst *argv, int argc)
{
    for (uint32_t i = 0; i < args->len && (int)i < argc; i++) {
        const struct tv *a = &args->items[i];
        if (a->tag != V_TYPED) continue;
        size_t off, len, bpe, size;
        JSValue ab = JS_GetTypedArrayBuffer(c, argv[i], &off, &len, &bpe);
        if (JS_IsException(ab)) { JS_FreeValue(c, JS_GetException(c)); continue; }
        uint8_t *p = JS_GetArrayBuffer(c, &size, ab);
        for (uint32_t k = 0; p && k < a->len && (k + 1) * bpe <= len && off + len <= size; k++) {
            double d = a->items[k].num;
            switch (a->kind) {
            case 1: p[off + k] = (uint8_t)d; break;
            case 2: ((uint16_t *)(p + off))[k] = (uint16_t)d; break;
            case 3: ((uint32_t *)(p + off))[k] = (uint32_t)d; break;
            case 4: ((int32_t *)(p + off))[k] = (int32_t)d; break;
            default: ((double *)(p + off))[k] = d;
            }
        }
        JS_FreeValue(c, ab);
    }
}

static JSValue replay_hal(JSContext *c, const char *name, int argc, JSValueConst *argv)
{
    if (diverged || stopping || err[0]) return JS_UNDEFINED;
    take_writes();
    struct rec *r = peek();
    if (r && r->type == R_RETURN && r->fault.tag == V_LIST) {
        /* The recorded call was stopped here: stop this one too (not exact: docs/trace-format.md). */
        stopping = true;
        bh_trace_stop = 1;
        return JS_UNDEFINED;
    }
    if (!window_matches("before-hal", name, argc, argv, c)) return JS_UNDEFINED;
    bool ok = r && r->type == R_HAL && !strcmp(rnames[r->name], name) && r->args.len == (uint32_t)argc;
    for (int i = 0; ok && i < argc; i++) ok = same(c, &r->args.items[i], argv[i]);
    if (!ok) {
        if (diverge_begin(r && r->type == R_HAL ? "hal" : "sequence", "hal")) got_call("hal", name, argc, argv, c);
        return JS_UNDEFINED;
    }
    consume();
    write_outs(c, &r->outs, argv, argc);
    JSValue v = to_js(c, &r->value);
    take_input();
    return v;
}

static void set_current(const char *name, int argc, JSValueConst *argv, JSContext *c)
{
    struct buf b = { 0 };
    put_bytes(&b, name, strlen(name));
    put_byte(&b, '(');
    for (int i = 0; i < argc; i++) { if (i) put_bytes(&b, ", ", 2); json_value(&b, c, argv[i]); }
    char tail[48];
    int n = snprintf(tail, sizeof tail, ") (call #%lu)", calls_done);
    put_bytes(&b, tail, (size_t)n);
    snprintf(current_call, sizeof current_call, "%.*s", (int)b.len, (const char *)b.p);
    free(b.p);
}

/* ---- the hooks js.c calls ----------------------------------------------------------------------- */

JSValue bh_trace_hal(JSContext *c, const char *name, JSCFunction *fn, JSValueConst this_val, int argc, JSValueConst *argv)
{
    if (bh_trace_mode == BH_TRACE_REPLAY) return replay_hal(c, name, argc, argv);
    sync_out();
    int id = name_id(name);
    put_uint(&pl, dt_us());
    put_uint(&pl, (uint64_t)id);
    put_args(&pl, c, argc, argv); /* as they are before the call */
    JSValue r = fn(c, this_val, argc, argv);
    if (JS_IsException(r)) {
        JSValue ex = JS_GetException(c);
        size_t n;
        const char *m = JS_ToCStringLen(c, &n, ex);
        put_byte(&pl, V_THROW);
        put_string(&pl, m ? m : "", m ? n : 0);
        if (m) JS_FreeCString(c, m);
        JS_Throw(c, ex);
    } else {
        put_value(&pl, c, r, 0);
    }
    /* Typed-array arguments after the call: what the service put there (out-parameters). */
    put_byte(&pl, V_LIST);
    put_uint(&pl, (uint64_t)argc);
    for (int i = 0; i < argc; i++) {
        if (JS_IsObject(argv[i]) && JS_IsArray(c, argv[i]) <= 0) put_value(&pl, c, argv[i], 1);
        else put_byte(&pl, V_UNDEF);
    }
    finish(R_HAL);
    steps_written++;
    sync_in();
    return r;
}

bool bh_trace_call(JSContext *c, const char *name, int argc, JSValueConst *argv)
{
    if (bh_trace_mode == BH_TRACE_RECORD) {
        sync_in();
        int id = name_id(name);
        put_uint(&pl, dt_us());
        put_uint(&pl, (uint64_t)id);
        put_args(&pl, c, argc, argv);
        finish(R_CALL);
        steps_written++;
        return true;
    }
    if (diverged || err[0]) return false;
    take_input();
    struct rec *r = peek();
    bool ok = r && r->type == R_CALL && !strcmp(rnames[r->name], name) && r->args.len == (uint32_t)argc;
    for (int i = 0; ok && i < argc; i++) ok = same(c, &r->args.items[i], argv[i]);
    if (!ok) {
        if (!err[0] && diverge_begin("sequence", "call")) got_call("call", name, argc, argv, c);
        return false;
    }
    consume();
    calls_done++;
    set_current(name, argc, argv, c);
    return true;
}

void bh_trace_return(JSContext *c, JSValueConst v, const char **fault_kind, char **detail)
{
    if (bh_trace_mode == BH_TRACE_RECORD) {
        sync_out();
        put_uint(&pl, dt_us());
        if (*fault_kind) {
            put_number(&pl, 0);
            put_byte(&pl, V_LIST);
            put_uint(&pl, 2);
            put_string(&pl, *fault_kind, strlen(*fault_kind));
            put_string(&pl, *detail ? *detail : "", *detail ? strlen(*detail) : 0);
        } else {
            /* As the node runtime does: an entry point's value is a number or a string, anything else 0. */
            if (JS_IsNumber(v) || JS_IsString(v)) put_value(&pl, c, v, 0);
            else put_number(&pl, 0);
            put_byte(&pl, V_UNDEF);
        }
        finish(R_RETURN);
        steps_written++;
        flush_out();
        return;
    }
    if (diverged || err[0]) return;
    take_writes();
    struct rec *r = peek();
    if (r && r->type == R_RETURN && r->fault.tag == V_LIST) {
        consume();
        if (!*fault_kind && !stopping) {
            if (diverge_begin("fault", "return")) {
                put_bytes(&verdict, ",\"got\":{\"what\":\"return\",\"value\":", 32);
                json_value(&verdict, c, v);
                put_bytes(&verdict, "}}", 2);
            }
        } else {
            /* Adopt the recorded window and hand the recorded fault to onFault. */
            memcpy(bh_win.base, expected, wsize);
            static char kind[32];
            snprintf(kind, sizeof kind, "%.*s", (int)r->fault.items[0].len, (const char *)r->fault.items[0].s);
            *fault_kind = kind;
            free(*detail);
            *detail = strndup((const char *)r->fault.items[1].s, r->fault.items[1].len);
        }
        stopping = false;
        bh_trace_stop = diverged;
        snprintf(current_call, sizeof current_call, "(between calls)");
        return;
    }
    if (!window_matches("return", NULL, 0, NULL, c)) return;
    JSValue norm = JS_IsNumber(v) || JS_IsString(v) ? JS_DupValue(c, v) : JS_NewInt32(c, 0);
    bool same_value = r && r->type == R_RETURN && same(c, &r->value, norm);
    JS_FreeValue(c, norm);
    if (!r || r->type != R_RETURN || *fault_kind || !same_value) {
        const char *kind = !r || r->type != R_RETURN ? "sequence" : *fault_kind ? "fault" : "return";
        if (diverge_begin(kind, "return")) {
            put_bytes(&verdict, ",\"got\":{\"what\":\"return\",\"value\":", 32);
            if (*fault_kind) { put_bytes(&verdict, "null,\"fault\":", 13); json_str(&verdict, *fault_kind, strlen(*fault_kind)); }
            else json_value(&verdict, c, v);
            put_bytes(&verdict, "}}", 2);
        }
        return;
    }
    consume();
    snprintf(current_call, sizeof current_call, "(between calls)");
}

uint8_t *bh_trace_window(void) { return bh_trace_mode == BH_TRACE_RECORD ? priv : bh_win.base; }
int bh_trace_peer_id(void) { return peer_from_trace; }

void bh_trace_close(void)
{
    if (bh_trace_mode != BH_TRACE_RECORD || trace_fd < 0) return;
    sync_out();
    put_uint(&pl, steps_written);
    finish(R_END);
    flush_out();
    close(trace_fd);
    trace_fd = -1;
    bh_trace_mode = BH_TRACE_OFF;
}

/* ---- the replay driver -------------------------------------------------------------------------- */

static int verdict_line(int code)
{
    struct buf b = { 0 };
    char head[160];
    int n = snprintf(head, sizeof head, "{\"ok\":%s,\"steps\":%lu,\"calls\":%lu,\"noEnd\":%s", !diverged && !err[0] ? "true" : "false",
                     diverged ? steps_done : steps_done, calls_done, !diverged && !err[0] && !saw_end ? "true" : "false");
    put_bytes(&b, head, (size_t)n);
    if (err[0]) { put_bytes(&b, ",\"error\":", 9); json_str(&b, err, strlen(err)); }
    if (diverged) { put_bytes(&b, ",\"divergence\":", 14); put_bytes(&b, verdict.p, verdict.len); }
    put_bytes(&b, "}\n", 2);
    fwrite(b.p, 1, b.len, stdout);
    fflush(stdout);
    free(b.p);
    return code;
}

static int replay_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int replay_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, sizeof err, fmt, ap);
    va_end(ap);
    return verdict_line(2);
}

int bh_trace_replay(const char *trace_path, const char *bundle_path, const struct bh_trace_js *js)
{
    size_t len;
    tr = bh_read_file(trace_path, &len);
    if (!tr) return replay_fail("%s: %s", trace_path, errno == EFBIG ? "over the 1 GiB limit for a trace" : strerror(errno));
    tr_len = len;
    if (len < 12) return replay_fail("%s: not a Bulkhead trace (%zu bytes, shorter than the 12-byte start)", trace_path, len);
    if (memcmp(tr, "BHTRACE\0", 8)) return replay_fail("%s: not a Bulkhead trace (no BHTRACE magic)", trace_path);
    if ((tr[8] | tr[9] << 8) != 1) return replay_fail("%s: trace format version %d, this reader knows version 1", trace_path, tr[8] | tr[9] << 8);
    if (tr[10] | tr[11]) return replay_fail("%s: trace flags 0x%x unknown to this reader", trace_path, tr[10] | tr[11] << 8);
    tr_pos = 12;
    /* The HEADER. */
    struct cur h = { tr + tr_pos, tr + tr_len, false };
    int type = get_byte(&h);
    uint64_t hl = get_uint(&h);
    if (h.bad || type != R_HEADER) return replay_fail("%s: the first record is not a HEADER", trace_path);
    if (hl > (uint64_t)(h.end - h.p)) return replay_fail("%s: byte 12 (record 0): truncated", trace_path);
    struct cur c = { h.p, h.p + hl, false };
    struct tv runtime, sha, kind, board, win, abi, peer;
    arena_side = 0; arena_used = 0;
    get_value(&c, &runtime, 0); get_value(&c, &sha, 0); get_value(&c, &kind, 0); get_value(&c, &board, 0);
    get_value(&c, &win, 0); get_value(&c, &abi, 0); get_value(&c, &peer, 0);
    if (c.bad || board.tag != V_STRING || win.tag != V_UINT || sha.tag != V_BYTES || sha.len != 32)
        return replay_fail("%s: %s", trace_path, err[0] ? err : "malformed HEADER");
    if (!(win.num >= 4096 && win.num <= MAX_WINDOW)) return replay_fail("%s: window of %.0f bytes (a replay maps at most %u)", trace_path, win.num, MAX_WINDOW);
    hdr_window = wsize = (size_t)win.num;
    peer_from_trace = peer.tag == V_UINT ? (int)peer.num : -1;
    char *board_json = strndup((const char *)board.s, board.len);
    tr_pos = (size_t)(c.end - tr);
    rec_index = 1;
    struct bh_board b;
    js->init(board_json, &b);
    if ((size_t)b.window_size != wsize) return replay_fail("%s: the board's window.size is not the header's %zu bytes", trace_path, wsize);
    /* The firmware's window and the recorded one. */
    bh_win.base = aligned_alloc(4096, wsize);
    expected = aligned_alloc(4096, wsize);
    if (!bh_win.base || !expected) return replay_fail("cannot allocate %zu-byte windows", wsize);
    memset(bh_win.base, 0, wsize);
    memset(expected, 0, wsize);
    bh_win.size = bh_win.map_size = wsize;
    struct rec *r = peek();
    if (r && r->type == R_INIT) { apply_ranges(r->ranges, r->ranges_len, expected, bh_win.base); have_peeked = false; }
    size_t code_len;
    uint8_t *code = bh_read_file(bundle_path, &code_len);
    if (!code) return replay_fail("cannot read %s: %s", bundle_path, strerror(errno));
    js->install_hal();
    js->load(code, code_len, false, bundle_path);
    /* The entry-point calls, in the trace's order. */
    while (!diverged && !err[0]) {
        take_input();
        r = peek();
        if (!r) break;
        if (r->type == R_END) { consume(); break; }
        if (r->type != R_CALL) {
            if (diverge_begin("sequence", "between-calls")) put_bytes(&verdict, ",\"got\":{\"what\":\"idle\"}}", 23);
            break;
        }
        const char *name = rnames[r->name];
        if (!strcmp(name, "stats")) { free(js->stats()); continue; }
        double a[4];
        int n = 0;
        bool numeric = true;
        for (uint32_t i = 0; i < r->args.len && i < 4; i++, n++) {
            if (r->args.items[i].tag == V_UINT || r->args.items[i].tag == V_NEGINT || r->args.items[i].tag == V_F64) a[i] = r->args.items[i].num;
            else numeric = false;
        }
        if (!numeric || r->args.len > 4 || !strcmp(name, "(load)") || !strcmp(name, "onFault")) {
            if (diverge_begin("sequence", "between-calls")) put_bytes(&verdict, ",\"got\":{\"what\":\"idle\"}}", 23);
            break;
        }
        unsigned long before = steps_done;
        js->call(name, n, a);
        if (steps_done == before && !diverged && !err[0]) {
            /* The bundle has no such entry point: nothing ran. */
            if (diverge_begin("sequence", "call")) put_bytes(&verdict, ",\"got\":{\"what\":\"idle\"}}", 23);
            break;
        }
    }
    return verdict_line(diverged ? 1 : err[0] ? 2 : 0);
}
