/**
 * The `.bhtrace` file format, version 1 (docs/trace-format.md): what entered the firmware bundle and
 * what it wrote, recorded at the Board HAL boundary by either runtime, replayed by either.
 *
 *   file    = magic "BHTRACE\0" (8 bytes), u16 version, u16 flags (0), record*
 *   record  = u8 type, varint payload length, payload
 *
 * Integers are unsigned LEB128 varints (at most 8 bytes, values below 2^53). Args and results are
 * tagged values (`TraceValue`). Window bytes travel as ranges (gap from the previous range's end,
 * length, bytes). The reader is written for hostile input: every length is checked against the bytes
 * that are left and against the limits below before anything is allocated, and every failure is one
 * `TraceFormatError` line naming the byte offset and record. The encoding is this project's own (a
 * self-describing stream that the C runtime writes and reads too), so it is written by hand here and
 * in runtime/native/trace.c.
 */
import type { WindowRange } from './ranges';

export const TRACE_MAGIC = 'BHTRACE\0';
export const TRACE_VERSION = 1;

/** Record types. */
export const R = {
  HEADER: 0x10,
  INIT: 0x11,
  NAME: 0x01,
  CALL: 0x02,
  RETURN: 0x03,
  HAL: 0x04,
  WRITES: 0x05,
  INPUT: 0x06,
  END: 0x07,
} as const;

/** Value tags. */
export const V = {
  UNDEFINED: 0,
  UINT: 1,
  NEGINT: 2,
  F64: 3,
  STRING: 4,
  LIST: 5,
  TYPED: 6,
  BYTES: 7,
  TRUE: 8,
  FALSE: 9,
  NULL: 10,
  THROW: 11,
} as const;

/** Typed-array kinds (a HAL out-parameter such as packetPeek's Uint32Array). */
export const TYPED_KINDS = ['', 'Uint8Array', 'Uint16Array', 'Uint32Array', 'Int32Array', 'Float64Array'] as const;

/** Limits a reader enforces (docs/trace-format.md, "Limits"). */
export const LIMITS = {
  /** Largest trace file a reader accepts. */
  fileBytes: 1 << 30,
  /** Largest window a replay allocates. */
  windowBytes: 256 << 20,
  /** Longest string (a log message, a board, a stats() answer). */
  stringBytes: 1 << 20,
  /** Most elements in a list or typed array. */
  listItems: 4096,
  /** Deepest nesting of lists. */
  depth: 4,
  /** Most distinct HAL function and entry-point names. */
  names: 256,
} as const;

/** A value crossing the HAL: what the firmware passed or got back. */
export type TraceValue =
  | undefined
  | null
  | boolean
  | number
  | string
  | TraceValue[]
  | { typed: (typeof TYPED_KINDS)[number]; values: number[] }
  | { bytes: Uint8Array }
  | { throw: string };

/** The HEADER record: which bundle on which board, and the window it ran on. */
export interface TraceHeader {
  /** Runtime that recorded: "node" or "native". */
  runtime: string;
  /** SHA-256 (hex) of the firmware the runtime evaluated: the bundle source, or an image's bytecode. */
  bundleSha256: string;
  /** "source" or "bytecode". */
  bundleKind: string;
  /** `__hal.boardJson` exactly as the bundle got it. */
  boardJson: string;
  windowSize: number;
  abi: number;
  /** `__hal.peerId`, or -1 when the runtime had none. */
  peerId: number;
  /** Wall clock at the start of recording (ms since 1970). */
  startedAt: number;
  /** Who wrote it (tool and version). */
  recorder: string;
}

/** One decoded record. `at` is its byte offset in the file, `index` its number (0 = HEADER). */
export type TraceRecord = { at: number; index: number } & (
  | { type: 'header'; header: TraceHeader }
  | { type: 'init'; ranges: WindowRange[] }
  | { type: 'name'; id: number; name: string }
  | { type: 'call'; dtUs: number; name: string; args: TraceValue[] }
  | { type: 'return'; dtUs: number; value: TraceValue; fault: { kind: string; detail: string } | null }
  | { type: 'hal'; dtUs: number; name: string; args: TraceValue[]; result: TraceValue; outs: TraceValue[] }
  | { type: 'writes'; ranges: WindowRange[] }
  | { type: 'input'; ranges: WindowRange[] }
  | { type: 'end'; steps: number }
);

