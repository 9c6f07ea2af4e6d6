/**
 * Packed virtqueue conformance (virtio 1.3 §2.8), one behaviour per entry: test/conformance/packed-<name>.test.ts
 * runs each on the simulator, test/native/shared-packed.test.ts runs them all on the native runtime.
 * Everything goes through a RawPeer and a hand-written packed ring (PeerPackedRing), so it holds on both
 * backends. The hostile cases that need a synchronous backend (a rewrite in the middle of a pass) are in
 * test/hostile/packed-*.test.ts.
 */
import * as assert from 'uvu/assert';
import { Frontend } from '../../frontend/device';
import { ConsoleDriver } from '../../frontend/drivers/console';
import {
  VIRTIO_F_ACCESS_PLATFORM, VIRTIO_F_RING_PACKED, VIRTIO_F_VERSION_1, VIRTQ_DESC_F_AVAIL, VIRTQ_DESC_F_USED, VIRTQ_DESC_F_WRITE,
} from '../../firmware/virtio';
import { PackedRing } from '../../frontend/fuzz/ring';
import type { Backend } from './backends';
import { livePackedRing, P, u32s } from './raw-peer';
import { behaviour } from './suite';

const RNG = 0;
const CONSOLE = 1;
const F = VIRTIO_F_VERSION_1 | VIRTIO_F_ACCESS_PLATFORM;

/** GET_VQUEUE of rng queue 0: size and the three addresses the device holds. */
async function rngQueue(b: Backend) {
  const a = await b.msgPeer().must(RNG, P.VIRTIO_MSG_GET_VQUEUE, u32s(0));
  return { size: a.getUint32(8, true), desc: a.getUint32(16, true), driver: a.getUint32(24, true), device: a.getUint32(32, true) };
}

