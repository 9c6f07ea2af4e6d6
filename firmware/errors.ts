/**
 * Guest-caused faults are one error family. They are raised while parsing what the frontend wrote
 * and caught in exactly one place, the transport's dispatcher. Host bugs stay plain `Error`s.
 */
export class GuestProtocolError extends Error {
  /** A short stable code (used as a counter name), the spec section the rule comes from, and the detail. */
  constructor(
    readonly code: string,
    readonly section: string,
    detail: string,
  ) {
    super(`${code} (${section}): ${detail}`);
    this.name = 'GuestProtocolError';
  }
}

/** Throws a GuestProtocolError unless `ok`. */
export function guestCheck(ok: boolean, code: string, section: string, detail: string): asserts ok {
  if (!ok) throw new GuestProtocolError(code, section, detail);
}
