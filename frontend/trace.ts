/**
 * `bulkhead/sim`'s `trace` namespace: record and replay (runtime/node/trace.ts), the format
 * (runtime/trace/format.ts), timelines and diffs (runtime/trace/print.ts, decode.ts).
 */
export { TraceRecorder, TraceReplayer, replayOnNode } from '../runtime/node/trace';
export { showCall, showValue, describeRecord } from '../runtime/trace/show';
export type { Divergence, ReplayResult } from '../runtime/trace/show';
export { TraceWriter, TraceFormatError, readTrace, readHeader, LIMITS, TRACE_MAGIC, TRACE_VERSION } from '../runtime/trace/format';
export type { TraceHeader, TraceRecord, TraceValue } from '../runtime/trace/format';
export { WindowModel, describeMessage } from '../runtime/trace/decode';
export { printTimeline, describeHeader, describeDivergence, describeResult, nativeResult } from '../runtime/trace/print';
export type { NativeVerdict } from '../runtime/trace/print';
export { changedSpans, applyRanges } from '../runtime/trace/ranges';
