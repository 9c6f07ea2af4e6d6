/**
 * The node runtime's GPIO lines: the backing of `gpio` services (docs/hal.md, docs/gpio.md).
 * runtime/native/gpio.c is the same in C (with its control socket); test/shared runs one suite against both.
 *
 * Per line: the direction and output value the driver set, and the value the host drives on it. A line's
 * level is its output value while it is an output, else the host's value. Every change of a level (from
 * either side) sets the line's rose or fell latch, which the next `sample` reports and clears, so an edge
 * is never lost between samples, and any number of edges costs two bits.
 */

export const GPIO_LEVEL = 1;
export const GPIO_ROSE = 2;
export const GPIO_FELL = 4;
export const GPIO_DIRECTION_NONE = 0;
export const GPIO_DIRECTION_OUT = 1;
export const GPIO_DIRECTION_IN = 2;
export const GPIO_MAX_LINES = 256;
const EINVAL = 22;

/** A line as the host sees it. */
export interface GpioLineState {
  line: number;
  name: string;
  direction: 'none' | 'out' | 'in';
  /** The line's level now. */
  value: number;
  /** The value the driver last set for output. */
  output: number;
  /** The value the host drives (seen while the line is not an output). */
  input: number;
}

const DIRECTION_NAMES = ['none', 'out', 'in'] as const;

export class GpioLines {
  private readonly direction: Uint8Array;
  private readonly output: Uint8Array;
  private readonly input: Uint8Array;
  private readonly edges: Uint8Array;

  constructor(
    readonly names: readonly string[],
    /** Called after the host changed a line's level (the runtime then runs `onService`). */
    private readonly onHostChange: () => void = () => {},
  ) {
    const n = names.length;
    if (n < 1 || n > GPIO_MAX_LINES) throw new Error(`gpio: 1..${GPIO_MAX_LINES} lines, got ${n}`);
    this.direction = new Uint8Array(n).fill(GPIO_DIRECTION_IN);
    this.output = new Uint8Array(n);
    this.input = new Uint8Array(n);
    this.edges = new Uint8Array(n);
  }

  get count(): number {
    return this.names.length;
  }

  private level(i: number): number {
    return this.direction[i] === GPIO_DIRECTION_OUT ? this.output[i]! : this.input[i]!;
  }

  /** Runs `change` on line `i` and latches the edge it makes, if any. */
  private change(i: number, change: () => void): void {
    const before = this.level(i);
    change();
    const after = this.level(i);
    if (after !== before) this.edges[i]! |= after ? GPIO_ROSE : GPIO_FELL;
  }

  private valid(i: number): boolean {
    return Number.isInteger(i) && i >= 0 && i < this.names.length;
  }

  // ---- the HAL side (the firmware) ----

  setDirection(i: number, d: number): number {
    if (!this.valid(i) || !(d === GPIO_DIRECTION_NONE || d === GPIO_DIRECTION_OUT || d === GPIO_DIRECTION_IN)) return -EINVAL;
    this.change(i, () => (this.direction[i] = d));
    return 0;
  }

  setValue(i: number, v: number): number {
    if (!this.valid(i) || !(v === 0 || v === 1)) return -EINVAL;
    this.change(i, () => (this.output[i] = v));
    return 0;
  }

  /** Levels and edges since the last sample, into `out` (a function so the runtime can set a QuickJS array). */
  sample(put: (i: number, v: number) => void): number {
    for (let i = 0; i < this.names.length; i++) {
      put(i, this.level(i) | this.edges[i]!);
      this.edges[i] = 0;
    }
    return this.names.length;
  }

  // ---- the host side ----

  /** The line named `name`, or numbered `name`; -1 if there is none. */
  find(name: string | number): number {
    if (typeof name === 'number') return this.valid(name) ? name : -1;
    const byName = this.names.indexOf(name);
    if (byName >= 0) return byName;
    return /^[0-9]+$/.test(name) && this.valid(Number(name)) ? Number(name) : -1;
  }

  /** The host drives line `i` to `v` (what it reads while the line is an input). */
  hostSet(i: number, v: number): void {
    if (!this.valid(i) || !(v === 0 || v === 1)) throw new Error(`gpio: no line ${i} or value ${v} is not 0 or 1`);
    const before = this.level(i);
    this.change(i, () => (this.input[i] = v));
    if (this.level(i) !== before) this.onHostChange();
  }

  state(i: number): GpioLineState {
    return { line: i, name: this.names[i]!, direction: DIRECTION_NAMES[this.direction[i]!]!, value: this.level(i), output: this.output[i]!, input: this.input[i]! };
  }

  list(): GpioLineState[] {
    return this.names.map((_, i) => this.state(i));
  }
}
