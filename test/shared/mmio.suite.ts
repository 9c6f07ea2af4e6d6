/**
 * Hostile cases of transport `mmio` (firmware/transport/mmio.ts), one behaviour per entry:
 * test/hostile/mmio-<name>.test.ts runs each on the simulator, test/native/shared-transport-hostile.test.ts
 * all of them on the native runtime. A malformed access is ignored as virtio-mmio devices ignore it (a
 * read answers 0), completed with REC_IGNORED so the hypervisor resumes the vCPU, and counted; a ring
 * head that runs ahead is a bus violation whose records are never read; nothing touches another device.
 */
import * as assert from 'uvu/assert';
import { MMIO, REC_DONE, REC_IGNORED, REC_READ, REC_WRITE, RING_HEAD, RING_TAIL, VIRTIO_MMIO_MAGIC } from '../../firmware/transport/mmio-layout';
import { RECORD_SIZE, RECORD_SLOTS_OFFSET } from '../../firmware/window/layout';
import { ACKNOWLEDGE, DRIVER, VIRTQ_DESC_F_WRITE } from '../../firmware/virtio';
import type { MmioBus } from '../../frontend/mmio';
import type { Backend } from './backends';
import type { BusPeer } from './raw-peer';
import { liveRing } from './raw-peer';
import { behaviour } from './suite';

const RNG = 0;
const CONSOLE = 1;
const ONLY = { transports: ['mmio'] as const };

function mmio(b: Backend): { peer: BusPeer; bus: MmioBus } {
  const peer = b.peer() as BusPeer;
  return { peer, bus: peer.bus as MmioBus };
}

