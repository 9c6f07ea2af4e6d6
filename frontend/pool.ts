/**
 * The frontend's allocator over the window pool (vrings and bounce buffers): first fit over a sorted
 * free list, merged on free. This is the "frontend changes" of the talk: every buffer a driver hands
 * the device is bounced into the window first, so the backend never needs the rest of guest memory.
 */
export class PoolAllocator {
  private free: { off: number; len: number }[];
  /** Bytes currently allocated. */
  used = 0;

  constructor(
    readonly start: number,
    readonly size: number,
  ) {
    this.free = [{ off: start, len: size }];
  }

  /** Allocates `len` bytes aligned to `align` (a power of two); throws when the pool is exhausted. */
  alloc(len: number, align = 8): number {
    if (len <= 0) throw new Error(`pool: cannot allocate ${len} bytes`);
    for (let i = 0; i < this.free.length; i++) {
      const r = this.free[i]!;
      const off = Math.ceil(r.off / align) * align;
      const pad = off - r.off;
      if (r.len < pad + len) continue;
      const rest = { off: off + len, len: r.len - pad - len };
      const parts = [];
      if (pad > 0) parts.push({ off: r.off, len: pad });
      if (rest.len > 0) parts.push(rest);
      this.free.splice(i, 1, ...parts);
      this.used += len;
      return off;
    }
    throw new Error(`window pool exhausted: ${len} bytes wanted, ${this.size - this.used} free in fragments`);
  }

  /** Returns [off, off+len) to the pool. */
  release(off: number, len: number): void {
    let i = 0;
    while (i < this.free.length && this.free[i]!.off < off) i++;
    this.free.splice(i, 0, { off, len });
    this.used -= len;
    // merge with neighbours
    for (let j = Math.max(0, i - 1); j < this.free.length - 1; ) {
      const a = this.free[j]!;
      const b = this.free[j + 1]!;
      if (a.off + a.len === b.off) {
        a.len += b.len;
        this.free.splice(j + 1, 1);
      } else if (j >= i) break;
      else j++;
    }
  }
}
