/* Bulkhead native runtime, floor 2: QuickJS and globalThis.__hal (js.c), over floors 0-1. */
#ifndef BH_JS_H
#define BH_JS_H

#include "services.h"

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
/* The board JSON as the bundle gets it (after overrides). */
const char *bh_js_board_json(void);
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

#endif