/** A trace that cannot be read: one line, with the byte offset and record where it went wrong. */
export class TraceFormatError extends Error {
  constructor(
    message: string,
    /** Records read completely before the error (a truncated trace keeps its prefix). */
    readonly completeRecords = 0,
  ) {
    super(message);
    this.name = 'TraceFormatError';
  }
}

// ---- writing -------------------------------------------------------------------------------------

/** Appends bytes to a growing buffer. */
class Sink {
  buf = new Uint8Array(1 << 16);
  len = 0;
  reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const b = new Uint8Array(cap);
    b.set(this.buf.subarray(0, this.len));
    this.buf = b;
  }
  byte(v: number): void {
    this.reserve(1);
    this.buf[this.len++] = v;
  }
  uint(v: number): void {
    if (!(Number.isInteger(v) && v >= 0 && v <= Number.MAX_SAFE_INTEGER)) throw new Error(`trace: ${v} is not an unsigned integer below 2^53`);
    this.reserve(8);
    while (v >= 0x80) {
      this.buf[this.len++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.len++] = v;
  }
  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
}

const utf8 = new TextEncoder();

/**
 * A string as a trace stores it: anything longer than a quarter of the string limit (in UTF-16 code
 * units, so its UTF-8 form always fits) is cut there. A replay compares strings through this too.
 */
export function clampString(v: string): string {
  return v.length > LIMITS.stringBytes / 4 ? v.slice(0, LIMITS.stringBytes / 4) : v;
}
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

function writeValue(s: Sink, v: TraceValue, depth = 0): void {
  if (depth > LIMITS.depth) throw new Error('trace: value nested too deep');
  if (v === undefined) s.byte(V.UNDEFINED);
  else if (v === null) s.byte(V.NULL);
  else if (v === true) s.byte(V.TRUE);
  else if (v === false) s.byte(V.FALSE);
  else if (typeof v === 'number') {
    if (Number.isSafeInteger(v) && !Object.is(v, -0)) {
      s.byte(v >= 0 ? V.UINT : V.NEGINT);
      s.uint(Math.abs(v));
    } else {
      s.byte(V.F64);
      s.reserve(8);
      new DataView(s.buf.buffer).setFloat64(s.len, v, true);
      s.len += 8;
    }
  } else if (typeof v === 'string') {
    const b = utf8.encode(clampString(v));
    s.byte(V.STRING);
    s.uint(b.length);
    s.bytes(b);
  } else if (Array.isArray(v)) {
    s.byte(V.LIST);
    s.uint(v.length);
    for (const x of v) writeValue(s, x, depth + 1);
  } else if ('typed' in v) {
    s.byte(V.TYPED);
    s.byte(TYPED_KINDS.indexOf(v.typed));
    s.uint(v.values.length);
    for (const x of v.values) writeValue(s, x, depth + 1);
  } else if ('bytes' in v) {
    s.byte(V.BYTES);
    s.uint(v.bytes.length);
    s.bytes(v.bytes);
  } else {
    s.byte(V.THROW);
    writeValue(s, v.throw, depth + 1);
  }
}

function writeRanges(s: Sink, ranges: readonly WindowRange[]): void {
  s.uint(ranges.length);
  let end = 0;
  for (const r of ranges) {
    s.uint(r.off - end);
    s.uint(r.data.length);
    s.bytes(r.data);
    end = r.off + r.data.length;
  }
}

/**
 * Builds a trace record by record. `take()` hands out the bytes encoded since the last take (the
 * recorder appends them to its file as it goes, so a crash keeps everything up to the last call).
 */
export class TraceWriter {
  private readonly out = new Sink();
  private readonly payload = new Sink();
  private readonly names = new Map<string, number>();
  /** Steps (CALL, HAL, RETURN records) written. */
  steps = 0;

  constructor(header: TraceHeader) {
    this.out.bytes(utf8.encode(TRACE_MAGIC));
    this.out.byte(TRACE_VERSION & 0xff);
    this.out.byte(TRACE_VERSION >> 8);
    this.out.byte(0);
    this.out.byte(0);
    const p = this.begin();
    const sha = Uint8Array.from(header.bundleSha256.match(/../g) ?? [], (h) => parseInt(h, 16));
    for (const v of [header.runtime, { bytes: sha }, header.bundleKind, header.boardJson, header.windowSize, header.abi, header.peerId, header.startedAt, header.recorder] as TraceValue[]) writeValue(p, v);
    this.finish(R.HEADER);
  }

  private begin(): Sink {
    this.payload.len = 0;
    return this.payload;
  }

