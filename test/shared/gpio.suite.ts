/**
 * virtio-gpio through the frontend driver model and the host side of the lines, on any backend
 * (test/integration/gpio.test.ts: the simulator and its API; test/native/shared-gpio.test.ts: the
 * native runtime and its control socket): names, directions and values both ways, and interrupts as
 * §5.18.7 describes them — edges latched while masked, levels re-reported at each unmask.
 */
import * as assert from 'uvu/assert';
import { GpioDriver } from '../../frontend/drivers/gpio';
import {
  VIRTIO_GPIO_DIRECTION_IN,
  VIRTIO_GPIO_DIRECTION_NONE,
  VIRTIO_GPIO_IRQ_STATUS_INVALID,
  VIRTIO_GPIO_IRQ_STATUS_VALID,
  VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH,
  VIRTIO_GPIO_IRQ_TYPE_EDGE_FALLING,
  VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING,
  VIRTIO_GPIO_IRQ_TYPE_LEVEL_HIGH,
  VIRTIO_GPIO_IRQ_TYPE_LEVEL_LOW,
  VIRTIO_GPIO_IRQ_TYPE_NONE,
} from '../../firmware/virtio';
import type { Backend } from './backends';
import { NATIVE_TIMEOUT_MS } from './backends';
import { BUTTON0, GPIO_DEV, LED0, LINES, lowSpeed, RESET_N } from './lowspeed';
import type { TestFn } from './suite';
import { behaviour } from './suite';

async function open(b: Backend, irq = true): Promise<GpioDriver> {
  const fe = await b.frontend();
  assert.is(fe.devices[GPIO_DEV]!.info.deviceId, 41, 'device 2 is virtio-gpio (ID 41)');
  return GpioDriver.open(fe.devices[GPIO_DEV]!, { irq });
}

/**
 * The eventq buffers back so far. On the simulator everything already happened; natively the host's
 * set travels through the control socket and the firmware's loop, so wait (bounded) for `want` events.
 */
async function events(b: Backend, g: GpioDriver, want: number) {
  const out = g.events();
  const end = Date.now() + (b.sim ? 0 : NATIVE_TIMEOUT_MS);
  while (out.length < want && Date.now() < end) {
    await b.port.wait(Math.min(50, end - Date.now()));
    out.push(...g.events());
  }
  return out;
}

/** Lets a native backend settle (a round trip through its queues) so "nothing happened" means nothing. */
async function settle(g: GpioDriver): Promise<void> {
  await g.getDirection(0);
}

function lowSpeedTest(test: TestFn, title: string, body: (b: Backend) => Promise<void>) {
  const ls = lowSpeed();
  test(
    title,
    async (b) => {
      try {
        await body(b);
      } finally {
        ls.done();
      }
    },
    ls.opts,
  );
}

