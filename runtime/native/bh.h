/*
 * Bulkhead native runtime: shared declarations. One C file per part of the Board HAL
 * (docs/hal.md): window, lines, clock (fence/now/timer), services, event loop, image loader,
 * seccomp, and js.c which binds them all to QuickJS as globalThis.__hal.
 *
 * Nothing in this runtime parses the window: only the firmware does. The C side moves bytes
 * between backings and the window at offsets the firmware hands over, and re-checks every
 * offset/length against the window size before touching memory.
 */
#ifndef BH_H
#define BH_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define BH_ABI 4
#define BH_MAX_SERVICES 16

/* log.c: one line per message on stderr, written with write(2) (seccomp allows nothing else). */
enum { BH_LOG_ERROR = 0, BH_LOG_WARN = 1, BH_LOG_INFO = 2, BH_LOG_DEBUG = 3 };
extern int bh_log_level;
void bh_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "bulkhead-fw: <reason>" and exits with status 2: the one-line refusal. */
void bh_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* window.c: the shared memory window. */
struct bh_window {
    uint8_t *base;   /* mapping of the whole shm object */
    size_t map_size; /* bytes mapped */
    size_t size;     /* bytes given to the firmware (board window.size) */
};
extern struct bh_window bh_win;
/* Maps `fd` (shm object) and exposes its first `size` bytes; dies if the object is smaller. */
void bh_window_map_fd(int fd, size_t size);
/* True when [off, off+len) lies inside the window (both taken from JS numbers). */
bool bh_window_range_ok(double off, double len);

#include "ivshmem-client.h"

/* lines.c: interrupt lines mapped onto doorbells (ivshmem or plain eventfds). */
void bh_lines_init_ivshmem(struct ivs_client *c);
void bh_lines_set_board(int to_frontend, int from_frontend);
int bh_lines_rx_fd(void);          /* eventfd the loop waits on (frontend rang us) */
bool bh_lines_drain(void);         /* true when the frontend rang since the last drain */
/* true for ivshmem eventfds: the loop watches them edge-triggered and never drains them (each ring
 * is one epoll event; the counter only grows, and 2^64 rings are out of reach) */
bool bh_lines_edge(void);
void bh_lines_raise(int line);
int bh_lines_from_frontend(void);
int bh_lines_peer_id(void);        /* our ivshmem id, or -1 */
extern unsigned long bh_lines_raised;

/* uio.c: --uio /dev/uioN, an ivshmem-doorbell device inside a VM through runtime/native/linux/bulkhead_uio.ko */
void bh_uio_attach(const char *dev, size_t window_size); /* maps the window into bh_win; dies on failure */
int bh_uio_fd(void);      /* -1 unless attached */
int bh_uio_peer_id(void); /* IVPosition, -1 unless attached */
bool bh_uio_drain(void);
void bh_uio_ring(void);   /* vector 0 of the header's frontendPeerId */

/* clock.c */
double bh_now_ms(void);
void bh_fence(void);
int bh_timer_init(void);           /* returns the timerfd */
void bh_timer_set(double ms);      /* ms < 0 cancels */
bool bh_timer_drain(void);

/* storage-aio.c: asynchronous storage requests (io_uring through liburing, or a thread pool). */
#define BH_AIO_DEPTH 128          /* requests in flight per storage at most (storageInfo's queueDepth) */
#define BH_AIO_MAX_SEGS 256       /* window segments per request (blk: seg_max 254) */
#define BH_AIO_THREADS 8          /* thread pool workers where io_uring is refused */
#define BH_AIO_BOUNCE_CAP (16u << 20) /* bounce memory of requests in flight; beyond it, bounce synchronously */
enum { BH_AIO_READ = 0, BH_AIO_WRITE = 1, BH_AIO_FLUSH = 2 };
struct iovec;
struct bh_aio;
struct bh_aio_counters { unsigned long submitted, completed, cancelled, errors, bounced, bounced_bytes; int peak; };
/* Opens the engine for fd (io_uring unless refused or force_threads); `engine` gets a description. */
struct bh_aio *bh_aio_open(int fd, bool force_threads, char *engine, size_t engine_len);
int bh_aio_fd(struct bh_aio *a);  /* eventfd the loop watches */
bool bh_aio_uses_uring(struct bh_aio *a);
int bh_aio_submit(struct bh_aio *a, uint32_t tag, int op, uint64_t off, const struct iovec *iov, int n, bool bounce);
int bh_aio_post(struct bh_aio *a, uint32_t tag, int op, int32_t result);
void bh_aio_flush(struct bh_aio *a);
bool bh_aio_event(struct bh_aio *a);
bool bh_aio_ready(struct bh_aio *a); /* io_uring: completions already posted (no syscall unless there are) */
int bh_aio_complete(struct bh_aio *a, int32_t *out, int max);
int bh_aio_cancel(struct bh_aio *a, uint32_t tag);
const struct bh_aio_counters *bh_aio_counters(struct bh_aio *a);

