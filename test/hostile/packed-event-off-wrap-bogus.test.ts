import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RING_EVENT_FLAGS_DESC, VIRTIO_F_RING_EVENT_IDX } from '../../firmware/virtio';
import * as P from '../../firmware/transport/protocol';
import { BASE_FEATURES } from '../../frontend/fuzz/raw';
import { assertBusAnswers, assertNeedsReset, CONSOLE, hostile, livePackedRng, RNG } from './harness';

/** Driver event suppression values no driver may write (virtio §2.8.10, §2.8.14), each with its violation. */
const bogus: [string, [number, number, number], bigint, string][] = [
  ['flags 3 (reserved)', [3, 0, 0], BASE_FEATURES | VIRTIO_F_RING_EVENT_IDX, 'EVENT_FLAGS_RESERVED'],
  ['RING_EVENT_FLAGS_DESC without EVENT_IDX', [RING_EVENT_FLAGS_DESC, 0, 1], BASE_FEATURES, 'EVENT_FLAGS_DESC'],
  ['an event offset = the queue size', [RING_EVENT_FLAGS_DESC, 8, 1], BASE_FEATURES | VIRTIO_F_RING_EVENT_IDX, 'EVENT_OFF_OUT_OF_RANGE'],
  ['an event offset of 0x7fff', [RING_EVENT_FLAGS_DESC, 0x7fff, 0], BASE_FEATURES | VIRTIO_F_RING_EVENT_IDX, 'EVENT_OFF_OUT_OF_RANGE'],
];

test('bogus driver event suppression values are refused when the device reads them: NEEDS_RESET, no EVENT_USED', async () => {
  for (const [what, ev, features, code] of bogus) {
    const { sim, drv, area } = await hostile();
    const ring = livePackedRng(drv, area(0), 8, features);
    ring.setDriverEvent(...ev);
    ring.offer([{ off: ring.data, len: 16, write: true }], 0);
    drv.events.length = 0;
    ring.notify();
    assertNeedsReset(sim, drv, RNG, `after ${what}`);
    assert.is(sim.stats().devices[RNG]!.counters[`violation.${code}`], 1, `${what}: expected ${code}, got ${JSON.stringify(sim.stats().devices[RNG]!.counters)}`);
    assert.not.ok(drv.events.some((e) => e.msgId === P.VIRTIO_MSG_EVENT_USED), `${what}: EVENT_USED sent on a bogus value`);
    assertBusAnswers(drv, [RNG, CONSOLE], `after ${what}`);
    sim.dispose();
  }
});

test('a valid RING_EVENT_FLAGS_DESC offset with its wrap counter is honoured (notified exactly at that descriptor)', async () => {
  const { sim, drv, area } = await hostile();
  const ring = livePackedRng(drv, area(0), 4, BASE_FEATURES | VIRTIO_F_RING_EVENT_IDX);
  ring.setDriverEvent(RING_EVENT_FLAGS_DESC, 2, 1);
  const notified: boolean[] = [];
  for (let i = 0; i < 4; i++) {
    drv.pump();
    drv.events.length = 0;
    ring.offer([{ off: ring.data, len: 4, write: true }], 0);
    ring.notify();
    drv.pump();
    notified.push(drv.events.some((e) => e.msgId === P.VIRTIO_MSG_EVENT_USED));
    ring.reap();
  }
  assert.equal(notified, [false, false, true, false], 'EVENT_USED only when descriptor 2 of wrap 1 was used');
  assert.not.ok(sim.needsReset(RNG));
  sim.dispose();
});

test.run();
