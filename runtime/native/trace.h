/* trace.c's hooks for js.c (they take QuickJS values; the rest of trace.c's interface is in bh.h). */
#ifndef BH_TRACE_H
#define BH_TRACE_H
#include "quickjs.h"

/* A HAL call: record around `fn`, or answer it from the trace. */
JSValue bh_trace_hal(JSContext *c, const char *name, JSCFunction *fn, JSValueConst this_val, int argc, JSValueConst *argv);
/* Before an entry-point call (`(load)`: the bundle's evaluation). Replay: false = do not run it (diverged). */
bool bh_trace_call(JSContext *c, const char *name, int argc, JSValueConst *argv);
/* After it: its value, or the fault (`*fault_kind`, `*detail`) that stopped it. A replay may set both to
 * the recorded fault (the caller then reports that one to onFault). */
void bh_trace_return(JSContext *c, JSValueConst v, const char **fault_kind, char **detail);

#endif
