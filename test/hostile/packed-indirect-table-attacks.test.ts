import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_F_RING_INDIRECT_DESC, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../../firmware/virtio';
import type { PackedRawRing } from '../../frontend/fuzz/raw';
import { BASE_FEATURES } from '../../frontend/fuzz/raw';
import { PackedRing } from '../../frontend/fuzz/ring';
import { assertBusAnswers, assertNeedsReset, CONSOLE, hostile, livePackedRng, RNG } from './harness';

const W = VIRTQ_DESC_F_WRITE;
const N = VIRTQ_DESC_F_NEXT;
const I = VIRTQ_DESC_F_INDIRECT;
const avail = (f: number) => PackedRing.availFlags(1, f);

/** Each attack writes a table at `t` and ring descriptors from 0; the expected violation code (virtio §2.8.7, §2.8.19). */
const attacks: [string, string, (r: PackedRawRing, t: number) => void, bigint?][] = [
  ['zero-length table', 'INDIRECT_BAD_LEN', (r, t) => r.setDesc(0, t, 0, 0, avail(I))],
  ['length not a multiple of 16', 'INDIRECT_BAD_LEN', (r, t) => r.setDesc(0, t, 24, 0, avail(I))],
  ['more than 1024 entries', 'INDIRECT_BAD_LEN', (r, t) => r.setDesc(0, t, 1025 * 16, 0, avail(I))],
  ['table outside the window', 'ADDR_OUTSIDE_WINDOW', (r) => r.setDesc(0, 0xfffff000, 64, 0, avail(I))],
  ['table over the FIFOs', 'ADDR_OUTSIDE_WINDOW', (r) => r.setDesc(0, 0x1000, 64, 0, avail(I))],
  ['INDIRECT inside the table', 'NESTED_INDIRECT', (r, t) => { r.setDesc(0, r.data + 0x4000, 8, 0, W, t); r.setDesc(1, t + 64, 16, 0, I, t); r.setDesc(0, t, 32, 0, avail(I)); }],
  ['INDIRECT with NEXT', 'INDIRECT_WITH_NEXT', (r, t) => { r.setDesc(1, r.data + 0x4000, 8, 0, avail(W)); r.setDesc(0, t, 32, 0, avail(I | N)); }],
  ['INDIRECT at the end of a list', 'INDIRECT_IN_CHAIN', (r, t) => { r.setDesc(1, t, 32, 0, avail(I)); r.setDesc(0, r.data + 0x4000, 8, 0, avail(W | N)); }],
  ['readable after writable inside the table', 'READABLE_AFTER_WRITABLE', (r, t) => { r.setDesc(0, r.data + 0x4000, 8, 0, W, t); r.setDesc(1, r.data + 0x4010, 8, 0, 0, t); r.setDesc(0, t, 32, 0, avail(I)); }],
  ['a table entry outside the pool', 'ADDR_OUTSIDE_WINDOW', (r, t) => { r.setDesc(0, 0x40, 8, 0, W, t); r.setDesc(0, t, 16, 0, avail(I)); }],
  ['INDIRECT without the feature', 'INDIRECT_NOT_NEGOTIATED', (r, t) => { r.setDesc(0, r.data + 0x4000, 8, 0, W, t); r.setDesc(0, t, 16, 0, avail(I)); }, BASE_FEATURES],
];

test('malformed packed indirect tables are refused with NEEDS_RESET, nothing written', async () => {
  for (const [what, code, build, features] of attacks) {
    const { sim, drv, area } = await hostile();
    const ring = livePackedRng(drv, area(0), 8, features ?? BASE_FEATURES | VIRTIO_F_RING_INDIRECT_DESC);
    const table = ring.data;
    build(ring, table);
    const written = sim.bytes.slice(ring.data, ring.data + 0x8000);
    ring.notify();
    assertNeedsReset(sim, drv, RNG, `for an indirect ${what}`);
    assert.is(sim.stats().devices[RNG]!.counters[`violation.${code}`], 1, `${what}: expected violation ${code}, got ${JSON.stringify(sim.stats().devices[RNG]!.counters)}`);
    assert.ok(Buffer.compare(sim.bytes.slice(ring.data, ring.data + 0x8000), written) === 0, `${what}: bytes written through a refused buffer`);
    assert.equal(ring.reap(), [], `${what}: a refused buffer was used`);
    assertBusAnswers(drv, [RNG, CONSOLE], `after an indirect ${what}`);
    sim.dispose();
  }
});

test('flags other than WRITE inside a table, and WRITE on the INDIRECT descriptor, are ignored (virtio §2.8.7)', async () => {
  const { sim, drv, area } = await hostile();
  const ring = livePackedRng(drv, area(0), 8, BASE_FEATURES | VIRTIO_F_RING_INDIRECT_DESC);
  const t = ring.data + 0x1000;
  ring.setDesc(0, ring.data, 8, 9, W | N | 0x8080, t); // NEXT, AVAIL, USED and an id: reserved in a table
  ring.setDesc(1, ring.data + 8, 8, 3, W, t);
  ring.publish(ring.write([{ off: t, len: 32 }], 4, I | W));
  ring.notify();
  assert.equal(ring.reap().map((u) => [u.id, u.len]), [[4, 16]], 'both table entries filled, buffer id from the ring');
  assert.not.ok(sim.needsReset(RNG));
  sim.dispose();
});

test.run();
