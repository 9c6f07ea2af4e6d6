/*
 * Bulkhead native runtime, floor 0: the platform (docs/native.md "Source layout").
 *
 * The runtime's C files sit on floors, and a file calls only into its own floor and the ones
 * below it (test/unit/native-floors.test.ts checks the includes and the calls):
 *
 *   4  main.c                                     arguments, wiring, seccomp, then the loop
 *   3  loop.c                 loop.h              the event loop: waits, calls into the bundle
 *   2  js.c                   js.h                QuickJS and __hal: the bundle's view of floors 0-1
 *      trace.c                trace.h             record and replay at the HAL boundary (hooks js.c calls)
 *   1  services.c storage-aio.c packet.c vsock.c  services.h   backing services (storage, stream, entropy, packet, vsock)
 *      i2c.c gpio.c           services.h          i2c buses with their targets, gpio lines and their control socket
 *      image.c                image.h             partition images
 *   0  log.c window.c lines.c uio.c clock.c event.c file.c seccomp.c    bh.h (this file)
 *      ivshmem-client.c       ivshmem-client.h
 *
 * A lower floor that needs to be woken registers a callback (bh_event_watch) instead of calling
 * up. Nothing in this runtime parses the window: only the firmware does. The C side moves bytes
 * between backings and the window at offsets the firmware hands over, and re-checks every
 * offset/length against the window size before touching memory.
 */
#ifndef BH_H
#define BH_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define BH_ABI 5
#define BH_MAX_SERVICES 16
#define BH_MAX_WATCHES 128 /* fds in the epoll set (event.c): a vsock service alone may hold 33 */

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

/* event.c: the one epoll set (the loop waits on it) and the service handles whose onService is due. */
struct epoll_event;
/* Runs in the loop for a watched fd; returns true when onService(handle) is due. */
typedef bool (*bh_event_fn)(int fd, uint32_t events, int handle);
void bh_event_init(void);
/* Watches fd (EPOLLIN/EPOLLOUT, EPOLLET...) with fn(fd, events, handle); events 0 stops. An fd
 * epoll refuses (a regular file) is never reported. Modifying a watched fd replaces fn/handle. */
void bh_event_watch(int fd, uint32_t events, bh_event_fn fn, int handle);
int bh_event_wait(struct epoll_event *evs, int max, int timeout_ms);
void bh_event_dispatch(const struct epoll_event *ev); /* runs the fd's callback */
void bh_event_due(int handle);       /* onService(handle) after the current call */
bool bh_event_any_due(void);
uint32_t bh_event_take_due(void);    /* bit h: onService(h) is due; clears them */

/* file.c: whole-file reads (bundles, boards, images); NULL with errno on failure. */
uint8_t *bh_read_file(const char *path, size_t *len);

/* seccomp.c */
int bh_seccomp_install(void);  /* TSYNC: covers every thread (the aio workers) */
void bh_drop_capabilities(void); /* this thread's; capabilities are per thread */

#endif
