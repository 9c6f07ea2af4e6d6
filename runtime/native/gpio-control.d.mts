/** A GPIO line as a backend's control socket reports it (docs/gpio.md): the node runtime's host view has the same shape. */
import type { GpioLineState } from '../node/gpio';
export type { GpioLineState };
export function parseLineState(text: string): GpioLineState;
/** A client of a running backend's gpio control socket. */
export class GpioControl {
  static connect(path: string, timeoutMs?: number): Promise<GpioControl>;
  command(cmd: string, timeoutMs?: number): Promise<string[]>;
  list(): Promise<GpioLineState[]>;
  get(line: string | number): Promise<GpioLineState>;
  set(line: string | number, value: number): Promise<void>;
  close(): void;
}