export const behaviours = {
  bogusOffset: behaviour('mmio-bogus-offset', (test) => {
    test('an access to an offset with no register (a hole, the legacy v1 registers, past the config space) is ignored and counted', async (b) => {
      const { bus } = mmio(b);
      for (const off of [0x018, 0x028, 0x03c, 0x040, 0x0f0]) {
        const r = await bus.access(RNG, off, 4, REC_READ);
        assert.equal(r, { value: 0, result: REC_IGNORED }, `read of 0x${off.toString(16)} answers 0, ignored`);
      }
      assert.is((await bus.access(CONSOLE, MMIO.config + 12, 1, REC_READ)).result, REC_IGNORED, 'past the 12-byte console config');
      await bus.access(RNG, 0x0f0, 4, REC_WRITE, 0xffffffff);
      const st = await b.stats();
      assert.is(st.devices[RNG]!.counters['dropped.BAD_OFFSET'], 6);
      assert.is(st.devices[CONSOLE]!.counters['dropped.BAD_OFFSET'], 1);
      assert.is(st.bus['dropped.BAD_OFFSET'], 7);
      assert.not.ok(st.devices[RNG]!.needsReset, 'an ignored access is not a device fault');
      assert.is((await bus.access(RNG, MMIO.magicValue, 4, REC_READ)).value, VIRTIO_MMIO_MAGIC, 'the page still answers');
    });
  }, ONLY),

  wrongWidth: behaviour('mmio-wrong-width', (test) => {
    test('a control register not accessed as an aligned 32-bit word, or a config access of width 8 or misaligned, is ignored (virtio §4.2.2.2)', async (b) => {
      const { bus } = mmio(b);
      assert.is((await bus.access(RNG, MMIO.magicValue, 2, REC_READ)).result, REC_IGNORED, '16-bit read of MagicValue');
      assert.is((await bus.access(RNG, MMIO.status, 1, REC_WRITE, ACKNOWLEDGE)).result, REC_IGNORED, '8-bit write of Status');
      assert.is((await bus.access(RNG, MMIO.status + 2, 4, REC_READ)).result, REC_IGNORED, 'misaligned: no register starts there');
      assert.is((await bus.access(CONSOLE, MMIO.config, 8, REC_READ)).result, REC_IGNORED, '64-bit config read');
      assert.is((await bus.access(CONSOLE, MMIO.config + 1, 2, REC_READ)).result, REC_IGNORED, 'a 16-bit config read at an odd offset');
      assert.is((await bus.access(CONSOLE, MMIO.config, 2, REC_READ)).value, 80, 'an aligned 16-bit config read: cols');
      const st = await b.stats();
      assert.is(st.devices[RNG]!.counters['dropped.BAD_WIDTH'], 2);
      assert.is(st.devices[RNG]!.counters['dropped.BAD_OFFSET'], 1);
      assert.is(st.devices[CONSOLE]!.counters['dropped.BAD_WIDTH'], 2);
      assert.is(st.devices[RNG]!.status, 0, 'the 8-bit Status write was not applied');
    });
  }, ONLY),

  wrongDirection: behaviour('mmio-wrong-direction', (test) => {
    test('a read of a write-only register or a write of a read-only one is ignored and changes nothing', async (b) => {
      const { peer, bus } = mmio(b);
      assert.equal(await bus.access(RNG, MMIO.queueNotify, 4, REC_READ), { value: 0, result: REC_IGNORED }, 'QueueNotify is write-only');
      assert.is((await bus.access(RNG, MMIO.deviceFeaturesSel, 4, REC_READ)).result, REC_IGNORED, 'DeviceFeaturesSel is write-only');
      assert.is((await bus.access(RNG, MMIO.magicValue, 4, REC_WRITE, 0)).result, REC_IGNORED, 'MagicValue is read-only');
      assert.is((await bus.access(RNG, MMIO.interruptStatus, 4, REC_WRITE, 3)).result, REC_IGNORED, 'InterruptStatus is read-only');
      assert.is((await bus.access(RNG, MMIO.configGeneration, 4, REC_WRITE, 9)).result, REC_IGNORED, 'ConfigGeneration is read-only');
      assert.is((await b.stats()).devices[RNG]!.counters['dropped.WRONG_DIRECTION'], 5);
      assert.is((await bus.access(RNG, MMIO.magicValue, 4, REC_READ)).value, VIRTIO_MMIO_MAGIC);
      assert.is(await peer.setStatus(RNG, ACKNOWLEDGE), ACKNOWLEDGE);
    });
  }, ONLY),

  unknownDeviceOrOp: behaviour('mmio-unknown-device-or-op', (test) => {
    test('a record for a device page that does not exist, or with an unknown direction, is ignored and counted', async (b) => {
      const { bus } = mmio(b);
      assert.equal(await bus.access(7, MMIO.magicValue, 4, REC_READ), { value: 0, result: REC_IGNORED }, 'no device 7');
      assert.is((await bus.access(RNG, MMIO.status, 4, 9, ACKNOWLEDGE)).result, REC_IGNORED, 'direction 9');
      const st = await b.stats();
      assert.is(st.bus['dropped.UNKNOWN_DEVICE'], 1);
      assert.is(st.devices[RNG]!.counters['dropped.BAD_OP'], 1);
      assert.is(st.devices[RNG]!.status, 0);
    });
  }, ONLY),

  recordHeadRunsAhead: behaviour('mmio-record-head-runs-ahead', (test) => {
    test('a ring head more than the ring size ahead is a bus violation: the records are skipped, never read, and the ring serves again', async (b) => {
      const { peer, bus } = mmio(b);
      const { offset } = bus.recordRing;
      const v = new DataView(b.bytes.buffer, b.bytes.byteOffset);
      const tail = v.getUint32(offset + RING_TAIL, true);
      v.setUint32(offset + RING_HEAD, tail + 1000, true);
      bus.kick();
      await peer.until(() => v.getUint32(offset + RING_TAIL, true) === tail + 1000, () => 'the backend did not resynchronise its tail');
      const st = await b.stats();
      assert.is(st.bus['violation.RECORD_HEAD'], 1, 'counted once');
      assert.ok((st.bus['records'] ?? 0) < 1000, `the skipped records were not processed (${st.bus['records']})`);
      bus.resyncHead();
      assert.is((await bus.access(RNG, MMIO.magicValue, 4, REC_READ)).result, REC_DONE, 'the next record is served');
      for (const d of st.devices) assert.not.ok(d.needsReset, `${d.type}: a bus violation is no device's fault`);
    });
  }, ONLY),

  queueReadyInvalid: behaviour('mmio-queue-ready-invalid', (test) => {
    test('QueueReady = 1 with rings outside the window is refused: QueueReady reads 0 and the device is not reset', async (b) => {
      const { peer, bus } = mmio(b);
      await peer.negotiate(RNG);
      await bus.access(RNG, MMIO.queueSel, 4, REC_WRITE, 0);
      await bus.access(RNG, MMIO.queueNum, 4, REC_WRITE, 8);
      await bus.access(RNG, MMIO.queueDescLow, 4, REC_WRITE, b.layout.windowSize - 16);
      await bus.access(RNG, MMIO.queueReady, 4, REC_WRITE, 1);
      assert.is((await bus.access(RNG, MMIO.queueReady, 4, REC_READ)).value, 0, 'QueueReady reads 0');
      const dev = (await b.stats()).devices[RNG]!;
      assert.is(dev.counters['refused.SET_VQUEUE'], 1);
      assert.is(dev.counters['violation.ADDR_OUTSIDE_WINDOW'], 1);
      assert.not.ok(dev.needsReset);
    });

    test('the queue registers of a ready queue are fixed; QueueSel beyond the queues reads QueueNumMax 0', async (b) => {
      const { peer, bus } = mmio(b);
      const ring = await liveRing(peer, RNG);
      await bus.access(RNG, MMIO.queueSel, 4, REC_WRITE, 0);
      await bus.access(RNG, MMIO.queueDescLow, 4, REC_WRITE, 0x10);
      assert.is((await b.stats()).devices[RNG]!.counters['refused.SET_VQUEUE'], 1, 'refused while ready');
      ring.setDesc(0, ring.data, 16, VIRTQ_DESC_F_WRITE);
      ring.offer(0);
      await ring.notify(RNG, 0);
      assert.equal(ring.usedElem(0), { id: 0, len: 16 }, 'the queue runs on its rings');
      await bus.access(RNG, MMIO.queueSel, 4, REC_WRITE, 5);
      assert.is((await bus.access(RNG, MMIO.queueNumMax, 4, REC_READ)).value, 0, 'no queue 5');
    });
  }, ONLY),

  recordFlood: behaviour('mmio-record-flood', (test) => {
    test('a ring filled with writes in one go is served in order, each record completed', async (b) => {
      const { peer, bus } = mmio(b);
      const { offset, slots } = bus.recordRing;
      const v = new DataView(b.bytes.buffer, b.bytes.byteOffset);
      const head = v.getUint32(offset + RING_HEAD, true);
      const seq = [0, ACKNOWLEDGE, ACKNOWLEDGE | DRIVER];
      for (let k = 0; k < slots; k++) {
        const at = offset + RECORD_SLOTS_OFFSET + ((head + k) & (slots - 1)) * RECORD_SIZE;
        v.setUint16(at, RNG, true);
        v.setUint16(at + 2, MMIO.status, true);
        v.setUint8(at + 4, 4);
        v.setUint8(at + 5, REC_WRITE);
        v.setUint32(at + 8, seq[(k + 2) % 3]!, true); // ends on ACK | DRIVER
        v.setUint32(at + 12, 0, true);
      }
      v.setUint32(offset + RING_HEAD, (head + slots) >>> 0, true);
      const passes0 = b.sim?.passes ?? 0;
      bus.kick();
      await peer.until(() => v.getUint32(offset + RING_TAIL, true) === ((head + slots) >>> 0), () => 'the ring was not drained');
      if (b.sim) assert.ok(b.sim.passes - passes0 <= 2, `one pass for ${slots} records (${b.sim.passes - passes0}; sim-only)`);
      for (let k = 0; k < slots; k++) assert.is(v.getUint32(offset + RECORD_SLOTS_OFFSET + ((head + k) & (slots - 1)) * RECORD_SIZE + 12, true), REC_DONE, `record ${k} completed`);
      bus.resyncHead();
      assert.is(await peer.getStatus(RNG), (ACKNOWLEDGE | DRIVER), 'every write applied, in order');
    });
  }, ONLY),
};
