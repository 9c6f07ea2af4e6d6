/**
 * Hostile cases of transport `regblock` (firmware/transport/regblock.ts), one behaviour per entry:
 * test/hostile/regblock-<name>.test.ts runs each on the simulator, test/native/shared-transport-hostile.test.ts
 * all of them on the native runtime. The frontend owns every byte of a register block: a transaction
 * naming no writable register, of the wrong width or with reserved bits is dropped and counted and
 * cleared like any other; a value is fetched once, when its transaction is processed; nothing the
 * driver scribbles outside a transaction becomes device state; one device's faults touch no other.
 */
import * as assert from 'uvu/assert';
import { RB } from '../../firmware/transport/regblock-layout';
import { ACKNOWLEDGE, DEVICE_NEEDS_RESET, DRIVER, TRANSPORT_FEATURES, VIRTQ_DESC_F_WRITE } from '../../firmware/virtio';
import { Frontend } from '../../frontend/device';
import { ConsoleDriver } from '../../frontend/drivers/console';
import type { RegBlockBus } from '../../frontend/regblock';
import type { Backend } from './backends';
import type { BusPeer } from './raw-peer';
import { liveRing } from './raw-peer';
import { behaviour } from './suite';

const RNG = 0;
const CONSOLE = 1;
const ONLY = { transports: ['regblock'] as const };

function regblock(b: Backend): { peer: BusPeer; bus: RegBlockBus } {
  const peer = b.peer() as BusPeer;
  return { peer, bus: peer.bus as RegBlockBus };
}

const word = (b: Backend, at: number) => new DataView(b.bytes.buffer, b.bytes.byteOffset).getUint32(at, true);

