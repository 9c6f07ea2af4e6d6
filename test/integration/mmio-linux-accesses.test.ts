// The mmio frontend model (frontend/mmio.ts) issues the register accesses of Linux's virtio_mmio driver
// (drivers/virtio/virtio_mmio.c, 6.1 era), in its order: probe, the status steps of the virtio core
// (virtio_add_status: read Status, write it with the bit added), vm_get_features, vm_finalize_features,
// vm_setup_vq, vm_notify, vm_interrupt. The model's own extra reads (marked model-only in mmio.ts) are
// named here as such. Values that depend on the pool (ring addresses) are not compared.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Frontend } from '../../frontend/device';
import { RngDriver } from '../../frontend/drivers/rng';
import { MmioBus } from '../../frontend/mmio';
import { createSim } from '../../frontend/sim';

test('the accesses of probe, negotiation, queue setup, a notify and an interrupt are those of virtio_mmio', async () => {
  const sim = await createSim({ board: 'host-sim-mmio' });
  try {
    const bus = new MmioBus(sim.port);
    bus.trace = [];
    await bus.discover();
    const probe = ['readl 0x000', 'readl 0x004', 'readl 0x008', 'readl 0x00c']; // virtio_mmio_probe: magic, version, device id, vendor id
    assert.equal(bus.trace, [...probe, ...probe], 'probe of both device pages');
    const fe = await Frontend.attach(sim.port);
    const fbus = fe.bus as MmioBus;
    fbus.trace = [];
    const rng = await RngDriver.open(fe.find(4)!, 64);
    const setup = [...fbus.trace];
    const status = (v: number) => ['readl 0x070', `writel 0x070 0x${v.toString(16)}`]; // virtio_add_status
    const expected = [
      'writel 0x070 0x0', // vm_reset (register_virtio_device)
      ...status(0x1), // ACKNOWLEDGE
      ...status(0x3), // DRIVER
      'writel 0x014 0x1', 'readl 0x010', 'writel 0x014 0x0', 'readl 0x010', // vm_get_features
      'writel 0x024 0x1', 'writel 0x020', 'writel 0x024 0x0', 'writel 0x020', // vm_finalize_features (values: the features)
      ...status(0xb), 'readl 0x070', // FEATURES_OK, then virtio_features_ok reads it back
      'writel 0x030 0x0', 'readl 0x044', 'readl 0x034', 'writel 0x038 0x40', // vm_setup_vq: select, not in use, max, size
      'writel 0x080', 'writel 0x084 0x0', 'writel 0x090', 'writel 0x094 0x0', 'writel 0x0a0', 'writel 0x0a4 0x0', 'writel 0x044 0x1',
      'readl 0x044', // model-only: QueueReady read back
      ...status(0xf), // DRIVER_OK (virtio_device_ready)
    ];
    assert.equal(setup.map((l) => (/^writel 0x0(20|80|90|a0) /.test(l) ? l.slice(0, 12) : l)), expected);
    fbus.trace = [];
    assert.is((await rng.read(16)).length, 16);
    assert.equal(fbus.trace.slice(0, 3), ['writel 0x050 0x0', 'readl 0x060', 'writel 0x064 0x1'], 'vm_notify, then vm_interrupt: InterruptStatus read and acknowledged (used buffer)');
  } finally {
    sim.dispose();
  }
});

test.run();
