/**
 * `bulkhead replay --print`: a trace as a timeline, one line per record, window changes decoded
 * (runtime/trace/decode.ts), and the rendering of a replay's divergence.
 */
import type { Divergence, ReplayResult } from './show';
import { describeRecord } from './show';
import { WindowModel } from './decode';
import type { TraceHeader } from './format';
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
  const lines = [`diverged at step ${d.step} (record ${d.record}), in ${d.inCall}, at ${d.at}:`];
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
