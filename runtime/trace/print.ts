/**
 * `bulkhead replay --print`: a trace as a timeline, one line per record, window changes decoded
 * (runtime/trace/decode.ts), and the rendering of a replay's divergence.
 */
import type { Divergence, ReplayResult } from './show';
import { describeRecord, showCall, showValue } from './show';
import { WindowModel } from './decode';
import type { TraceHeader, TraceRecord, TraceValue } from './format';
import { readTrace } from './format';

/** The header as two lines. */
export function describeHeader(h: TraceHeader): string[] {
  let board = '?';
  try {
    const b = JSON.parse(h.boardJson) as { name?: string; id?: number; devices?: { type: string }[] };
    board = `${b.name ?? '?'} (id ${b.id ?? '?'}), devices ${(b.devices ?? []).map((d, i) => `${i}:${d.type}`).join(' ')}`;
  } catch {
    board = 'unreadable board JSON';
  }
  return [
    `trace recorded by ${h.recorder} (${h.runtime} runtime) at ${new Date(h.startedAt).toISOString()}`,
    `board ${board}; window ${h.windowSize} bytes; bundle sha256 ${h.bundleSha256} (${h.bundleKind}); abi ${h.abi}${h.peerId >= 0 ? `; peer id ${h.peerId}` : ''}`,
  ];
}

/** Writes the timeline of `bytes` through `out`, one line per record; returns the number of steps. */
export function printTimeline(bytes: Uint8Array, file: string, out: (line: string) => void): number {
  let model: WindowModel | null = null;
  let t = 0;
  let step = 0;
  for (const r of readTrace(bytes, file)) {
    if (r.type === 'header') {
      describeHeader(r.header).forEach(out);
      model = new WindowModel(r.header.boardJson);
      model.follow(r);
      out(' step    time ms  event');
      continue;
    }
    if (r.type === 'name') continue;
    const what = model!.follow(r);
    if (r.type === 'init' || r.type === 'input' || r.type === 'writes') {
      const tag = r.type === 'init' ? 'init' : r.type === 'input' ? 'in ' : 'out';
      out(`                 ${tag}  ${what}`);
      continue;
    }
    if (r.type === 'end') {
      out(`                 end  ${r.steps} steps`);
      continue;
    }
    step++;
    t += r.dtUs / 1000;
    out(`${String(step).padStart(5)} ${t.toFixed(3).padStart(10)}  ${describeRecord(r)}`);
  }
  return step;
}

/** A divergence as lines (the window diff decoded with what `model` learnt following the trace). */
export function describeDivergence(d: Divergence, model: WindowModel | null): string[] {
  const lines = [`diverged at step ${d.step} (record ${d.record}), in ${d.inCall}, ${d.at}:`];
  if (d.kind === 'window' && d.window) {
    lines.push(`  the firmware's window differs from the recorded one: ${d.got}`);
    lines.push(...(model ?? new WindowModel('{}')).diff(d.window.expected, d.window.got, d.window.spans));
  } else {
    lines.push(`  expected ${d.expected}`);
    lines.push(`  got      ${d.got}`);
  }
  return lines;
}

/** The one-paragraph verdict of a replay. */
export function describeResult(r: ReplayResult, model: WindowModel | null): string[] {
  if (r.divergence) return describeDivergence(r.divergence, model);
  if (r.error) return [`${r.error}; the ${r.steps} steps before it replayed identically`];
  return [`replayed ${r.steps} steps (${r.calls} calls): every window write, HAL call and return identical${r.noEnd ? ' (the trace has no END record: the recording stopped abruptly; everything it holds matched)' : ''}`];
}

/** The verdict line of `bulkhead-fw --replay` (runtime/native/trace.c). */
export interface NativeVerdict {
  ok: boolean;
  steps: number;
  calls: number;
  noEnd: boolean;
  error?: string;
  divergence?: {
    step: number;
    record: number;
    kind: Divergence['kind'];
    at: 'before-hal' | 'hal' | 'call' | 'return' | 'between-calls';
    inCall: string;
    spans?: [number, number, string][];
    totalSpans?: number;
    got?: { what: 'hal' | 'call' | 'return' | 'idle'; name?: string; args?: TraceValue[]; value?: TraceValue; fault?: string };
  };
}

/** JSON as the native replayer writes values: undefined is {"undefined":true}. */
function fromJson(v: unknown): TraceValue {
  if (v && typeof v === 'object' && !Array.isArray(v) && (v as { undefined?: boolean }).undefined) return undefined;
  if (Array.isArray(v)) return v.map(fromJson);
  return v as TraceValue;
}

/**
 * A native replay's verdict as the node replayer's result: the expected side of a divergence comes
 * from the trace (followed up to the record where it happened, which also teaches `model` the queues).
 */
export function nativeResult(v: NativeVerdict, bytes: Uint8Array, file: string, model: WindowModel): ReplayResult {
  const out: ReplayResult = { ok: v.ok, steps: v.steps, calls: v.calls };
  if (v.noEnd) out.noEnd = true;
  if (v.error) out.error = `${file}: ${v.error}`;
  const d = v.divergence;
  if (!d) return out;
  let next: TraceRecord | null = null;
  for (const r of readTrace(bytes, file)) {
    if (r.index >= d.record) {
      next = r;
      break;
    }
    model.follow(r);
  }
  const got = d.got;
  const gotText =
    got?.what === 'hal' || got?.what === 'call'
      ? `${got.what === 'hal' ? 'HAL' : 'call'} ${showCall(got.name ?? '?', (got.args ?? []).map(fromJson))}`
      : got?.what === 'return'
        ? got.fault !== undefined
          ? `stopped (${got.fault})`
          : `returned ${showValue(fromJson(got.value))}`
        : 'no call in progress';
  const at = d.at === 'before-hal' ? `before ${gotText}` : d.at === 'return' ? `at the return of ${d.inCall}` : d.at === 'between-calls' ? 'between calls' : `at ${gotText}`;
  const div: Divergence = { step: d.step, record: d.record, kind: d.kind, inCall: d.inCall, at, expected: next ? describeRecord(next) : 'the end of the trace', got: gotText };
  if (d.kind === 'window' && d.spans && model.state) {
    const expected = model.state.slice();
    const gotWin = expected.slice();
    const spans: [number, number][] = [];
    for (const [off, len, hex] of d.spans) {
      gotWin.set(Buffer.from(hex, 'hex').subarray(0, Math.max(0, Math.min(len, gotWin.length - off))), off);
      spans.push([off, len]);
    }
    div.got = `${d.spans.reduce((a, [, l]) => a + l, 0)} byte(s) differ in ${d.totalSpans ?? d.spans.length} range(s)`;
    div.expected = 'the recorded window';
    div.window = { expected, got: gotWin, spans };
  }
  out.divergence = div;
  out.ok = false;
  return out;
}