  private finish(type: number): void {
    this.out.byte(type);
    this.out.uint(this.payload.len);
    this.out.bytes(this.payload.buf.subarray(0, this.payload.len));
  }

  private nameId(name: string): number {
    let id = this.names.get(name);
    if (id === undefined) {
      if (this.names.size >= LIMITS.names) throw new Error(`trace: more than ${LIMITS.names} distinct names`);
      id = this.names.size;
      this.names.set(name, id);
      const p = this.begin();
      p.uint(id);
      writeValue(p, name);
      this.finish(R.NAME);
    }
    return id;
  }

  /** The window when recording started (non-zero bytes only). */
  init(ranges: readonly WindowRange[]): void {
    writeRanges(this.begin(), ranges);
    this.finish(R.INIT);
  }

  call(dtUs: number, name: string, args: readonly TraceValue[]): void {
    const id = this.nameId(name);
    const p = this.begin();
    p.uint(Math.max(0, Math.round(dtUs)));
    p.uint(id);
    writeValue(p, [...args]);
    this.finish(R.CALL);
    this.steps++;
  }

  ret(dtUs: number, value: TraceValue, fault: { kind: string; detail: string } | null): void {
    const p = this.begin();
    p.uint(Math.max(0, Math.round(dtUs)));
    writeValue(p, value);
    writeValue(p, fault ? [fault.kind, fault.detail] : undefined);
    this.finish(R.RETURN);
    this.steps++;
  }

  /** `args` as they were before the call; `outs`: per arg, a typed array's contents after it (else undefined). */
  hal(dtUs: number, name: string, args: readonly TraceValue[], result: TraceValue, outs: readonly TraceValue[] = []): void {
    const id = this.nameId(name);
    const p = this.begin();
    p.uint(Math.max(0, Math.round(dtUs)));
    p.uint(id);
    writeValue(p, [...args]);
    writeValue(p, result);
    writeValue(p, [...outs]);
    this.finish(R.HAL);
    this.steps++;
  }

  /** Bytes the firmware wrote since the last sync point. */
  writes(ranges: readonly WindowRange[]): void {
    if (ranges.length === 0) return;
    writeRanges(this.begin(), ranges);
    this.finish(R.WRITES);
  }

  /** Bytes that arrived from outside (frontend, services) since the last sync point. */
  input(ranges: readonly WindowRange[]): void {
    if (ranges.length === 0) return;
    writeRanges(this.begin(), ranges);
    this.finish(R.INPUT);
  }

  end(): void {
    const p = this.begin();
    p.uint(this.steps);
    this.finish(R.END);
  }

  /** Bytes encoded since the last `take()` (a copy). */
  take(): Uint8Array {
    const b = this.out.buf.slice(0, this.out.len);
    this.out.len = 0;
    return b;
  }

  /** Bytes waiting for `take()`. */
  get pending(): number {
    return this.out.len;
  }
}

// ---- reading -------------------------------------------------------------------------------------