export const behaviours = {
  packedSetVqueue: behaviour('packed-set-vqueue', (test) => {
    test('a packed queue of a size that is not a power of two is accepted and serves (virtio §2.8.10.1)', async (b) => {
      const ring = await livePackedRng(b, 100);
      assert.equal(await rngQueue(b), { size: 100, desc: ring.desc, driver: ring.driver, device: ring.device }, 'GET_VQUEUE shows the three packed areas');
      ring.offer([{ off: ring.data, len: 48, write: true }], 7);
      await ring.notify(RNG, 0);
      assert.equal((await ring.waitUsed(1)).map((u) => [u.id, u.len]), [[7, 48]]);
    });

    test('the same size is refused for a split queue (virtio §2.7: a power of two)', async (b) => {
      const peer = b.msgPeer();
      await peer.negotiate(RNG, F);
      const p = peer.layout.poolOffset;
      await peer.request(RNG, P.VIRTIO_MSG_SET_VQUEUE, u32s(0, 0, 100, 0, p, 0, p + 0x1000, 0, p + 0x2000, 0));
      assert.is((await rngQueue(b)).size, 0);
    });

    for (const [what, field, delta] of [
      ['a descriptor ring not 16-byte aligned', 'desc', 8],
      ['a driver event suppression structure not 4-byte aligned', 'driver', 2],
      ['a device event suppression structure not 4-byte aligned', 'device', 2],
    ] as const) {
      test(`SET_VQUEUE with ${what} is refused and the queue stays unset (virtio §2.8.10.1)`, async (b) => {
        const peer = b.msgPeer();
        await peer.negotiate(RNG, F | VIRTIO_F_RING_PACKED);
        const r = new PackedRing(() => peer.bytes, 8, peer.layout.poolOffset);
        const a = { desc: r.desc, driver: r.driver, device: r.device, [field]: r[field] + delta };
        await peer.request(RNG, P.VIRTIO_MSG_SET_VQUEUE, u32s(0, 0, 8, 0, a.desc, 0, a.driver, 0, a.device, 0));
        assert.is((await rngQueue(b)).size, 0, 'queue set up anyway');
        assert.is((await b.stats()).devices[RNG]!.counters['violation.QUEUE_ALIGN'], 1);
      });
    }

    test('SET_VQUEUE with an event suppression structure outside the window is refused', async (b) => {
      const peer = b.msgPeer();
      await peer.negotiate(RNG, F | VIRTIO_F_RING_PACKED);
      const r = new PackedRing(() => peer.bytes, 8, peer.layout.poolOffset);
      await peer.request(RNG, P.VIRTIO_MSG_SET_VQUEUE, u32s(0, 0, 8, 0, r.desc, 0, r.driver, 0, peer.layout.windowSize - 2, 0));
      assert.is((await rngQueue(b)).size, 0);
      assert.is((await b.stats()).devices[RNG]!.counters['violation.ADDR_OUTSIDE_WINDOW'], 1);
    });
  }),

  packedWrapLaps: behaviour('packed-wrap-laps', (test) => {
    test('lap after lap of a 5-entry ring, lists crossing its end: every buffer used once with its id and length (virtio §2.8.1)', async (b) => {
      const ring = await livePackedRng(b, 5);
      let id = 0;
      let descs = 0;
      for (let lap = 0; lap < 24; lap++) {
        const n = 1 + (lap % 3); // a list of 1, 2 or 3 descriptors: they cross the end of the ring
        const segs = Array.from({ length: n }, (_, k) => ({ off: ring.data + 0x100 * k, len: 8 + k, write: true }));
        ring.offer(segs, id);
        await ring.notify(RNG, 0);
        const used = await ring.waitUsed(1);
        assert.equal(used.map((u) => [u.id, u.len]), [[id, segs.reduce((a, s) => a + s.len, 0)]], `lap ${lap}`);
        const f = used[0]!.flags;
        assert.is((f & VIRTQ_DESC_F_AVAIL) !== 0, (f & VIRTQ_DESC_F_USED) !== 0, `lap ${lap}: AVAIL and USED of a used descriptor differ`);
        assert.ok(f & VIRTQ_DESC_F_WRITE, `lap ${lap}: WRITE not set on a used descriptor that carries data`);
        descs += n;
        id = (id + 1) % 5;
      }
      assert.ok(descs > 8 * 5, 'the ring went around several times');
      const d = (await b.stats()).devices[RNG]!;
      assert.not.ok(d.needsReset, d.lastViolation);
    });
  }),

  packedNegotiatedPerDevice: behaviour('packed-negotiated-per-device', (test) => {
    test('rng on a packed ring and console on split rings serve side by side on one bus', async (b) => {
      const ring = await livePackedRng(b, 8);
      const con = await ConsoleDriver.open((await Frontend.attach(b.port)).devices[CONSOLE]!);
      await con.write('split beside packed');
      ring.offer([{ off: ring.data, len: 32, write: true }], 3);
      await ring.notify(RNG, 0);
      assert.equal((await ring.waitUsed(1)).map((u) => [u.id, u.len]), [[3, 32]]);
      assert.is(await b.console().output('split beside packed'), 'split beside packed');
      const st = await b.stats();
      assert.not.ok(st.devices[RNG]!.needsReset || st.devices[CONSOLE]!.needsReset);
    });
  }),

  packedDescFlagsWrap: behaviour('packed-desc-flags-wrap', (test) => {
    test('a descriptor with AVAIL and USED both equal to the wrap counter is a violation (virtio §2.8.1)', async (b) => {
      const ring = await livePackedRng(b, 8);
      ring.setDesc(0, ring.data, 16, 0, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED);
      await ring.notify(RNG, 0);
      const d = (await b.stats()).devices[RNG]!;
      assert.ok(d.needsReset, 'device NEEDS_RESET');
      assert.is(d.counters['violation.DESC_FLAGS_WRAP'], 1);
      assert.not.ok((await b.stats()).devices[CONSOLE]!.needsReset, 'console unaffected');
    });

    test('a descriptor whose AVAIL is of the other wrap is not available: not consumed, no violation', async (b) => {
      const ring = await livePackedRng(b, 8);
      ring.setDesc(0, ring.data, 16, 0, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_USED); // AVAIL 0, USED 1: wrap 0's
      await ring.notify(RNG, 0);
      assert.is(ring.reap().length, 0, 'consumed');
      const d = (await b.stats()).devices[RNG]!;
      assert.not.ok(d.needsReset, d.lastViolation);
      ring.offer([{ off: ring.data, len: 16, write: true }], 0); // now properly, for wrap 1
      await ring.notify(RNG, 0);
      assert.equal((await ring.waitUsed(1)).map((u) => [u.id, u.len]), [[0, 16]]);
    });
  }),
};

/** rng live on one packed ring of `size` (queue 0, at the pool start). */
async function livePackedRng(b: Backend, size: number) {
  return livePackedRing(b.msgPeer(), RNG, size, F);
}