/* services.c */
enum bh_svc_kind { BH_SVC_STORAGE, BH_SVC_STREAM, BH_SVC_ENTROPY, BH_SVC_PACKET, BH_SVC_I2C, BH_SVC_GPIO };
/* Command-line override: name=value (storage: PATH[,ro][,direct][,sync|,async], or ro:PATH; stream:
 * stdio|null|pty|unix:PATH; packet: tap:IFNAME or switch:NAME; gpio: unix:PATH, its control socket;
 * an i2c target's name: PATH, a 24c02's file). */
int bh_services_override(const char *arg);
const char *bh_services_override_for(const char *name);
/* --aio threads / BULKHEAD_AIO=threads: asynchronous storage on the thread pool even where io_uring works. */
extern bool bh_storage_force_threads;
int bh_storage_open(const char *name, const char *path, bool read_only, bool direct, bool async);
int bh_storage_info(int h, double *size, int *ro, int *depth, int *block_size);
int bh_storage_submit(int h, double tag, double op, double foff, const uint32_t *ranges, double n);
int bh_storage_complete(int h, int32_t *out, int max);
int bh_storage_cancel(int h, double tag);
void bh_storage_flush_submissions(void); /* the loop, once per turn: batched submissions go to the kernel */
uint32_t bh_storage_take_ready(void);   /* bit h: storage h has completions already (onService(h) is due) */
char *bh_storage_stats(void);            /* JSON per storage service: engine and counters (malloc'd) */
int bh_storage_read(int h, double foff, double woff, double len);
int bh_storage_write(int h, double foff, double woff, double len);
int bh_storage_flush(int h);
int bh_storage_discard(int h, double foff, double len);
int bh_storage_write_zeroes(int h, double foff, double len);
void bh_storage_flush_all(void);
int bh_stream_open(const char *name, const char *backing);
int bh_stream_write(int h, double woff, double len);
int bh_stream_read(int h, double woff, double maxlen);
int bh_entropy_open(const char *name);
int bh_entropy_read(int h, double woff, double len);
int bh_packet_open(const char *name, const char *sw, const char *tap);
/* Event-loop hooks for streams and gpio control sockets: fds to watch, and what happened (true:
 * the firmware should hear of it, bulkhead.onService(h)). */
typedef void (*bh_watch_fn)(int fd, uint32_t events, int handle);
void bh_services_set_watch(bh_watch_fn fn);
/* A watched fd of service h is ready: true when the firmware should hear of it (onService(h)). */
bool bh_service_event(int h, int fd, uint32_t events);

/* i2c.c: I2C buses with simulated targets (docs/i2c.md). Handles are service handles. */
#define BH_I2C_MAX_TARGETS 16
#define BH_I2C_MAX_ENTRIES 256
#define BH_I2C_MAX_MESSAGE 8192
enum bh_i2c_target_type { BH_I2C_24C02, BH_I2C_SENSOR };
struct bh_i2c_target_cfg {
    char name[64];
    int address;
    enum bh_i2c_target_type type;
    char path[512]; /* 24c02 */
    double celsius; /* sensor */
};
int bh_i2c_open(const char *name, const struct bh_i2c_target_cfg *cfg, int n);
int bh_i2c_attach(int h, const char *name, const struct bh_i2c_target_cfg *cfg, int n);
int bh_i2c_transfer(int h, const uint32_t *entries, int n);
void bh_i2c_log_counters(int level);

