/**
 * Trace record and replay for the node runtime (docs/trace-format.md): two HalTaps.
 *
 * Recording point: the Board HAL. The firmware runs on a window of its own; at every HAL call and at
 * every entry-point call the recorder brings the two windows in step — the firmware's writes since the
 * last sync go out to the shared window (a WRITES record), then the call runs, then whatever the
 * frontend and the services wrote meanwhile comes in (an INPUT record). The firmware thus sees outside
 * bytes change only at HAL calls, and those changes are in the trace: replaying the records against
 * the same bundle reproduces every byte it reads, on either runtime.
 *
 * The replayer gives the bundle a HAL that answers from the trace and checks, at every step, that the
 * firmware's window equals the recorded one, that it makes the recorded HAL call with the recorded
 * arguments, and that each entry point returns what it returned; the first difference stops the run.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import type { QuickJSContext, QuickJSHandle } from 'quickjs-emscripten';
import type { TraceHeader, TraceRecord, TraceValue } from '../trace/format';
import { TraceFormatError, TraceWriter, clampString, readTrace } from '../trace/format';
import type { Divergence, ReplayResult } from '../trace/show';
import { describeRecord, showCall, showValue } from '../trace/show';
import { applyRanges, changedSpans, copySpans } from '../trace/ranges';
import type { CallOutcome, HalTap, TapHost } from './runtime';

/** Reads typed arrays and arrays out of QuickJS (made once per context). */
function objectReader(ctx: QuickJSContext): QuickJSHandle {
  return ctx.unwrapResult(
    ctx.evalCode('(function (v) { if (ArrayBuffer.isView(v)) return [v.constructor.name, Array.from(v)]; if (Array.isArray(v)) return ["Array", v]; return ["Object", null]; })', 'trace-reader.js'),
  );
}

/** Converts a QuickJS value to a TraceValue (numbers, strings, arrays, typed arrays). */
function toValue(ctx: QuickJSContext, reader: QuickJSHandle, h: QuickJSHandle | number | undefined): TraceValue {
  if (h === undefined) return undefined;
  if (typeof h === 'number') return h;
  const t = ctx.typeof(h);
  if (t === 'undefined') return undefined;
  if (t === 'number') return ctx.getNumber(h);
  if (t === 'string') return ctx.getString(h);
  if (t === 'boolean') return ctx.dump(h) as boolean;
  if (t !== 'object') return String(ctx.dump(h));
  const res = ctx.unwrapResult(ctx.callFunction(reader, ctx.undefined, h));
  const [kind, values] = ctx.dump(res) as [string, unknown];
  res.dispose();
  if (kind === 'Array') return (values as unknown[]).map((v) => (typeof v === 'number' || typeof v === 'string' ? v : null));
  if (kind === 'Object') return null;
  return { typed: kind as 'Uint32Array', values: values as number[] };
}

const sha256hex = async (s: string) => {
  const { createHash } = await import('node:crypto');
  return createHash('sha256').update(s).digest('hex');
};

/** What a recorder needs besides what the runtime tells it. */
export interface RecordOptions {
  /** Where the trace goes (written as the run goes, so a crash keeps it up to the last call). */
  path: string;
  /** Firmware source, for its hash. */
  bundle: string;
}

/** Records a node-runtime run into a `.bhtrace` file. */
export class TraceRecorder implements HalTap {
  private host!: TapHost;
  private reader!: QuickJSHandle;
  private base!: Uint8Array;
  private writer!: TraceWriter;
  private fd = -1;
  private last = performance.now();
  private closed = false;

  private constructor(private readonly opts: RecordOptions & { sha: string }) {}

  /** A recorder for `opts.path` (the bundle is hashed here). */
  static async create(opts: RecordOptions): Promise<TraceRecorder> {
    return new TraceRecorder({ ...opts, sha: await sha256hex(opts.bundle) });
  }