export const behaviours = {
  bogusOffset: behaviour('regblock-bogus-offset', (test) => {
    test('a transaction naming no register (a hole, a misaligned offset, past the block) is dropped, counted and cleared', async (b) => {
      const { peer, bus } = regblock(b);
      for (const off of [0x02, 0x3c, 0x42, 0x2a]) await bus.transact(RNG, off);
      assert.is(word(b, bus.blockOffset(RNG) + RB.writeTransaction), 0, 'write_transaction cleared: the driver is not left waiting');
      const st = await b.stats();
      assert.is(st.devices[RNG]!.counters['dropped.BAD_OFFSET'], 4, 'each counted on the device');
      assert.is(st.bus['dropped.BAD_OFFSET'], 4, 'and on the bus');
      assert.is(st.devices[RNG]!.status, 0, 'no state changed');
      assert.not.ok(st.devices[RNG]!.needsReset, 'a dropped write is not a device fault');
      assert.is(await peer.setStatus(RNG, ACKNOWLEDGE), ACKNOWLEDGE, 'the device still takes a real write');
    });
  }, ONLY),

  readOnlyRegister: behaviour('regblock-read-only-register', (test) => {
    test('a transaction on a register the device writes (size, device_features, config_generation, write_transaction) is dropped', async (b) => {
      const { bus } = regblock(b);
      const blk = bus.blockOffset(RNG);
      const rev = word(b, blk + RB.revision);
      const gen = word(b, blk + RB.configGeneration);
      await bus.transact(RNG, RB.size, RB.size, 4, 0x77);
      await bus.transact(RNG, RB.deviceFeatures, RB.deviceFeatures, 4, 0xffffffff);
      await bus.transact(RNG, RB.configGeneration, RB.configGeneration, 4, 0x1234);
      await bus.transact(RNG, RB.writeTransaction);
      const st = await b.stats();
      assert.is(st.devices[RNG]!.counters['dropped.NOT_WRITABLE'], 4);
      assert.is(await bus.deviceFeatureWord(RNG, 1), Number((TRANSPORT_FEATURES >> 32n) & 0xffffffffn), 'the offered features are the device\'s, not the scribble');
      assert.ok(rev === 1 && gen % 2 === 0, 'revision 1, an even generation before');
    });
  }, ONLY),

  wrongWidth: behaviour('regblock-wrong-width', (test) => {
    test('a transaction whose width field contradicts the register, or a config write of width 0 or 3, is dropped', async (b) => {
      const { bus } = regblock(b);
      await bus.transact(RNG, RB.deviceStatus | (2 << 16), RB.deviceStatus, 4, ACKNOWLEDGE); // device_status is 4 bytes
      await bus.transact(CONSOLE, RB.config, RB.config, 1, 9); // config write without a width
      await bus.transact(CONSOLE, RB.config | (3 << 16), RB.config, 4, 9);
      const st = await b.stats();
      assert.is(st.devices[RNG]!.counters['dropped.BAD_WIDTH'], 1);
      assert.is(st.devices[CONSOLE]!.counters['dropped.BAD_WIDTH'], 2);
      assert.is(st.devices[RNG]!.status, 0, 'the status write was not applied');
      const cols = new DataView(b.bytes.buffer, b.bytes.byteOffset).getUint16(bus.blockOffset(CONSOLE) + RB.config, true);
      assert.is(cols, 80, 'the config space shows the device\'s value again');
    });
  }, ONLY),

  transactionLies: behaviour('regblock-transaction-lies', (test) => {
    test('a transaction word with reserved bits set is dropped; a value changed after its transaction is not seen', async (b) => {
      const { peer, bus } = regblock(b);
      await bus.transact(RNG, (RB.deviceStatus | (1 << 24)) >>> 0, RB.deviceStatus, 4, ACKNOWLEDGE);
      assert.is((await b.stats()).devices[RNG]!.counters['dropped.BAD_TRANSACTION'], 1, 'reserved bits 24-31');
      assert.is((await b.stats()).devices[RNG]!.status, 0);
      await bus.transact(RNG, RB.deviceStatus, RB.deviceStatus, 4, ACKNOWLEDGE);
      const at = bus.blockOffset(RNG) + RB.deviceStatus;
      new DataView(b.bytes.buffer, b.bytes.byteOffset).setUint32(at, 0xff, true); // scribbled after, no transaction
      await peer.barrier();
      assert.is((await b.stats()).devices[RNG]!.status, ACKNOWLEDGE, 'the device holds what its transaction carried');
      assert.is(await peer.setStatus(RNG, ACKNOWLEDGE | DRIVER), ACKNOWLEDGE | DRIVER, 'and goes on from there');
    });

    test('a transaction word kept set through a doorbell storm costs one transaction per device per pass, never a loop', async (b) => {
      const { peer, bus } = regblock(b);
      const at = bus.blockOffset(RNG) + RB.writeTransaction;
      const v = new DataView(b.bytes.buffer, b.bytes.byteOffset);
      const passes0 = b.sim?.passes ?? 0;
      const t0 = (await b.stats()).bus['transactions'] ?? 0;
      for (let k = 0; k < 50; k++) {
        v.setUint32(at, RB.queueDriverVector, true);
        bus.kick();
      }
      await peer.barrier();
      const st = await b.stats();
      const n = (st.bus['transactions'] ?? 0) - t0;
      assert.ok(n <= 50 + 3, `at most one per doorbell, and the barrier's three (${n})`);
      if (b.sim) assert.ok(b.sim.passes - passes0 <= 2 * (50 + 3), `bounded passes (${b.sim.passes - passes0}; sim-only)`);
      assert.is(word(b, at), 0, 'cleared');
    });
  }, ONLY),

  queueConfigWhileEnabled: behaviour('regblock-queue-config-while-enabled', (test) => {
    test('queue_size and the ring addresses of an enabled queue are fixed; queue_enable other than 0 or 1 is refused', async (b) => {
      const { peer, bus } = regblock(b);
      const ring = await liveRing(peer, RNG);
      await bus.transact(RNG, RB.queueSel, RB.queueSel, 4, 0);
      await bus.transact(RNG, RB.queueDesc, RB.queueDesc, 8, BigInt(b.layout.windowSize - 64));
      await bus.transact(RNG, RB.queueEnable, RB.queueEnable, 2, 7);
      const dev = (await b.stats()).devices[RNG]!;
      assert.is(dev.counters['refused.SET_VQUEUE'], 2, 'both refused');
      assert.ok(dev.queues[0]!.live, 'the queue still runs');
      ring.setDesc(0, ring.data, 16, VIRTQ_DESC_F_WRITE);
      ring.offer(0);
      await ring.notify(RNG, 0);
      assert.equal(ring.usedElem(0), { id: 0, len: 16 }, 'on its old rings');
    });

    test('queue_enable = 1 with rings outside the window is refused and reads back 0', async (b) => {
      const { peer, bus } = regblock(b);
      await peer.negotiate(RNG);
      await bus.transact(RNG, RB.queueSel, RB.queueSel, 4, 0);
      await bus.transact(RNG, RB.queueSize, RB.queueSize, 2, 8);
      await bus.transact(RNG, RB.queueDesc, RB.queueDesc, 8, 0x10n); // the header page
      await bus.transact(RNG, RB.queueEnable, RB.queueEnable, 2, 1);
      assert.is(new DataView(b.bytes.buffer, b.bytes.byteOffset).getUint16(bus.blockOffset(RNG) + RB.queueEnable, true), 0, 'queue_enable reads 0');
      const dev = (await b.stats()).devices[RNG]!;
      assert.is(dev.counters['violation.ADDR_OUTSIDE_WINDOW'], 1);
      assert.not.ok(dev.needsReset, 'a refused setup is not a device fault');
    });
  }, ONLY),

  scribbledBlock: behaviour('regblock-scribbled-block', (test) => {
    test("a frontend that scribbles over the directory and a device's block outside any transaction changes no device state", async (b) => {
      const { peer, bus } = regblock(b);
      const v = new DataView(b.bytes.buffer, b.bytes.byteOffset);
      for (let k = 0; k < 64; k += 4) v.setUint32(b.layout.areaOffset + k, 0xdeadbeef, true);
      const con = bus.blockOffset(CONSOLE);
      v.setUint16(con + RB.queueSize, 0xffff, true);
      v.setUint16(con + RB.queueEnable, 1, true);
      v.setUint32(con + RB.deviceStatus, 0xff, true);
      v.setUint8(con + RB.config, 0xee);
      await peer.barrier();
      const st = await b.stats();
      assert.is(st.devices[CONSOLE]!.status, 0, "the console's status is the backend's");
      assert.not.ok(st.devices[CONSOLE]!.queues[0]!.enabled, 'no queue was enabled by the scribble');
      assert.is(await peer.setStatus(CONSOLE, ACKNOWLEDGE), ACKNOWLEDGE, 'a real transaction works and writes the status back');
      assert.is(v.getUint8(con + RB.config), 80, 'the config space is the device\'s again after a transaction');
    });

    test('a fault on the rng (NEEDS_RESET) leaves the console serving', async (b) => {
      const { peer } = regblock(b);
      const ring = await liveRing(peer, RNG);
      ring.offer(8); // head out of range
      await ring.notify(RNG, 0);
      assert.ok((peer.configNotified(RNG) ?? 0) & DEVICE_NEEDS_RESET, 'config_event with NEEDS_RESET');
      const con = await ConsoleDriver.open((await Frontend.attach(b.port)).devices[CONSOLE]!);
      await con.write('console still here');
      assert.is(await b.console().output('console still here'), 'console still here');
    });
  }, ONLY),
};
