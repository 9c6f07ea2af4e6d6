import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTQ_DESC_F_WRITE } from '../../firmware/virtio';
import { assertBusAnswers, assertNeedsReset, CONSOLE, hostile, liveRng, RNG } from './harness';

test('a buffer overlapping the window header or the FIFOs, or leaving the window, is refused and nothing there changes', async () => {
  const { sim: probe } = await hostile();
  const l = probe.layout;
  probe.dispose();
  const cases: [string, number, number, number][] = [
    ['window header', 0, 64, 0],
    ['driver→device FIFO', l.fifoD2V.offset, 4096, 0],
    ['device→driver FIFO', l.fifoV2D.offset + 128, 264, 0],
    ['last pool byte and beyond', l.windowSize - 1, 2, 0],
    ['high address half', l.poolOffset, 16, 1],
    ['straddling the pool start', l.poolOffset - 8, 16, 0],
  ];
  for (const [what, addr, len, hi] of cases) {
    const { sim, drv, area } = await hostile();
    const ring = liveRng(drv, area(0), 8);
    ring.setDesc(0, addr, len, VIRTQ_DESC_F_WRITE, 0, ring.desc, hi);
    const below = sim.bytes.slice(0, sim.layout.poolOffset);
    ring.offer(0);
    ring.notify();
    assertNeedsReset(sim, drv, RNG, `for a buffer in the ${what}`);
    assert.is(sim.stats().devices[RNG]!.counters['violation.ADDR_OUTSIDE_WINDOW'], 1, `${what}: not counted as ADDR_OUTSIDE_WINDOW`);
    const after = sim.bytes.slice(0, sim.layout.poolOffset);
    // The FIFOs move (EVENT_CONFIG, answers): compare only the header and the slots the test aimed at.
    assert.equal(after.subarray(0, 0x44), below.subarray(0, 0x44), `${what}: header changed`);
    assertBusAnswers(drv, [RNG, CONSOLE], `after a buffer in the ${what}`);
    sim.dispose();
  }
});

test.run();