  attach(host: TapHost): void {
    this.host = host;
    this.reader = objectReader(host.ctx);
    const header: TraceHeader = {
      runtime: 'node',
      bundleSha256: this.opts.sha,
      bundleKind: 'source',
      boardJson: host.boardJson,
      windowSize: host.firmwareWindow().length,
      abi: 2,
      peerId: -1,
      startedAt: Date.now(),
      recorder: 'bulkhead node runtime',
    };
    this.writer = new TraceWriter(header);
    const shared = host.sharedWindow();
    const zero = new Uint8Array(shared.length);
    this.base = shared.slice();
    host.firmwareWindow().set(shared);
    this.writer.init(changedSpans(shared, zero).map(([off, len]) => ({ off, data: shared.slice(off, off + len) })));
    this.fd = openSync(this.opts.path, 'w');
    this.flush();
  }

  private dt(): number {
    const now = performance.now();
    const d = (now - this.last) * 1000;
    this.last = now;
    return d;
  }

  /**
   * Brings the windows in step in one direction: the bytes of `src` that differ from the last agreed
   * state go to `dst` and into the trace (`kind`). Out: the firmware's writes to the shared window
   * (WRITES); in: what the frontend and services wrote, to the firmware's window (INPUT).
   */
  private sync(kind: 'writes' | 'input'): void {
    const fw = this.host.firmwareWindow();
    const shared = this.host.sharedWindow();
    const [src, dst] = kind === 'writes' ? [fw, shared] : [shared, fw];
    const spans = changedSpans(src, this.base);
    if (spans.length === 0) return;
    copySpans(dst, src, spans);
    copySpans(this.base, src, spans);
    this.writer[kind](spans.map(([off, len]) => ({ off, data: this.base.subarray(off, off + len) })));
  }

  private syncOut(): void {
    this.sync('writes');
  }

  private syncIn(): void {
    this.sync('input');
  }

  hal(name: string, args: QuickJSHandle[], impl: () => QuickJSHandle | number | undefined): QuickJSHandle | number | undefined {
    if (this.closed) return impl();
    this.syncOut();
    const ctx = this.host.ctx;
    const before = args.map((a) => toValue(ctx, this.reader, a));
    // A typed-array argument after the call: what the service put there (an out-parameter).
    const outs = () => args.map((a, i) => (isTyped(before[i]) ? toValue(ctx, this.reader, a) : undefined));
    let r: QuickJSHandle | number | undefined;
    try {
      r = impl();
    } catch (e) {
      this.writer.hal(this.dt(), name, before, { throw: e instanceof Error ? e.message : String(e) }, outs());
      this.syncIn();
      throw e;
    }
    this.writer.hal(this.dt(), name, before, toValue(ctx, this.reader, r), outs());
    this.syncIn();
    return r;
  }

  call(name: string, args: (number | string)[], run: () => CallOutcome): CallOutcome {
    if (this.closed) return run();
    this.syncIn();
    this.writer.call(this.dt(), name, args);
    const out = run();
    this.syncOut();
    this.writer.ret(this.dt(), out.value, out.fault ?? null);
    this.flush();
    return out;
  }

  stopRequested(): boolean {
    return false;
  }

  private flush(): void {
    if (this.fd < 0 || this.writer.pending === 0) return;
    writeSync(this.fd, this.writer.take());
  }

  /** Steps recorded so far. */
  get steps(): number {
    return this.writer.steps;
  }

  /** Writes the END record and closes the file (the runtime keeps running, unrecorded). */
  close(): void {
    if (this.closed || this.fd < 0) return;
    this.syncOut();
    this.writer.end();
    this.flush();
    closeSync(this.fd);
    this.closed = true;
    this.reader.dispose();
  }
}

// ---- replay -------------------------------------------------------------------------------------

const isTyped = (v: TraceValue): v is { typed: 'Uint32Array'; values: number[] } => !!v && typeof v === 'object' && 'typed' in v;

/** True when two values are the same (typed arrays: kind and contents, as they were before the call). */
function sameValue(a: TraceValue, b: TraceValue): boolean {
  if (typeof a === 'string' && typeof b === 'string') return clampString(a) === clampString(b);
  if (typeof a === 'number' && typeof b === 'number') return Object.is(a, b) || a === b;
  if (a === undefined || b === undefined || a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return a === b;
  if (Array.isArray(a) || Array.isArray(b)) return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => sameValue(x, b[i]));
  if ('typed' in a && 'typed' in b) return a.typed === b.typed && a.values.length === b.values.length && a.values.every((x, i) => Object.is(x, b.values[i]) || x === b.values[i]);
  return JSON.stringify(a) === JSON.stringify(b);
}

