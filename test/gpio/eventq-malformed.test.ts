// An eventq pair without its 2-byte struct virtio_gpio_irq_request or without the status byte cannot be
// used (§5.18.7): DEVICE_NEEDS_RESET of the gpio device only.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { submitChain } from '../helpers';
import { GPIO_DEV, gpioSim, liveGpio } from './_gpio';

for (const [what, segs, code] of [
  ['a 1-byte irq request', [{ bytes: Uint8Array.of(1) }, { len: 1 }], 'GPIO_NO_IRQ_REQUEST'],
  ['no status byte', [{ bytes: Uint8Array.of(1, 0) }], 'GPIO_NO_IRQ_RESPONSE'],
] as const) {
  test(`an eventq buffer with ${what} marks the device NEEDS_RESET`, async () => {
    const t = await gpioSim();
    const { eq } = liveGpio(t.s);
    const r = submitChain(eq!, GPIO_DEV, 1, [...segs]);
    assert.is(r.used, null);
    assert.ok(t.s.needsReset(GPIO_DEV));
    assert.is(t.s.stats().devices[GPIO_DEV]!.counters[`violation.${code}`], 1);
    assert.not.ok(t.s.needsReset(0), 'rng is not affected');
    t.done();
  });
}

test.run();
