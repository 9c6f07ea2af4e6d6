import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_F_RING_INDIRECT_DESC, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../../firmware/virtio';
import type { Ring } from '../../frontend/fuzz/raw';
import { BASE_FEATURES } from '../../frontend/fuzz/raw';
import { assertBusAnswers, assertNeedsReset, CONSOLE, hostile, liveRng, RNG } from './harness';

const W = VIRTQ_DESC_F_WRITE;
const N = VIRTQ_DESC_F_NEXT;
const I = VIRTQ_DESC_F_INDIRECT;

/** Each attack writes a table at `t` and the head descriptor 0; the expected violation code. */
const attacks: [string, string, (r: Ring, t: number) => void, bigint?][] = [
  ['zero-length table', 'INDIRECT_BAD_LEN', (r, t) => r.setDesc(0, t, 0, I)],
  ['length not a multiple of 16', 'INDIRECT_BAD_LEN', (r, t) => r.setDesc(0, t, 24, I)],
  ['more than 1024 entries', 'INDIRECT_BAD_LEN', (r, t) => r.setDesc(0, t, 1025 * 16, I)],
  ['table outside the window', 'ADDR_OUTSIDE_WINDOW', (r) => r.setDesc(0, 0xfffff000, 64, I)],
  ['table over the FIFOs', 'ADDR_OUTSIDE_WINDOW', (r) => r.setDesc(0, 0x1000, 64, I)],
  ['INDIRECT with NEXT', 'INDIRECT_WITH_NEXT', (r, t) => r.setDesc(0, t, 32, I | N, 1)],
  ['loop inside the table', 'CHAIN_LOOP', (r, t) => { r.setDesc(0, r.data + 0x4000, 8, W | N, 1, t); r.setDesc(1, r.data + 0x4010, 8, W | N, 0, t); r.setDesc(0, t, 32, I); }],
  ['next beyond the table', 'NEXT_OUT_OF_RANGE', (r, t) => { r.setDesc(0, r.data + 0x4000, 8, W | N, 2, t); r.setDesc(0, t, 32, I); }],
  ['nested indirect', 'NESTED_INDIRECT', (r, t) => { r.setDesc(0, t + 64, 16, I, 0, t); r.setDesc(0, t, 16, I); }],
  ['readable after writable inside the table', 'READABLE_AFTER_WRITABLE', (r, t) => { r.setDesc(0, r.data + 0x4000, 8, W | N, 1, t); r.setDesc(1, r.data + 0x4010, 8, 0, 0, t); r.setDesc(0, t, 32, I); }],
  ['INDIRECT without the feature', 'INDIRECT_NOT_NEGOTIATED', (r, t) => { r.setDesc(0, r.data + 0x4000, 8, W, 0, t); r.setDesc(0, t, 16, I); }, BASE_FEATURES],
];

test('malformed indirect tables are refused with NEEDS_RESET, nothing written (virtio §2.7.5.3)', async () => {
  for (const [what, code, build, features] of attacks) {
    const { sim, drv, area } = await hostile();
    const ring = liveRng(drv, area(0), 8, features ?? BASE_FEATURES | VIRTIO_F_RING_INDIRECT_DESC);
    const table = ring.data;
    build(ring, table);
    const before = sim.bytes.slice(ring.data, ring.data + 0x8000);
    ring.offer(0);
    ring.notify();
    assertNeedsReset(sim, drv, RNG, `for an indirect ${what}`);
    assert.is(sim.stats().devices[RNG]!.counters[`violation.${code}`], 1, `${what}: expected violation ${code}, got ${JSON.stringify(sim.stats().devices[RNG]!.counters)}`);
    assert.ok(Buffer.compare(sim.bytes.slice(ring.data, ring.data + 0x8000), before) === 0, `${what}: bytes written through a refused chain`);
    assert.is(ring.usedIdx(), 0, `${what}: a refused chain was completed`);
    assertBusAnswers(drv, [RNG, CONSOLE], `after an indirect ${what}`);
    sim.dispose();
  }
});

test.run();