/** A value from the trace as a QuickJS value (a number stays a number for the runtime to wrap). */
function fromValue(ctx: QuickJSContext, v: TraceValue): QuickJSHandle | number | undefined {
  if (v === undefined) return undefined;
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return ctx.newString(v);
  if (v === null) return ctx.null;
  if (typeof v === 'boolean') return v ? ctx.true : ctx.false;
  if (Array.isArray(v)) {
    const a = ctx.newArray();
    v.forEach((x, i) => {
      // HAL results hold numbers (storageInfo, packetPeek) or strings; anything else is null.
      const h = typeof x === 'number' ? ctx.newNumber(x) : typeof x === 'string' ? ctx.newString(x) : null;
      ctx.setProp(a, i, h ?? ctx.null);
      h?.dispose();
    });
    return a;
  }
  if ('throw' in v) throw new Error(v.throw);
  return undefined;
}

/** Peekable records of a trace. */
class Records {
  private it: Generator<TraceRecord>;
  private buffered: TraceRecord | null = null;
  /** Set when the trace could not be read further. */
  error: TraceFormatError | null = null;
  constructor(bytes: Uint8Array, file: string) {
    this.it = readTrace(bytes, file);
  }
  peek(): TraceRecord | null {
    if (this.buffered || this.error) return this.buffered;
    try {
      const n = this.it.next();
      this.buffered = n.done ? null : n.value;
    } catch (e) {
      if (!(e instanceof TraceFormatError)) throw e;
      this.error = e;
    }
    return this.buffered;
  }
  next(): TraceRecord | null {
    const r = this.peek();
    this.buffered = null;
    return r;
  }
}

/**
 * Replays a trace in a node runtime (the caller creates the runtime with this tap, the trace's board
 * and a bundle, then calls `run()`).
 */
export class TraceReplayer implements HalTap {
  readonly header: TraceHeader;
  private host!: TapHost;
  private reader!: QuickJSHandle;
  private readonly records: Records;
  /** The window the trace says the firmware has (the recorded state). */
  private expected!: Uint8Array;
  private divergence: Divergence | null = null;
  private steps = 0;
  private calls = 0;
  private current = '(none)';
  private sawEnd = false;
  /** The recorded call was stopped by a fault at this point: stop the replayed one too. */
  private stopping = false;
  /** Called for every record consumed (a timeline printer or the window decoder can follow along). */
  onRecord?: (r: TraceRecord, expected: Uint8Array) => void;

  constructor(bytes: Uint8Array, file = 'trace') {
    this.records = new Records(bytes, file);
    const h = this.records.next();
    if (!h || h.type !== 'header') throw this.records.error ?? new TraceFormatError(`${file}: no HEADER record`);
    this.header = h.header;
  }

  attach(host: TapHost): void {
    this.host = host;
    this.reader = objectReader(host.ctx);
    const fw = host.firmwareWindow();
    if (fw.length !== this.header.windowSize) throw new Error(`the runtime mapped a ${fw.length}-byte window, the trace's is ${this.header.windowSize}`);
    this.expected = new Uint8Array(fw.length);
    let r = this.records.peek();
    while (r && r.type === 'name') {
      this.consume();
      r = this.records.peek();
    }
    if (r && r.type === 'init') {
      this.consume();
      applyRanges(this.expected, r.ranges);
    }
    fw.set(this.expected);
  }

  private consume(): TraceRecord | null {
    const r = this.records.next();
    if (r) {
      if (r.type === 'call' || r.type === 'hal' || r.type === 'return') this.steps++;
      if (r.type === 'end') this.sawEnd = true;
      this.onRecord?.(r, this.expected);
    }
    return r;
  }

