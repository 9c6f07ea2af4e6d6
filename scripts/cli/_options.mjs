// Value parsers for command options: a bad value is a clear one-line error naming the option.
import { InvalidArgumentError } from 'commander';

/** A number > 0 (seconds, minutes). */
export function positive(v) {
  const n = Number(v);
  if (!(n > 0) || !Number.isFinite(n)) throw new InvalidArgumentError('expected a number greater than 0');
  return n;
}

/** A number ≥ 0. */
export function nonNegative(v) {
  const n = Number(v);
  if (!(n >= 0) || !Number.isFinite(n)) throw new InvalidArgumentError('expected a number, 0 or more');
  return n;
}

/** An integer (any sign: seeds). */
export function integer(v) {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError('expected an integer');
  return n;
}

/** An integer ≥ 1 (counts). */
export function count(v) {
  const n = integer(v);
  if (n < 1) throw new InvalidArgumentError('expected an integer, 1 or more');
  return n;
}

/** For repeatable options: collects every value in order. */
export function collect(v, prev = []) {
  return [...prev, v];
}

/** The transports a board can name (docs/transport.md): the choices of every `--transport` option. */
export const TRANSPORTS = ['msg', 'regblock', 'mmio'];
