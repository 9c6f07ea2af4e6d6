import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as P from '../../firmware/transport/protocol';
import { ACKNOWLEDGE, DRIVER, FEATURES_OK } from '../../firmware/virtio';
import { BASE_FEATURES, STATUS_LIVE } from '../../frontend/fuzz/raw';
import { le32 } from '../../frontend/fuzz/ring';
import { assertHealthy, assertRngServes, hostile, liveRng, RNG } from './harness';

test('ten thousand full initialise/reset cycles do not grow the backend\'s memory', async () => {
  const { sim, drv, area } = await hostile();
  const at = area(0);
  const cycle = () => {
    // One doorbell per cycle: the whole §3.1.1 sequence plus a reset, with answers drained.
    for (const s of [0, ACKNOWLEDGE, ACKNOWLEDGE | DRIVER]) drv.postRequest(RNG, P.VIRTIO_MSG_SET_DEVICE_STATUS, le32(s));
    drv.postRequest(RNG, P.VIRTIO_MSG_SET_DRIVER_FEATURES, le32(0, 2, Number(BASE_FEATURES & 0xffffffffn), Number(BASE_FEATURES >> 32n)));
    drv.postRequest(RNG, P.VIRTIO_MSG_SET_DEVICE_STATUS, le32(ACKNOWLEDGE | DRIVER | FEATURES_OK));
    drv.postRequest(RNG, P.VIRTIO_MSG_SET_VQUEUE, le32(0, 0, 8, 0, at, 0, at + 128, 0, at + 4096, 0));
    drv.postRequest(RNG, P.VIRTIO_MSG_SET_DEVICE_STATUS, le32(STATUS_LIVE));
    sim.kick();
    sim.receive();
  };
  for (let i = 0; i < 200; i++) cycle(); // warm-up: counters and shapes exist
  const before = sim.runtime.memoryUsed();
  for (let i = 0; i < 10_000; i++) cycle();
  const after = sim.runtime.memoryUsed();
  assert.is(sim.stats().devices[RNG]!.counters['resets'], 10_200, 'not every cycle reset the device');
  assert.ok(after - before < 64 * 1024, `memory grew by ${after - before} bytes over 10000 reset cycles (${before} → ${after})`);
  assertHealthy(sim, RNG, 'after 10000 cycles');
  assertRngServes(drv, liveRng(drv, area(1)), 'after 10000 reset cycles');
  sim.dispose();
});

test.run();