  /** Skips NAME records (bookkeeping the reader already did). */
  private nextStep(): TraceRecord | null {
    let r = this.records.peek();
    while (r && r.type === 'name') {
      this.consume();
      r = this.records.peek();
    }
    return r;
  }

  private diverge(d: Omit<Divergence, 'step' | 'record' | 'inCall'>): void {
    if (this.divergence) return;
    const r = this.records.peek();
    if (this.records.error) return; // the trace ends here (cut off, damaged): the verdict says that, not a divergence
    this.divergence = { step: this.steps + 1, record: r?.index ?? -1, inCall: this.current, ...d };
  }

  /** Applies a pending WRITES record to the expected window. */
  private takeWrites(): void {
    const r = this.nextStep();
    if (r?.type !== 'writes') return;
    this.consume();
    applyRanges(this.expected, r.ranges);
  }

  /** Compares the firmware's window with the recorded one. */
  private compareWindow(at: string): boolean {
    const fw = this.host.firmwareWindow();
    if (Buffer.compare(Buffer.from(fw.buffer, fw.byteOffset, fw.length), Buffer.from(this.expected.buffer, this.expected.byteOffset, this.expected.length)) === 0) return true;
    const spans = changedSpans(fw, this.expected);
    const bytes = spans.reduce((a, [, l]) => a + l, 0);
    this.diverge({
      kind: 'window',
      at,
      expected: 'the recorded window',
      got: `${bytes} byte(s) differ in ${spans.length} range(s)`,
      window: { expected: this.expected.slice(), got: fw.slice(), spans },
    });
    return false;
  }

  /** Applies a pending INPUT record to both windows. */
  private takeInput(): void {
    const r = this.nextStep();
    if (r?.type !== 'input') return;
    this.consume();
    applyRanges(this.expected, r.ranges);
    applyRanges(this.host.firmwareWindow(), r.ranges);
  }

  hal(name: string, args: QuickJSHandle[]): QuickJSHandle | number | undefined {
    if (this.divergence || this.stopping || this.records.error) return undefined;
    const ctx = this.host.ctx;
    const got = args.map((a) => toValue(ctx, this.reader, a));
    const call = showCall(name, got);
    this.takeWrites();
    const r = this.nextStep();
    if (r?.type === 'return' && r.fault) {
      // The recorded call was stopped here (watchdog, memory): stop this one too. Not exact: where
      // a watchdog fires is a matter of time, so the recorded window is adopted at the return.
      this.stopping = true;
      return undefined;
    }
    if (!this.compareWindow(`before HAL ${call}`)) return undefined;
    if (!r || r.type !== 'hal') {
      this.diverge({ kind: 'sequence', at: `at HAL ${call}`, expected: r ? describeRecord(r) : 'the end of the trace', got: `HAL ${call}` });
      return undefined;
    }
    if (r.name !== name || r.args.length !== got.length || !r.args.every((x, i) => sameValue(x, got[i]))) {
      this.diverge({ kind: 'hal', at: `at HAL ${call}`, expected: `HAL ${showCall(r.name, r.args)}`, got: `HAL ${call}` });
      return undefined;
    }
    this.consume();
    // Out-parameters get what the service put there when it was recorded.
    r.outs.forEach((a, i) => {
      if (isTyped(a) && i < args.length) {
        a.values.forEach((v, k) => {
          const n = ctx.newNumber(v);
          ctx.setProp(args[i]!, k, n);
          n.dispose();
        });
      }
    });
    this.takeInput();
    return fromValue(ctx, r.result);
  }