export const register = behaviour('gpio', (test) => {
  lowSpeedTest(test, 'the config and GET_LINE_NAMES give the board’s lines, an unnamed one as empty', async (b) => {
    const g = await open(b);
    assert.is(g.ngpio, LINES.length);
    assert.equal(await g.names(), LINES);
    assert.equal((await b.gpio().list()).map((l) => l.name), LINES, 'the host sees the same names');
  });

  lowSpeedTest(test, 'lines start as inputs; an output value the guest sets is seen by the host', async (b) => {
    const g = await open(b);
    assert.is(await g.getDirection(LED0), VIRTIO_GPIO_DIRECTION_IN);
    await g.output(LED0, 1);
    const s = await b.gpio().get('LED0');
    assert.equal([s.direction, s.value, s.output], ['out', 1, 1]);
    await g.set(LED0, 0);
    assert.is((await b.gpio().get(LED0)).value, 0, 'and its change');
    await g.setDirection(LED0, VIRTIO_GPIO_DIRECTION_NONE);
    assert.is((await b.gpio().get('LED0')).direction, 'none', 'a released line (what Linux does on gpiod_put)');
  });

  lowSpeedTest(test, 'a value the host drives is what the guest reads on an input', async (b) => {
    const g = await open(b);
    await g.setDirection(BUTTON0, VIRTIO_GPIO_DIRECTION_IN);
    assert.is(await g.get(BUTTON0), 0);
    await b.gpio().set('BUTTON0', 1);
    assert.is(await g.get(BUTTON0), 1);
    await b.gpio().set(BUTTON0, 0);
    assert.is(await g.get(BUTTON0), 0);
  });

  lowSpeedTest(test, 'a rising-edge interrupt fires on the host’s rising edge only, and masks the line until re-armed', async (b) => {
    const g = await open(b);
    await g.setIrqType(BUTTON0, VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING);
    await g.arm(BUTTON0);
    await b.gpio().set('BUTTON0', 1);
    assert.equal((await events(b, g, 1)).map((e) => [e.line, e.status, e.usedLen]), [[BUTTON0, VIRTIO_GPIO_IRQ_STATUS_VALID, 1]]);
    await b.gpio().set('BUTTON0', 0);
    await settle(g);
    assert.equal(g.events(), [], 'masked (the buffer is with the driver): nothing more, and a falling edge does not count');
    await g.arm(BUTTON0);
    await settle(g);
    assert.equal(g.events(), [], 'no rising edge was latched meanwhile');
  });

  lowSpeedTest(test, 'edges while the line is masked are latched into one interrupt, delivered at re-arm', async (b) => {
    const g = await open(b);
    await g.setIrqType(BUTTON0, VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH);
    for (let i = 0; i < 10; i++) await b.gpio().set('BUTTON0', i % 2 === 0 ? 1 : 0);
    await settle(g);
    assert.equal(g.events(), [], 'enabled but masked: nothing delivered');
    await g.arm(BUTTON0);
    assert.equal((await events(b, g, 1)).map((e) => e.status), [VIRTIO_GPIO_IRQ_STATUS_VALID], 'one interrupt for ten edges');
    await g.arm(BUTTON0);
    await settle(g);
    assert.equal(g.events(), [], 'the latch was consumed');
  });

  lowSpeedTest(test, 'a falling-edge interrupt ignores rising edges', async (b) => {
    const g = await open(b);
    await g.setIrqType(RESET_N, VIRTIO_GPIO_IRQ_TYPE_EDGE_FALLING);
    await g.arm(RESET_N);
    await b.gpio().set(RESET_N, 1);
    await settle(g);
    assert.equal(g.events(), []);
    await b.gpio().set(RESET_N, 0);
    assert.equal((await events(b, g, 1)).map((e) => [e.line, e.status]), [[RESET_N, VIRTIO_GPIO_IRQ_STATUS_VALID]]);
  });

  lowSpeedTest(test, 'a level-high interrupt fires while the line is high, again at each re-arm, and not for a pulse while masked', async (b) => {
    const g = await open(b);
    await g.setIrqType(BUTTON0, VIRTIO_GPIO_IRQ_TYPE_LEVEL_HIGH);
    await b.gpio().set('BUTTON0', 1);
    await b.gpio().set('BUTTON0', 0); // a pulse while masked: levels are not latched
    await g.arm(BUTTON0);
    await settle(g);
    assert.equal(g.events(), [], 'low now: no interrupt');
    await b.gpio().set('BUTTON0', 1);
    assert.equal((await events(b, g, 1)).map((e) => e.status), [VIRTIO_GPIO_IRQ_STATUS_VALID]);
    await g.arm(BUTTON0);
    assert.equal((await events(b, g, 1)).map((e) => e.status), [VIRTIO_GPIO_IRQ_STATUS_VALID], 'still high at re-arm: again');
  });

  lowSpeedTest(test, 'a level-low interrupt is active at once on a low line', async (b) => {
    const g = await open(b);
    await g.setIrqType(BUTTON0, VIRTIO_GPIO_IRQ_TYPE_LEVEL_LOW);
    await g.arm(BUTTON0);
    assert.equal((await events(b, g, 1)).map((e) => [e.line, e.status]), [[BUTTON0, VIRTIO_GPIO_IRQ_STATUS_VALID]]);
  });

  lowSpeedTest(test, 'disabling an interrupt returns its buffer INVALID and discards what was latched', async (b) => {
    const g = await open(b);
    await g.setIrqType(BUTTON0, VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING);
    await g.arm(BUTTON0);
    await g.setIrqType(BUTTON0, VIRTIO_GPIO_IRQ_TYPE_NONE);
    assert.equal((await events(b, g, 1)).map((e) => [e.line, e.status]), [[BUTTON0, VIRTIO_GPIO_IRQ_STATUS_INVALID]]);
    await g.setIrqType(BUTTON0, VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING);
    await b.gpio().set('BUTTON0', 1);
    await g.setIrqType(BUTTON0, VIRTIO_GPIO_IRQ_TYPE_NONE); // latched, then disabled
    await g.setIrqType(BUTTON0, VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING);
    await g.arm(BUTTON0);
    await settle(g);
    assert.equal(g.events(), [], 'the edge latched before the disable is gone');
  });
});
