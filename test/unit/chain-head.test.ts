// DescriptorChain.readHead / writeHead (the per-packet header + payload calls) against the cursor calls
// they stand for, over every segment layout a driver can build: same header bytes, same window ranges.
// The cursor's position afterwards is unspecified (the per-packet path does not need it), so the tests
// check instead that reader() / writer() rewinds it to serve the whole chain again.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../../firmware/virtio';
import { CHAIN_RANGES, type ChainReader, type ChainWriter, type DescriptorChain } from '../../firmware/virtqueue/chain';
import { SplitQueue } from '../../firmware/virtqueue/split';
import { GuestWindow } from '../../firmware/window/window';

const POOL = 0x1000;
const SIZE = 16;
const DESC = POOL;
const AVAIL = POOL + 16 * SIZE;
const USED = POOL + 0x1000;
const DATA = POOL + 0x2000;
const HDR = 12;

/** Segment layouts as [address offset from DATA, length]: header and payload split every way. */
const LAYOUTS: [number, number][][] = [
  [[0, 12 + 64]], // one buffer
  [[0, 12], [0x100, 64]], // header descriptor, payload descriptor
  [[0, 12 + 10], [0x100, 54]], // payload split over two
  [[0, 12], [0x100, 30], [0x200, 34]], // header alone, payload over two
  [[0, 8], [0x100, 4 + 64]], // header split over two descriptors
  [[2, 12 + 64]], // unaligned header
  [[0, 12]], // header only, no payload
];

function chainOf(layout: [number, number][], write: boolean): { chain: DescriptorChain; bytes: Uint8Array } {
  const buf = new ArrayBuffer(1 << 16);
  const v = new DataView(buf);
  for (let k = 0; k < 0x400; k++) v.setUint8(DATA + k, (k * 7 + 1) & 0xff);
  const win = new GuestWindow(buf, POOL);
  layout.forEach(([off, len], i) => {
    v.setUint32(DESC + 16 * i, DATA + off, true);
    v.setUint32(DESC + 16 * i + 8, len, true);
    v.setUint16(DESC + 16 * i + 12, (i + 1 < layout.length ? VIRTQ_DESC_F_NEXT : 0) | (write ? VIRTQ_DESC_F_WRITE : 0), true);
    v.setUint16(DESC + 16 * i + 14, i + 1, true);
  });
  v.setUint16(AVAIL + 4, 0, true);
  v.setUint16(AVAIL + 2, 1, true);
  const chain = new SplitQueue(win, 0, SIZE, DESC, AVAIL, USED, false, false, () => {}).pop();
  if (!chain) throw new Error('no chain popped');
  return { chain, bytes: new Uint8Array(buf, DATA, 0x400) };
}

const state = (c: ChainReader | ChainWriter) => ({ seg: c.seg, segPos: c.segPos, remaining: c.remaining, written: c.written });
const ranges = (n: number) => Array.from(CHAIN_RANGES.subarray(0, 2 * n));

test('readHead: the header words and payload ranges of reader() + readWords + take; reader() rewinds after it', () => {
  for (const layout of LAYOUTS) {
    const { chain } = chainOf(layout, false);
    const fast = new Uint32Array(5);
    const nFast = chain.readHead(fast, HDR);
    const got = { hdr: Array.from(fast), ranges: ranges(nFast) };
    const slow = new Uint32Array(5);
    const r = chain.reader();
    assert.equal(state(r), { seg: 0, segPos: 0, remaining: chain.readableBytes, written: 0 }, `layout ${JSON.stringify(layout)}: reader() after readHead is not rewound`);
    r.readWords(slow, HDR);
    const nSlow = r.take(r.remaining);
    const want = { hdr: Array.from(slow), ranges: ranges(nSlow) };
    assert.equal(got, want, `layout ${JSON.stringify(layout)}: readHead differs from the cursor calls`);
  }
});

test('writeHead: the header bytes written and payload ranges of writer() + writeWords + take; writer() rewinds after it', () => {
  for (const layout of LAYOUTS) {
    const len = layout.reduce((s, [, l]) => s + l, 0) - HDR;
    const hdr = Uint32Array.of(0x04030201, 0x08070605, 0x000b0a09);
    const { chain, bytes } = chainOf(layout, true);
    bytes.fill(0);
    const nFast = chain.writeHead(hdr, HDR, len);
    const got = { bytes: Array.from(bytes), ranges: ranges(nFast) };
    bytes.fill(0);
    const w = chain.writer();
    assert.equal(state(w), { seg: chain.readableCount, segPos: 0, remaining: chain.writableBytes, written: 0 }, `layout ${JSON.stringify(layout)}: writer() after writeHead is not rewound`);
    w.writeWords(hdr, HDR);
    const nSlow = w.take(len);
    const want = { bytes: Array.from(bytes), ranges: ranges(nSlow) };
    assert.equal(got, want, `layout ${JSON.stringify(layout)}: writeHead differs from the cursor calls`);
  }
});

test('writeLastByte: the byte a skip to the end of writer() and writeU8 write, on every writable layout; none without a writable byte', () => {
  for (const layout of LAYOUTS) {
    const a = chainOf(layout, true);
    const w = a.chain.writer();
    w.skip(w.remaining - 1);
    w.writeU8(0xa5);
    assert.ok(a.bytes.some((x, k) => x !== ((k * 7 + 1) & 0xff)), `layout ${JSON.stringify(layout)}: the writer's last byte already held 0xa5`);
    const b = chainOf(layout, true);
    b.chain.writeLastByte(0xa5);
    assert.equal(Array.from(b.bytes), Array.from(a.bytes), `layout ${JSON.stringify(layout)}: writeLastByte wrote a different byte than the writer's last`);
  }
  const ro = chainOf(LAYOUTS[0]!, false);
  assert.throws(() => ro.chain.writeLastByte(1), /no writable byte/, 'a chain without a writable byte took writeLastByte');
});

test.run();