/** Cursor over one record's payload; every read is bounds-checked and fails with a TraceFormatError. */
class Cursor {
  pos: number;
  constructor(
    private readonly b: Uint8Array,
    start: number,
    private readonly end: number,
    private readonly where: () => string,
  ) {
    this.pos = start;
  }
  fail(why: string): never {
    throw new TraceFormatError(`${this.where()}: ${why}`);
  }
  get left(): number {
    return this.end - this.pos;
  }
  byte(): number {
    if (this.pos >= this.end) this.fail('record ends early');
    return this.b[this.pos++]!;
  }
  uint(): number {
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      const x = this.byte();
      v += (x & 0x7f) * mul;
      if (!(x & 0x80)) {
        if (v > Number.MAX_SAFE_INTEGER) this.fail('integer above 2^53');
        return v;
      }
      mul *= 0x80;
    }
    return this.fail('integer longer than 8 bytes');
  }
  take(n: number): Uint8Array {
    if (n > this.left) this.fail(`needs ${n} bytes, ${this.left} left in the record`);
    const s = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
  value(depth = 0): TraceValue {
    const tag = this.byte();
    switch (tag) {
      case V.UNDEFINED:
        return undefined;
      case V.NULL:
        return null;
      case V.TRUE:
        return true;
      case V.FALSE:
        return false;
      case V.UINT:
        return this.uint();
      case V.NEGINT:
        return -this.uint();
      case V.F64: {
        const b = this.take(8);
        return new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, true);
      }
      case V.STRING: {
        const n = this.uint();
        if (n > LIMITS.stringBytes) this.fail(`string of ${n} bytes (limit ${LIMITS.stringBytes})`);
        try {
          return fromUtf8.decode(this.take(n));
        } catch (e) {
          if (e instanceof TraceFormatError) throw e;
          return this.fail('string is not UTF-8');
        }
      }
      case V.LIST:
      case V.TYPED: {
        if (depth >= LIMITS.depth) this.fail('values nested too deep');
        const kind = tag === V.TYPED ? this.byte() : 0;
        if (tag === V.TYPED && !(kind >= 1 && kind < TYPED_KINDS.length)) this.fail(`unknown typed-array kind ${kind}`);
        const n = this.uint();
        // Each element takes at least one byte: a count above what is left is a lie, refused before allocating.
        if (n > LIMITS.listItems || n > this.left) this.fail(`list of ${n} elements (limit ${LIMITS.listItems}, ${this.left} bytes left)`);
        const out: TraceValue[] = [];
        for (let i = 0; i < n; i++) out.push(this.value(depth + 1));
        if (tag === V.LIST) return out;
        if (!out.every((x) => typeof x === 'number')) this.fail('typed array holds a non-number');
        return { typed: TYPED_KINDS[kind]!, values: out as number[] };
      }
      case V.BYTES:
        return { bytes: this.take(this.uint()) };
      case V.THROW: {
        const m = this.value(depth + 1);
        if (typeof m !== 'string') this.fail('exception without a message');
        return { throw: m };
      }
      default:
        return this.fail(`unknown value tag ${tag}`);
    }
  }
  list(): TraceValue[] {
    const v = this.value();
    if (!Array.isArray(v)) this.fail('expected a list of values');
    return v;
  }
  str(): string {
    const v = this.value();
    if (typeof v !== 'string') this.fail('expected a string');
    return v;
  }
  num(): number {
    const v = this.value();
    if (typeof v !== 'number') this.fail('expected a number');
    return v;
  }
  ranges(windowSize: number): WindowRange[] {
    const n = this.uint();
    if (n > this.left) this.fail(`${n} ranges in ${this.left} bytes`);
    const out: WindowRange[] = [];
    let end = 0;
    for (let i = 0; i < n; i++) {
      const off = end + this.uint();
      const len = this.uint();
      if (len === 0 || off + len > windowSize) this.fail(`range [${off} +${len}] outside the ${windowSize}-byte window`);
      out.push({ off, data: this.take(len) });
      end = off + len;
    }
    if (this.left) this.fail(`${this.left} bytes after the ranges`);
    return out;
  }
}

/** Reads the fixed 12-byte start of a trace; returns where records begin. */
function readStart(b: Uint8Array, file: string): number {
  if (b.length < 12) throw new TraceFormatError(`${file}: not a Bulkhead trace (${b.length} bytes, shorter than the 12-byte start)`);
  for (let i = 0; i < 8; i++) {
    if (b[i] !== TRACE_MAGIC.charCodeAt(i)) throw new TraceFormatError(`${file}: not a Bulkhead trace (no BHTRACE magic)`);
  }
  const version = b[8]! | (b[9]! << 8);
  const flags = b[10]! | (b[11]! << 8);
  if (version !== TRACE_VERSION) throw new TraceFormatError(`${file}: trace format version ${version}, this reader knows version ${TRACE_VERSION}`);
  if (flags !== 0) throw new TraceFormatError(`${file}: trace flags 0x${flags.toString(16)} unknown to this reader`);
  return 12;
}

/**
 * Decodes a trace record by record (a generator: a replay stops early without decoding the rest).
 * The first record is the HEADER. Throws a TraceFormatError at the first thing that is wrong; the
 * records before it were complete and valid.
 */
