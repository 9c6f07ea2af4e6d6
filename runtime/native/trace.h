/* Bulkhead native runtime, floor 2 beside js.c: record and replay at the HAL boundary (trace.c;
 * docs/trace-format.md). Off unless --record/--replay. js.c calls the hooks below; trace.c never calls
 * js.c: the replay driver runs the bundle through the functions main.c hands it (struct bh_trace_js). */
#ifndef BH_TRACE_H
#define BH_TRACE_H
#include "quickjs.h"
#include "js.h" /* struct bh_board; trace.c calls nothing of js.c */

enum { BH_TRACE_OFF, BH_TRACE_RECORD, BH_TRACE_REPLAY };
extern int bh_trace_mode;
extern volatile int bh_trace_stop; /* replay: the running call must stop (the interrupt handler reads it) */
void bh_trace_record_open(const char *path);
/* After the window is mapped, before __hal: writes the header and the initial window; returns the
 * firmware's private copy of the window. */
uint8_t *bh_trace_record_begin(const char *board_json, const uint8_t sha[32], bool bytecode, int peer_id);
uint8_t *bh_trace_window(void); /* the window the firmware's ArrayBuffer aliases */
int bh_trace_peer_id(void);     /* replay: the recorded __hal.peerId (-1: none) */
void bh_trace_close(void);      /* record: END record, flush, close */

/* What the replay driver runs the bundle with: js.c's functions, handed over by main.c. */
struct bh_trace_js {
    void (*init)(const char *board_json, struct bh_board *out);
    void (*install_hal)(void);
    void (*load)(const uint8_t *code, size_t len, bool is_bytecode, const char *name);
    int (*call)(const char *entry, int nargs, const double *args);
    char *(*stats)(void);
};
/* Whole replay: prints one JSON verdict line; returns the exit status (0 identical, 1 diverged, 2 unreadable). */
int bh_trace_replay(const char *trace_path, const char *bundle_path, const struct bh_trace_js *js);

/* A HAL call: record around `fn`, or answer it from the trace. */
JSValue bh_trace_hal(JSContext *c, const char *name, JSCFunction *fn, JSValueConst this_val, int argc, JSValueConst *argv);
/* Before an entry-point call (`(load)`: the bundle's evaluation). Replay: false = do not run it (diverged). */
bool bh_trace_call(JSContext *c, const char *name, int argc, JSValueConst *argv);
/* After it: its value, or the fault (`*fault_kind`, `*detail`) that stopped it. A replay may set both to
 * the recorded fault (the caller then reports that one to onFault). */
void bh_trace_return(JSContext *c, JSValueConst v, const char **fault_kind, char **detail);

#endif