/* gpio.c: named lines and their control socket (docs/gpio.md). Handles are service handles. */
#define BH_GPIO_MAX_LINES 256
#define BH_GPIO_MAX_NAME 31
int bh_gpio_open(const char *name, const char *const *names, int n, const char *control);
int bh_gpio_attach(int h, const char *name, const char *const *names, int n, const char *control);
void bh_gpio_set_watch(bh_watch_fn fn);
int bh_gpio_set_direction(int h, double line, double dir);
int bh_gpio_set_value(int h, double line, double v);
int bh_gpio_sample(int h, uint32_t *out, size_t room);
bool bh_gpio_event(int h, int fd, uint32_t events);
void bh_gpio_log_counters(int level);

/* packet.c: the switch and TAP ports (docs/net.md). Handles are service handles. */
int bh_packet_attach(int h, const char *name, const char *sw, const char *tap);
int bh_packet_send(int h, double woff, double len, double flags, double cs, double co);
int bh_packet_peek(int h, double out[7], double k);
int bh_packet_promote(int h, double k);
int bh_packet_recv(int h, double woff, double maxlen, double flags);
int bh_packet_set_offloads(int h, double offloads);
uint32_t bh_packet_take_pending(void); /* bit h: onService(h) is due */
bool bh_packet_pending(void);
void bh_packet_tap_event(int port);
void bh_packet_log_counters(int level);

/* loop.c */
void bh_loop_init(struct ivs_client *ivs);
void bh_loop_watch(int fd, uint32_t events, int handle); /* events 0: remove */
void bh_loop_watch_doorbell(void);
void bh_loop_watch_tap(int fd, int port);
void bh_loop_set_busy_poll(double us); /* 0 (default): sleep in epoll_wait as soon as nothing is ready */
int bh_loop_run(void);            /* returns the exit status */

/* js.c: QuickJS, __hal, and calls into the bundle under the budgets. */
struct bh_board {
    int id;
    char name[64];
    double window_size;
    int to_frontend, from_frontend;
    double memory_bytes, watchdog_ms;
    double busy_poll_us; /* runtime.busyPollUs */
};
/* Parses the board (JSON, by QuickJS), applies --service overrides, fills *out; dies if invalid. */
void bh_js_init(const char *board_json, struct bh_board *out);
/* Defines globalThis.__hal over the mapped window and turns the memory limit on. */
void bh_js_install_hal(void);
/* Loads source (is_bytecode=false) or bytecode; dies with a one-line reason on failure. */
void bh_js_load(const uint8_t *code, size_t len, bool is_bytecode, const char *name);
/* Calls bulkhead.<entry>(args) under the budgets. Returns its numeric result; for a stopped call, onFault's. */
int bh_js_call(const char *entry, int nargs, const double *args);
extern unsigned long bh_js_faults;
char *bh_js_stats(void);
char *bh_js_call_times(void); /* JSON: calls and microseconds per entry point (malloc'd) */
size_t bh_js_memory_used(void);
/* A member of a JSON object: strings as they are, objects/numbers re-serialised (malloc'd). */
char *bh_json_member(const char *json, size_t len, const char *key);
/* Compiles a script to bytecode (no HAL, no execution). */
uint8_t *bh_js_compile(const char *src, size_t len, const char *name, size_t *out_len, char *err, size_t errlen);

/* image.c */
struct bh_image {
    uint8_t *data;
    size_t len;
    uint32_t board_id;
    const char *manifest; size_t manifest_len; /* JSON, not NUL-terminated */
    const uint8_t *firmware; size_t firmware_len;
    bool bytecode;
};
/* Verifies and parses; returns NULL or a one-line reason. */
const char *bh_image_load(const char *path, struct bh_image *img);

/* sha256.c */
void bh_sha256(const uint8_t *data, size_t len, uint8_t out[32]);

/* seccomp.c */
int bh_seccomp_install(void);  /* TSYNC: covers every thread (the aio workers) */
void bh_drop_capabilities(void); /* this thread's; capabilities are per thread */

/* file helper (main.c) */
uint8_t *bh_read_file(const char *path, size_t *len);

#endif