export function* readTrace(b: Uint8Array, file = 'trace'): Generator<TraceRecord> {
  if (b.length > LIMITS.fileBytes) throw new TraceFormatError(`${file}: ${b.length} bytes, over the ${LIMITS.fileBytes}-byte limit for a trace`);
  let pos = readStart(b, file);
  const names: string[] = [];
  let windowSize = 0;
  let index = 0;
  let sawEnd = false;
  while (pos < b.length) {
    const at = pos;
    const where = () => `${file}: byte ${at} (record ${index})`;
    const head: Cursor = new Cursor(b, pos, b.length, where);
    const type = head.byte();
    let len: number;
    try {
      len = head.uint();
    } catch {
      throw new TraceFormatError(`${where()}: truncated (the record's length is cut off)`, index);
    }
    if (len > head.left) throw new TraceFormatError(`${where()}: truncated (the record needs ${len} bytes, the file has ${head.left} more)`, index);
    if (sawEnd) throw new TraceFormatError(`${where()}: data after the END record`, index);
    const c: Cursor = new Cursor(b, head.pos, head.pos + len, where);
    pos = head.pos + len;
    let rec: TraceRecord;
    if (index === 0 && type !== R.HEADER) c.fail('the first record is not a HEADER');
    switch (type) {
      case R.HEADER: {
        if (index !== 0) c.fail('a second HEADER');
        const runtime = c.str();
        const sha = c.value();
        if (!(sha && typeof sha === 'object' && 'bytes' in sha && sha.bytes.length === 32)) c.fail('bundle hash is not 32 bytes');
        const bundleKind = c.str();
        const boardJson = c.str();
        windowSize = c.num();
        if (!(Number.isInteger(windowSize) && windowSize >= 4096 && windowSize <= LIMITS.windowBytes)) c.fail(`window of ${windowSize} bytes (a replay maps at most ${LIMITS.windowBytes})`);
        const abi = c.num();
        const peerId = c.num();
        const startedAt = c.num();
        const recorder = c.str();
        let board: { window?: { size?: unknown } } | null = null;
        try {
          board = JSON.parse(boardJson) as { window?: { size?: unknown } };
        } catch {
          c.fail('the board is not JSON');
        }
        if (!board || typeof board !== 'object' || board.window?.size !== windowSize) c.fail(`the board's window.size is not the header's ${windowSize} bytes`);
        // Fields a later minor revision may append are skipped: the record's length bounds them.
        const header: TraceHeader = { runtime, bundleSha256: Buffer.from(sha.bytes).toString('hex'), bundleKind, boardJson, windowSize, abi, peerId, startedAt, recorder };
        rec = { at, index, type: 'header', header };
        break;
      }
      case R.INIT:
        rec = { at, index, type: 'init', ranges: c.ranges(windowSize) };
        break;
      case R.NAME: {
        const id = c.uint();
        if (id !== names.length || id >= LIMITS.names) c.fail(`name id ${id} out of sequence (expected ${names.length}, limit ${LIMITS.names})`);
        const name = c.str();
        names.push(name);
        rec = { at, index, type: 'name', id, name };
        break;
      }
      case R.CALL:
      case R.HAL: {
        const dtUs = c.uint();
        const id = c.uint();
        if (id >= names.length) c.fail(`name id ${id} used before its NAME record`);
        const args = c.list();
        rec = type === R.CALL ? { at, index, type: 'call', dtUs, name: names[id]!, args } : { at, index, type: 'hal', dtUs, name: names[id]!, args, result: c.value(), outs: c.list() };
        break;
      }
      case R.RETURN: {
        const dtUs = c.uint();
        const value = c.value();
        const f = c.value();
        let fault: { kind: string; detail: string } | null = null;
        if (f !== undefined) {
          if (!(Array.isArray(f) && f.length === 2 && typeof f[0] === 'string' && typeof f[1] === 'string')) c.fail('fault is not [kind, detail]');
          fault = { kind: f[0] as string, detail: f[1] as string };
        }
        rec = { at, index, type: 'return', dtUs, value, fault };
        break;
      }
      case R.WRITES:
      case R.INPUT:
        rec = { at, index, type: type === R.WRITES ? 'writes' : 'input', ranges: c.ranges(windowSize) };
        break;
      case R.END:
        rec = { at, index, type: 'end', steps: c.uint() };
        sawEnd = true;
        break;
      default:
        c.fail(`unknown record type 0x${type.toString(16)}`);
    }
    if (type !== R.HEADER && type !== R.NAME && type !== R.END && type !== R.INIT && type !== R.WRITES && type !== R.INPUT && c.left) c.fail(`${c.left} stray bytes at the end of the record`);
    index++;
    yield rec;
  }
  if (index === 0) throw new TraceFormatError(`${file}: no HEADER record`);
}

/** The header of a trace (reads only the first record). */
export function readHeader(b: Uint8Array, file = 'trace'): TraceHeader {
  for (const r of readTrace(b, file)) {
    if (r.type === 'header') return r.header;
    break;
  }
  throw new TraceFormatError(`${file}: no HEADER record`);
}