  call(name: string, args: (number | string)[], run: () => CallOutcome): CallOutcome {
    if (this.divergence || this.records.error) return { value: 0 };
    this.takeInput();
    const call = showCall(name, args);
    const r = this.nextStep();
    if (!r || r.type !== 'call' || r.name !== name || !sameValue(r.args, args)) {
      this.diverge({ kind: 'sequence', at: `at call ${call}`, expected: r ? describeRecord(r) : 'the end of the trace', got: `call ${call}` });
      return { value: 0 };
    }
    this.consume();
    this.calls++;
    this.current = `${call} (call #${this.calls})`;
    const out = run();
    if (this.divergence) return out;
    this.takeWrites();
    const ret = this.nextStep();
    if (ret?.type === 'return' && ret.fault) {
      this.consume();
      if (!out.fault && !this.stopping) this.diverge({ kind: 'fault', at: `at the return of ${call}`, expected: `stopped (${ret.fault.kind}): ${ret.fault.detail}`, got: `returned ${showValue(out.value)}` });
      else this.host.firmwareWindow().set(this.expected);
      this.stopping = false;
      this.current = '(between calls)';
      return this.divergence ? out : { value: 0, fault: ret.fault };
    }
    if (!this.compareWindow(`at the return of ${call}`)) return out;
    if (!ret || ret.type !== 'return') {
      this.diverge({ kind: 'sequence', at: `at the return of ${call}`, expected: ret ? describeRecord(ret) : 'the end of the trace', got: `return ${showValue(out.value)}` });
      return out;
    }
    this.consume();
    if (out.fault) {
      this.diverge({ kind: 'fault', at: `at the return of ${call}`, expected: `returned ${showValue(ret.value)}`, got: `stopped (${out.fault.kind}): ${out.fault.detail}` });
    } else if (!sameValue(ret.value, out.value)) {
      this.diverge({ kind: 'return', at: `at the return of ${call}`, expected: `returned ${showValue(ret.value)}`, got: `returned ${showValue(out.value)}` });
    }
    this.current = '(between calls)';
    return out;
  }

  stopRequested(): boolean {
    return this.divergence !== null || this.stopping || this.records.error !== null;
  }

  /** The next entry-point call the trace wants, or null at its end (or at a divergence). */
  nextCall(): { name: string; args: (number | string)[] } | null {
    if (this.divergence || this.records.error) return null;
    let r = this.nextStep();
    while (r && r.type === 'input') {
      this.takeInput();
      r = this.nextStep();
    }
    if (r?.type === 'end') {
      this.consume();
      return null;
    }
    if (!r) return null;
    if (r.type !== 'call') {
      this.diverge({ kind: 'sequence', at: 'between calls', expected: describeRecord(r), got: 'no call in progress' });
      return null;
    }
    return { name: r.name, args: r.args.map((a) => (typeof a === 'string' ? a : Number(a))) };
  }

  /** The outcome so far. */
  result(): ReplayResult {
    const out: ReplayResult = { ok: !this.divergence && !this.records.error, steps: this.divergence ? this.divergence.step - 1 : this.steps, calls: this.calls };
    if (this.divergence) out.divergence = this.divergence;
    if (this.records.error) out.error = this.records.error.message;
    if (!this.divergence && !this.records.error && !this.sawEnd) out.noEnd = true;
    return out;
  }

  dispose(): void {
    this.reader?.dispose();
  }
}


/**
 * Replays `bytes` (a trace) against `bundle` in a fresh node runtime on the trace's board; returns
 * where it first differed, if it did. `onRecord` sees every record as it is checked.
 */
export async function replayOnNode(bytes: Uint8Array, bundle: string, file = 'trace', onRecord?: TraceReplayer['onRecord']): Promise<ReplayResult & { header: TraceHeader }> {
  const { NodeRuntime } = await import('./runtime');
  const rp = new TraceReplayer(bytes, file);
  rp.onRecord = onRecord;
  const board = JSON.parse(rp.header.boardJson);
  let rt: Awaited<ReturnType<typeof NodeRuntime.create>> | null = null;
  try {
    rt = await NodeRuntime.create({ bundle, board, boardJson: rp.header.boardJson, onRaise: () => {}, log: () => {}, tap: rp });
    for (let c = rp.nextCall(); c; c = rp.nextCall()) rt.call(c.name as 'poll', ...c.args);
  } catch (e) {
    // A divergence while the bundle loads stops its evaluation: that is the finding, not the error.
    // Anything else means the trace's board cannot be served (a damaged or foreign trace).
    if (rp.result().ok) throw new TraceFormatError(`${file}: the runtime cannot serve the trace's board: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    rp.dispose();
    rt?.dispose();
  }
  return { ...rp.result(), header: rp.header };
}
