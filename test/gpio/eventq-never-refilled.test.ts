// A guest that never re-queues its eventq buffer costs the device one latch bit per line, whatever the
// host does (§5.18.6.2: edges latch while masked): 10 000 host edges queue nothing, and the next
// unmask delivers exactly one interrupt.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_GPIO_IRQ_STATUS_VALID, VIRTIO_GPIO_MSG_SET_IRQ_TYPE } from '../../firmware/virtio';
import { arm, BUTTON0, GPIO_DEV, gpioSim, liveGpio, request, usedFrom } from './_gpio';

test('10 000 edges with the line masked: one interrupt, bounded memory, at the next unmask', async () => {
  const t = await gpioSim();
  const { rq, eq } = liveGpio(t.s);
  request(rq, VIRTIO_GPIO_MSG_SET_IRQ_TYPE, BUTTON0, 3);
  const first = arm(eq!, BUTTON0, 0);
  t.s.gpio().set(BUTTON0, 1);
  assert.is(first.status(), VIRTIO_GPIO_IRQ_STATUS_VALID, 'the first edge fired and masked the line');
  const used = eq!.usedIdx();
  const mem0 = t.s.runtime.memoryUsed();
  for (let i = 0; i < 10_000; i++) t.s.gpio().set(BUTTON0, i % 2);
  const grew = t.s.runtime.memoryUsed() - mem0;
  assert.ok(grew < 64 * 1024, `firmware memory grew by ${grew} bytes for 10 000 edges`);
  assert.equal(usedFrom(eq!, used), [], 'nothing delivered while masked');
  const again = arm(eq!, BUTTON0, 1);
  assert.is(again.status(), VIRTIO_GPIO_IRQ_STATUS_VALID);
  assert.is(usedFrom(eq!, used).length, 1, 'exactly one interrupt for all of them');
  assert.is(t.s.stats().devices[GPIO_DEV]!.counters['interrupts'], 2);
  t.done();
});

test.run();
