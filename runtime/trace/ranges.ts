/**
 * Window byte ranges for traces: the bytes where two window images differ, found fast (memcmp over
 * blocks first, words and bytes only inside differing blocks), and ranges applied back. Written by
 * hand because it is this project's own data (window deltas in a trace), not a general diff.
 */

/** One range of window bytes: offset and the bytes there. */
export interface WindowRange {
  off: number;
  data: Uint8Array;
}

/** Blocks compared by memcmp (Buffer.compare) before bytes are looked at: coarse, then fine. */
const COARSE = 65536;
const BLOCK = 1024;
/** Changed runs closer than this are merged into one range (a range costs ~3 bytes of framing). */
const MERGE_GAP = 8;

const asBuffer = (a: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/**
 * The ranges of `now` that differ from `base` (same length), as [offset, length] pairs in increasing
 * order; runs separated by fewer than MERGE_GAP equal bytes are merged.
 */
export function changedSpans(now: Uint8Array, base: Uint8Array): [number, number][] {
  if (now.length !== base.length) throw new Error(`window images differ in size (${now.length} vs ${base.length})`);
  const spans: [number, number][] = [];
  const n = asBuffer(now);
  const b = asBuffer(base);
  let start = -1;
  let end = -1;
  const flush = () => {
    if (start >= 0) spans.push([start, end - start]);
    start = -1;
  };
  if (n.compare(b) === 0) return spans;
  for (let big = 0; big < now.length; big += COARSE) {
    const bigLim = Math.min(big + COARSE, now.length);
    if (n.compare(b, big, bigLim, big, bigLim) === 0) continue;
    for (let blk = big; blk < bigLim; blk += BLOCK) {
      const lim = Math.min(blk + BLOCK, bigLim);
      if (n.compare(b, blk, lim, blk, lim) === 0) continue;
      for (let i = blk; i < lim; i++) {
        if (now[i] === base[i]) continue;
        if (start >= 0 && i - end < MERGE_GAP) end = i + 1;
        else {
          flush();
          start = i;
          end = i + 1;
        }
      }
    }
  }
  flush();
  return spans;
}

/** `changedSpans` with the bytes of `now` (views into it: copy before `now` changes). */
export function changedRanges(now: Uint8Array, base: Uint8Array): WindowRange[] {
  return changedSpans(now, base).map(([off, len]) => ({ off, data: now.subarray(off, off + len) }));
}

/** Writes every range into `dst`. */
export function applyRanges(dst: Uint8Array, ranges: readonly WindowRange[]): void {
  for (const r of ranges) dst.set(r.data, r.off);
}

/** Copies the spans of `src` into `dst` (both window images of one size). */
export function copySpans(dst: Uint8Array, src: Uint8Array, spans: readonly [number, number][]): void {
  for (const [off, len] of spans) dst.set(src.subarray(off, off + len), off);
}
