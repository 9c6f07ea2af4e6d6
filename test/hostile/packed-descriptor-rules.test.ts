import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../../firmware/virtio';
import type { PackedRawRing } from '../../frontend/fuzz/raw';
import { PackedRing } from '../../frontend/fuzz/ring';
import { assertBusAnswers, assertNeedsReset, CONSOLE, hostile, livePackedRng, RNG } from './harness';

const W = VIRTQ_DESC_F_WRITE;
const N = VIRTQ_DESC_F_NEXT;
const avail = (f: number) => PackedRing.availFlags(1, f);

/**
 * The chain rules both ring formats share, on packed descriptors: every buffer inside the pool (DESIGN §2),
 * readable before writable (virtio §2.8.17); the 2^32-byte total is packed-chain-total-over-4g. Each writes a list from descriptor 0 (head last) and names the violation it must raise.
 */
const attacks: [string, string, (r: PackedRawRing) => void][] = [
  ['a buffer in the window header', 'ADDR_OUTSIDE_WINDOW', (r) => r.setDesc(0, 0x10, 16, 0, avail(W))],
  ['a buffer past the window', 'ADDR_OUTSIDE_WINDOW', (r) => r.setDesc(0, r.bytes.length - 8, 16, 0, avail(W))],
  ['a 64-bit address', 'ADDR_OUTSIDE_WINDOW', (r) => r.setDesc(0, r.data, 16, 0, avail(W), r.desc, 1)],
  ['addr + len wrapping past 2^32', 'ADDR_OUTSIDE_WINDOW', (r) => r.setDesc(0, 0xfffff000, 0x2000, 0, avail(W))],
  ['a readable descriptor after a writable one', 'READABLE_AFTER_WRITABLE', (r) => { r.setDesc(1, r.data + 16, 16, 0, avail(0)); r.setDesc(0, r.data, 16, 0, avail(W | N)); }],
];

test('packed descriptors obey the chain rules: refused with NEEDS_RESET before anything is written', async () => {
  for (const [what, code, build] of attacks) {
    const { sim, drv, area } = await hostile();
    const ring = livePackedRng(drv, area(0), 8);
    build(ring);
    const written = sim.bytes.slice(ring.data, ring.data + 0x8000);
    ring.notify();
    assertNeedsReset(sim, drv, RNG, `for ${what}`);
    assert.is(sim.stats().devices[RNG]!.counters[`violation.${code}`], 1, `${what}: expected violation ${code}, got ${JSON.stringify(sim.stats().devices[RNG]!.counters)}`);
    assert.ok(Buffer.compare(sim.bytes.slice(ring.data, ring.data + 0x8000), written) === 0, `${what}: bytes written through a refused buffer`);
    assertBusAnswers(drv, [RNG, CONSOLE], `after ${what}`);
    sim.dispose();
  }
});

test.run();
