/**
 * Replay results and how values, calls and records read in one line (divergences, timelines); shared
 * by the node replayer and the rendering of a native replay's answer.
 */
import type { TraceRecord, TraceValue } from './format';
import type { WindowRange } from './ranges';

/** Where a replay first differed from its trace. */
export interface Divergence {
  /** Step number (CALL, HAL and RETURN records count, from 1). */
  step: number;
  /** Record index in the file. */
  record: number;
  kind: 'window' | 'hal' | 'sequence' | 'return' | 'fault';
  /** The entry-point call it happened in, e.g. `onInterrupt(1)` (call #12). */
  inCall: string;
  /** The step being checked, e.g. `before HAL raise(0)`. */
  at: string;
  expected: string;
  got: string;
  /** For a window divergence: the expected (recorded) and actual window images. */
  window?: { expected: Uint8Array; got: Uint8Array; spans: [number, number][] };
}

/** The result of a replay. */
export interface ReplayResult {
  ok: boolean;
  /** Steps that matched. */
  steps: number;
  calls: number;
  divergence?: Divergence;
  /** A trace that cannot be read past some point (e.g. a recording that was cut off). */
  error?: string;
  /** The trace ended without its END record (the recording stopped abruptly). */
  noEnd?: boolean;
}

/** One line for a value (in divergences and timelines). */
export function showValue(v: TraceValue): string {
  if (v === undefined) return 'undefined';
  if (typeof v === 'string') return JSON.stringify(v.length > 120 ? `${v.slice(0, 117)}...` : v);
  if (typeof v === 'number') return Number.isInteger(v) && v > 4096 ? `${v} (0x${v.toString(16)})` : String(v);
  if (v === null || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `[${v.map(showValue).join(', ')}]`;
  if ('typed' in v) return `${v.typed}[${v.values.join(', ')}]`;
  if ('bytes' in v) return `<${v.bytes.length} bytes>`;
  return `throws ${JSON.stringify(v.throw)}`;
}

/** `name(args)` for a HAL or entry-point call. */
export function showCall(name: string, args: readonly TraceValue[]): string {
  return `${name}(${args.map(showValue).join(', ')})`;
}

/** One line for a record (in divergences: "what the trace expected next"). */
export function describeRecord(r: TraceRecord): string {
  switch (r.type) {
    case 'call':
      return `call ${showCall(r.name, r.args)}`;
    case 'hal':
      return `HAL ${showCall(r.name, r.args)}${r.result === undefined ? "" : ` = ${showValue(r.result)}`}`;
    case 'return':
      return r.fault ? `return: stopped (${r.fault.kind}) ${r.fault.detail}` : `return ${showValue(r.value)}`;
    case 'writes':
    case 'input':
    case 'init':
      return `${r.type.toUpperCase()} of ${r.ranges.reduce((a: number, x: WindowRange) => a + x.data.length, 0)} bytes`;
    case 'end':
      return `END (${r.steps} steps)`;
    case 'name':
      return `NAME ${r.id} = ${r.name}`;
    case 'header':
      return 'HEADER';
  }
}
