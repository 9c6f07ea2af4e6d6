/* Bulkhead native runtime, floor 1: backing services (services.c, packet.c, vsock.c, i2c.c, gpio.c; docs/hal.md "Services").
 * They wake the firmware through event.c (bh_event_watch, bh_event_due), never through the loop. */
#ifndef BH_SERVICES_H
#define BH_SERVICES_H

#include "bh.h"

/* storage-aio.c: asynchronous storage requests (io_uring through liburing, or a thread pool). */
#define BH_AIO_DEPTH 128          /* requests in flight per storage at most (storageInfo's queueDepth) */
#define BH_AIO_MAX_SEGS 256       /* window segments per request (blk: seg_max 254) */
#define BH_AIO_THREADS 8          /* thread pool workers where io_uring is refused */
#define BH_AIO_BOUNCE_CAP (16u << 20) /* bounce memory of requests in flight; beyond it, bounce synchronously */
enum { BH_AIO_READ = 0, BH_AIO_WRITE = 1, BH_AIO_FLUSH = 2 };
struct iovec;
struct bh_aio;
struct bh_aio_counters { unsigned long submitted, completed, cancelled, errors, bounced, bounced_bytes; int peak; };
/* --aio: auto (inline for a memory-backed image, else io_uring, else the thread pool), threads, uring
 * (io_uring for every image, the pool where it is refused) */
enum bh_aio_mode { BH_AIO_ENGINE_AUTO, BH_AIO_ENGINE_THREADS, BH_AIO_ENGINE_URING };
/* Opens the engine for fd as `mode` says (memory: the image is memory-backed); `engine` gets a description. */
struct bh_aio *bh_aio_open(int fd, enum bh_aio_mode mode, bool memory, char *engine, size_t engine_len);
int bh_aio_fd(struct bh_aio *a);  /* eventfd to watch (bh_event_watch) */
const char *bh_aio_engine(struct bh_aio *a); /* "inline", "io_uring" or "threads" */
int bh_aio_submit(struct bh_aio *a, uint32_t tag, int op, uint64_t off, const struct iovec *iov, int n, bool bounce);
int bh_aio_post(struct bh_aio *a, uint32_t tag, int op, int32_t result);
void bh_aio_flush(struct bh_aio *a);
bool bh_aio_event(struct bh_aio *a);
bool bh_aio_ready(struct bh_aio *a); /* completions to take now: inline ones, io_uring's already posted (no syscall unless there are) */
void bh_aio_wake(struct bh_aio *a);  /* signal the eventfd: completions wait for the loop's next turn */
int bh_aio_complete(struct bh_aio *a, int32_t *out, int max);
int bh_aio_cancel(struct bh_aio *a, uint32_t tag);
const struct bh_aio_counters *bh_aio_counters(struct bh_aio *a);

/* services.c */
enum bh_svc_kind { BH_SVC_STORAGE, BH_SVC_STREAM, BH_SVC_ENTROPY, BH_SVC_PACKET, BH_SVC_VSOCK, BH_SVC_I2C, BH_SVC_GPIO };
/* Command-line override: name=value (storage: PATH[,ro][,direct][,sync|,async], or ro:PATH; stream:
 * stdio|null|pty|unix:PATH; packet: tap:IFNAME or switch:NAME; vsock: the uds PATH; gpio: unix:PATH,
 * its control socket; an i2c target's name: PATH, a 24c02's file). */
int bh_services_override(const char *arg);
const char *bh_services_override_for(const char *name);
/* --aio / BULKHEAD_AIO: the engine of asynchronous storage services. */
extern enum bh_aio_mode bh_storage_aio_mode;
int bh_storage_open(const char *name, const char *path, bool read_only, bool direct, bool async);
int bh_storage_info(int h, double *size, int *ro, int *depth, int *block_size);
int bh_storage_submit(int h, double tag, double op, double foff, const uint32_t *ranges, double n);
int bh_storage_complete(int h, int32_t *out, int max);
int bh_storage_cancel(int h, double tag);
void bh_storage_flush_submissions(void); /* the loop, once per turn: batched submissions go to the kernel */
uint32_t bh_storage_take_ready(void);   /* bit h: storage h has completions already (onService(h) is due) */
void bh_storage_wake_ready(void);      /* completions the loop leaves for its next turn: wake that turn */
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
int bh_vsock_open(const char *name, const char *uds);

/* packet.c: the switch and TAP ports (docs/net.md). Handles are service handles. */
int bh_packet_attach(int h, const char *name, const char *sw, const char *tap);
int bh_packet_send(int h, double woff, double len, double flags, double cs, double co);
int bh_packet_peek(int h, double out[7], double k);
int bh_packet_promote(int h, double k);
int bh_packet_recv(int h, double woff, double maxlen, double flags);
int bh_packet_set_offloads(int h, double offloads);
void bh_packet_log_counters(int level);

/* vsock.c: virtio-vsock's host side on unix sockets in Firecracker's convention (docs/vsock.md).
 * Handles are service handles; its fds wake the firmware through event.c. */
int bh_vsock_attach(int h, const char *name, const char *uds);
int bh_vsock_connect(int h, double port);
int bh_vsock_established(int h, double id, double local_port);
int bh_vsock_send(int h, double id, double woff, double len);
int bh_vsock_recv(int h, double id, double woff, double maxlen);
int bh_vsock_shutdown(int h, double id, double how);
int bh_vsock_close(int h, double id);
int bh_vsock_poll(int h, uint32_t *out, int max);
void bh_vsock_log_counters(int level);

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

/* gpio.c: named lines and their control socket (docs/gpio.md). Handles are service handles; the
 * control socket's fds are watched through event.c, a host set that moves a level makes onService(h) due. */
#define BH_GPIO_MAX_LINES 256
#define BH_GPIO_MAX_NAME 31
int bh_gpio_open(const char *name, const char *const *names, int n, const char *control);
int bh_gpio_attach(int h, const char *name, const char *const *names, int n, const char *control);
int bh_gpio_set_direction(int h, double line, double dir);
int bh_gpio_set_value(int h, double line, double v);
int bh_gpio_sample(int h, uint32_t *out, size_t room);
void bh_gpio_log_counters(int level);

#endif
