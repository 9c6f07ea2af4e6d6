/**
 * Transport and virtqueue conformance, one behaviour per entry (test/conformance/<name>.test.ts runs
 * it on the simulator, test/native/shared-conformance.test.ts runs them all on the native runtime),
 * each on every transport it holds on: most go through the transport-neutral `Peer` and run on msg,
 * regblock and mmio alike; the virtio-msg wire's own (bus messages, framing, SET_CONFIG generations)
 * say `transports: ['msg']`. The register transports' own hostile cases are in
 * test/shared/regblock.suite.ts and test/shared/mmio.suite.ts.
 *
 * Simulator-only assertions (checked only when `b.sim` is set, and named as such): that no
 * exception escaped into the runtime's fault list (`runtime.faults`; both backends also check the
 * `fault.*` counters), and that a bad available index kept the backend to a few passes (`passes`).
 */
import * as assert from 'uvu/assert';
import { VIRTIO_CONSOLE_F_MULTIPORT } from '../../firmware/devices/console';
import {
  ACKNOWLEDGE, DEVICE_NEEDS_RESET, DRIVER, DRIVER_OK, FEATURES_OK, VIRTIO_F_ACCESS_PLATFORM, VIRTIO_F_RING_INDIRECT_DESC, VIRTIO_F_VERSION_1,
  VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE,
} from '../../firmware/virtio';
import { FrontendBus } from '../../frontend/bus';
import { Frontend } from '../../frontend/device';
import { ConsoleDriver } from '../../frontend/drivers/console';
import type { BackendStats } from '../../frontend/sim';
import type { Backend } from './backends';
import type { PeerRing } from './raw-peer';
import { LIVE, liveRing, P, u32s } from './raw-peer';
import { behaviour } from './suite';

const RNG = 0;
const CONSOLE = 1;

/** A live rng (dev 0) with one raw ring of `size` entries on queue 0. */
async function liveRng(b: Backend, size = 8, features?: bigint) {
  const peer = b.peer();
  const ring = await liveRing(peer, RNG, size, features);
  return { peer, ring };
}

/** Offers `head`, notifies the rng and returns its stats entry. */
async function offerRng(b: Backend, ring: PeerRing, head = 0) {
  ring.offer(head);
  await ring.notify(RNG, 0);
  return (await b.stats()).devices[RNG]!;
}

/** Counters of calls the runtime had to stop (an exception that escaped a device model, a watchdog, memory). */
const runtimeFaults = (st: BackendStats) => Object.keys(st.bus).filter((k) => k.startsWith('fault.'));

export const behaviours = {
  addrLenOverflow: behaviour('addr-len-overflow', (test) => {
    test('addr + len that wraps past 2^32 is rejected (overflow-safe bounds check)', async (b) => {
      const { ring } = await liveRng(b);
      ring.setDesc(0, 0xfffff000, 0x2000, VIRTQ_DESC_F_WRITE);
      const dev = await offerRng(b, ring);
      assert.ok(dev.needsReset, 'device NEEDS_RESET');
      assert.is(dev.counters['violation.ADDR_OUTSIDE_WINDOW'], 1);
      assert.equal(runtimeFaults(await b.stats()), [], 'no call was stopped by the runtime');
      if (b.sim) assert.is(b.sim.runtime.faults.length, 0, 'no exception escaped the firmware (sim-only: runtime.faults)');
    });

    test('a huge length from a valid address is rejected', async (b) => {
      const { ring } = await liveRng(b);
      ring.setDesc(0, ring.data, 0xffffffff, VIRTQ_DESC_F_WRITE);
      assert.is((await offerRng(b, ring)).counters['violation.ADDR_OUTSIDE_WINDOW'], 1);
    });
  }),

  availIdxJump: behaviour('avail-idx-jump', (test) => {
    test('an available index more than the queue size ahead is a violation, not a loop (virtio §2.7.13.3)', async (b) => {
      const { ring } = await liveRng(b);
      const passes0 = b.sim?.passes ?? 0;
      ring.setAvailIdx(9);
      await ring.notify(RNG, 0);
      const dev = (await b.stats()).devices[RNG]!;
      assert.ok(dev.needsReset);
      assert.is(dev.counters['violation.AVAIL_IDX_JUMP'], 1);
      if (b.sim) assert.ok(b.sim.passes - passes0 < 10, `backend stayed bounded (${b.sim.passes - passes0} passes; sim-only)`);
    });
  }),

  busMessages: behaviour('bus-messages', (test) => {
    test('GET_DEVICES reports every device in the bitmap, with next offset 0', async (b) => {
      const out = await b.msgPeer().raw(FrontendBus.encode(P.TYPE_BUS, P.BUS_MSG_GET_DEVICES, 0, 5, new Uint8Array([0, 0, 8, 0])));
      assert.is(out.length, 1);
      const v = new DataView(out[0]!.buffer);
      assert.is(out[0]![0], P.TYPE_BUS | P.TYPE_RESPONSE);
      assert.is(v.getUint16(4, true), 5, 'token echoed');
      assert.is(v.getUint16(10, true), 8, 'count');
      assert.is(v.getUint16(12, true), 0, 'no devices after');
      assert.is(out[0]![14], 0b11, 'devices 0 and 1 present');
    });

    test('PING echoes its data', async (b) => {
      const out = await b.msgPeer().raw(FrontendBus.encode(P.TYPE_BUS, P.BUS_MSG_PING, 0, 6, u32s(0xdeadbeef)));
      assert.is(new DataView(out[0]!.buffer).getUint32(8, true), 0xdeadbeef);
    });

    test('requests are answered in the order they were received', async (b) => {
      const pings = Array.from({ length: 10 }, (_, i) => FrontendBus.encode(P.TYPE_BUS, P.BUS_MSG_PING, 0, i + 1, u32s(i + 1)));
      const tokens = (await b.msgPeer().exchange(pings)).map((m) => new DataView(m.buffer).getUint16(4, true));
      assert.equal(tokens, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    });

    test('a request with token 0 is dropped (tokens are non-zero for requests)', async (b) => {
      assert.is((await b.msgPeer().raw(FrontendBus.encode(P.TYPE_BUS, P.BUS_MSG_PING, 0, 0, u32s(1)))).length, 0);
    });
  }, { transports: ['msg'] }),

  chainLoop: behaviour('chain-loop', (test) => {
    test('a descriptor chain that loops marks the device NEEDS_RESET (virtio §2.7.5.2)', async (b) => {
      const { ring } = await liveRng(b);
      ring.setDesc(0, ring.data, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
      ring.setDesc(1, ring.data + 16, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 0);
      const dev = await offerRng(b, ring);
      assert.ok(dev.needsReset, 'device should be NEEDS_RESET after a looping chain');
      assert.is(dev.counters['violation.CHAIN_LOOP'], 1, 'violation counted as CHAIN_LOOP');
      assert.is(ring.usedIdx(), 0, 'nothing completed from a looping chain');
    });
  }),

  consoleMultiport: behaviour('console-multiport', (test) => {
    const F = VIRTIO_F_VERSION_1 | VIRTIO_F_ACCESS_PLATFORM | VIRTIO_CONSOLE_F_MULTIPORT;
    /** host-sim with a console of two ports: port 0 on console0, port 1 "org.bulkhead.log" on serial1. */
    const TWO_PORTS = {
      services: { serial1: { kind: 'stream', backing: 'memory' } },
      devices: [
        { type: 'rng', service: 'entropy0' },
        { type: 'console', service: 'console0', ports: [{ service: 'serial1', name: 'org.bulkhead.log' }] },
      ],
    };
    async function twoPorts(b: Backend) {
      const peer = b.peer();
      assert.ok((await peer.negotiate(CONSOLE, F)) & FEATURES_OK, 'FEATURES_OK with MULTIPORT');
      const rings: PeerRing[] = [];
      for (let q = 0; q < 6; q++) {
        rings.push(peer.ring(8, b.layout.poolOffset + q * 0x10000));
        await rings[q]!.install(CONSOLE, q);
      }
      await peer.setStatus(CONSOLE, LIVE);
      const [, , cin, cout, rx1, tx1] = rings as [PeerRing, PeerRing, PeerRing, PeerRing, PeerRing, PeerRing];
      for (let i = 0; i < 8; i++) {
        cin.setDesc(i, cin.data + 64 * i, 64, VIRTQ_DESC_F_WRITE);
        cin.offer(i);
      }
      await cin.notify(CONSOLE, 2);
      let sent = 0;
      /** Sends one driver control message on the control transmitq. */
      const control = async (id: number, event: number, value: number) => {
        const slot = sent++ % 8;
        const at = cout.data + 16 * slot;
        b.bytes.set(u32s(id, event | (value << 16)), at);
        cout.setDesc(slot, at, 8, 0);
        cout.offer(slot);
        await cout.notify(CONSOLE, 3);
      };
      /** Control messages the device delivered so far: [id, event, value, payload]. */
      const received = () => {
        const out: [number, number, number, string][] = [];
        const bytes = b.bytes;
        const v = new DataView(bytes.buffer, bytes.byteOffset);
        for (let i = 0; i < cin.usedIdx(); i++) {
          const e = cin.usedElem(i);
          const at = cin.data + 64 * e.id;
          out.push([v.getUint32(at, true), v.getUint16(at + 4, true), v.getUint16(at + 6, true), new TextDecoder().decode(bytes.subarray(at + 8, at + e.len))]);
        }
        return out;
      };
      return { rings, cin, rx1, tx1, control, received };
    }

    test('with MULTIPORT the device announces every port after DEVICE_READY, then console/name/open per PORT_READY (§5.3.6.2)', async (b) => {
      const { cin, control, received } = await twoPorts(b);
      assert.is((await b.stats()).devices[CONSOLE]!.queues.length, 6, 'port 0, control pair, port 1');
      await control(0, 0, 1); // DEVICE_READY
      await cin.waitUsed(2);
      assert.equal(received(), [
        [0, 1, 0, ''],
        [1, 1, 0, ''],
      ], 'DEVICE_ADD for ports 0 and 1');
      await control(0, 3, 1); // PORT_READY 0
      await control(1, 3, 1); // PORT_READY 1
      await cin.waitUsed(6);
      assert.equal(received().slice(2), [
        [0, 4, 1, ''],
        [0, 6, 1, ''],
        [1, 7, 0, 'org.bulkhead.log'],
        [1, 6, 1, ''],
      ], 'CONSOLE_PORT + PORT_OPEN for 0; PORT_NAME + PORT_OPEN for 1');
      await control(1, 6, 1); // the guest opened port 1
      assert.is((await b.stats()).devices[CONSOLE]!.counters['portsOpen'], 1);
    }, TWO_PORTS);

    test('port 1 carries its own stream both ways, separate from the console port', async (b) => {
      const { rx1, tx1 } = await twoPorts(b);
      b.bytes.set(new TextEncoder().encode('to the log'), tx1.data);
      tx1.setDesc(0, tx1.data, 10, 0);
      tx1.offer(0);
      await tx1.notify(CONSOLE, 5);
      assert.is(await b.console('serial1').output('to the log'), 'to the log');
      assert.is(await b.console('console0').output(), '', 'nothing on port 0');
      rx1.setDesc(0, rx1.data, 32, VIRTQ_DESC_F_WRITE);
      rx1.offer(0);
      await rx1.notify(CONSOLE, 4);
      await b.console('serial1').input('xyz');
      await rx1.waitUsed(1);
      assert.equal(rx1.usedElem(0), { id: 0, len: 3 });
    }, TWO_PORTS);

    test('control messages for a port that does not exist are counted and ignored', async (b) => {
      const { control, received } = await twoPorts(b);
      await control(9, 3, 1);
      await control(0, 99, 1);
      assert.is(received().length, 0);
      const dev = (await b.stats()).devices[CONSOLE]!;
      assert.is(dev.counters['controlBad'], 2);
      assert.not.ok(dev.needsReset);
    }, TWO_PORTS);

    test('a single-port console does not offer MULTIPORT', async (b) => {
      const a = (await Frontend.attach(b.port)).devices[CONSOLE]!;
      assert.is((await a.deviceFeatures()) & VIRTIO_CONSOLE_F_MULTIPORT, 0n);
    });
  }),

  consoleRxBufferWithoutRoom: behaviour('console-rx-buffer-without-room', (test) => {
    test('a console receive buffer with no writable bytes is returned empty and does not stall input', async (b) => {
      const rx = await liveRing(b.peer(), CONSOLE);
      rx.setDesc(0, rx.data, 16, 0); // device-readable only: a driver bug
      rx.setDesc(1, rx.data + 64, 32, VIRTQ_DESC_F_WRITE);
      rx.offer(0);
      rx.offer(1);
      await rx.notify(CONSOLE, 0);
      await b.console().input('abc');
      await rx.waitUsed(2);
      assert.equal(rx.usedElem(0), { id: 0, len: 0 }, 'the unusable buffer came back empty');
      assert.equal(rx.usedElem(1), { id: 1, len: 3 }, 'input went into the next buffer');
      assert.equal([...b.bytes.subarray(rx.data + 64, rx.data + 67)], [97, 98, 99]);
      assert.not.ok((await b.stats()).devices[CONSOLE]!.needsReset);
    });
  }),

  descriptorOutsideWindow: behaviour('descriptor-outside-window', (test) => {
    test('a descriptor past the end of the window is a violation, not a memory access', async (b) => {
      const { ring } = await liveRng(b);
      const end = b.layout.windowSize;
      const before = b.bytes.slice(end - 8);
      ring.setDesc(0, end - 8, 16, VIRTQ_DESC_F_WRITE);
      const dev = await offerRng(b, ring);
      assert.ok(dev.needsReset);
      assert.is(dev.counters['violation.ADDR_OUTSIDE_WINDOW'], 1);
      assert.equal(b.bytes.subarray(end - 8), before, 'last window bytes untouched');
    });

    test('a descriptor with a non-zero upper address half is outside the window', async (b) => {
      const { ring } = await liveRng(b);
      ring.setDesc(0, ring.data, 16, VIRTQ_DESC_F_WRITE, 0, ring.desc, 1);
      assert.is((await offerRng(b, ring)).counters['violation.ADDR_OUTSIDE_WINDOW'], 1);
    });

    test("a descriptor pointing into the window header or the transport's area (FIFOs, register blocks, record ring) is refused (buffers live in the pool)", async (b) => {
      const { ring } = await liveRng(b);
      const area = b.layout.transport === 'msg' ? b.layout.fifoV2D.offset : b.layout.areaOffset;
      const before = b.bytes.slice(area, area + 64);
      ring.setDesc(0, area, 64, VIRTQ_DESC_F_WRITE);
      assert.ok((await offerRng(b, ring)).needsReset, "a writable buffer over the transport's area must not be filled");
      if (b.layout.transport === 'regblock') assert.equal(b.bytes.slice(area, area + 64), before, 'the device directory is untouched');
    });
  }),

  featuresNotOffered: behaviour('features-not-offered', (test) => {
    test('FEATURES_OK is refused when the driver accepts a feature the device did not offer (virtio §2.2.1)', async (b) => {
      const peer = b.peer();
      await peer.setStatus(RNG, ACKNOWLEDGE);
      await peer.setStatus(RNG, ACKNOWLEDGE | DRIVER);
      await peer.setDriverFeatures(RNG, VIRTIO_F_VERSION_1 | (1n << 5n)); // bit 5 is not an rng feature
      const st = await peer.setStatus(RNG, ACKNOWLEDGE | DRIVER | FEATURES_OK);
      assert.is(st & FEATURES_OK, 0, 'FEATURES_OK not set in the answer');
    });

    test('FEATURES_OK is refused without VIRTIO_F_VERSION_1', async (b) => {
      const peer = b.peer();
      await peer.setStatus(RNG, ACKNOWLEDGE);
      await peer.setStatus(RNG, ACKNOWLEDGE | DRIVER);
      await peer.setDriverFeatures(RNG, 0n);
      assert.is((await peer.setStatus(RNG, ACKNOWLEDGE | DRIVER | FEATURES_OK)) & FEATURES_OK, 0);
    });

    test('the offered feature bits read as zero beyond bit 63', async (b) => {
      const peer = b.peer();
      assert.ok((await peer.deviceFeatureWord(RNG, 1)) & 1, 'block 1 has VERSION_1 (bit 32)');
      assert.is(await peer.deviceFeatureWord(RNG, 2), 0, 'block 2');
      assert.is(await peer.deviceFeatureWord(RNG, 3), 0, 'block 3');
    });

    test('GET_DEVICE_FEATURES of several blocks answers each, zero beyond 64 bits', async (b) => {
      if (b.transport !== 'msg') return;
      const a = await b.msgPeer().must(RNG, P.VIRTIO_MSG_GET_DEVICE_FEATURES, u32s(1, 3));
      assert.is(a.getUint32(4, true), 3);
      assert.ok(a.getUint32(8, true) & 1, 'block 1 has VERSION_1 (bit 32)');
      assert.is(a.getUint32(12, true), 0);
      assert.is(a.getUint32(16, true), 0);
    });
  }),

  headOutOfRange: behaviour('head-out-of-range', (test) => {
    test('an available ring head ≥ queue size is a violation (virtio §2.7.6)', async (b) => {
      const { ring } = await liveRng(b);
      const dev = await offerRng(b, ring, 8);
      assert.ok(dev.needsReset);
      assert.is(dev.counters['violation.HEAD_OUT_OF_RANGE'], 1);
    });
  }),

  needsResetIsolation: behaviour('needs-reset-isolation', (test) => {
    test('a device in NEEDS_RESET sends EVENT_CONFIG, and the other devices keep working', async (b) => {
      const { ring } = await liveRng(b);
      assert.ok((await offerRng(b, ring, 8)).needsReset); // head out of range
      const fe = await Frontend.attach(b.port);
      const con = await ConsoleDriver.open(fe.devices[CONSOLE]!);
      await con.write('still alive');
      assert.is(await b.console().output('still alive'), 'still alive', 'console unaffected by the rng fault');
      assert.is((await b.stats()).devices[CONSOLE]!.needsReset, false);
    });

    test('the configuration-change notification carries DEVICE_NEEDS_RESET to the driver (EVENT_CONFIG, config_event, InterruptStatus)', async (b) => {
      const { peer, ring } = await liveRng(b);
      assert.is(peer.configNotified(RNG), null, 'no notification before the fault');
      ring.offer(9);
      await ring.notify(RNG, 0);
      const st = peer.configNotified(RNG);
      assert.ok(st !== null, 'a configuration-change notification reached the driver');
      assert.ok(st! & DEVICE_NEEDS_RESET, `the status it carries (0x${(st ?? 0).toString(16)}) has NEEDS_RESET`);
    });

    test('after NEEDS_RESET, a reset and a fresh initialisation serve again', async (b) => {
      const { peer, ring } = await liveRng(b);
      assert.ok((await offerRng(b, ring, 8)).needsReset);
      await peer.negotiate(RNG);
      const r2 = peer.ring(8, b.layout.poolOffset + 64 * 1024);
      await r2.install(RNG, 0);
      await peer.setStatus(RNG, LIVE);
      r2.setDesc(0, r2.data, 32, VIRTQ_DESC_F_WRITE);
      r2.offer(0);
      await r2.notify(RNG, 0);
      assert.equal(r2.usedElem(0), { id: 0, len: 32 });
      assert.not.ok((await b.stats()).devices[RNG]!.needsReset);
    });
  }),

  nestedIndirect: behaviour('nested-indirect', (test) => {
    const F = VIRTIO_F_VERSION_1 | VIRTIO_F_ACCESS_PLATFORM | VIRTIO_F_RING_INDIRECT_DESC;

    test('an indirect descriptor inside an indirect table is a violation (virtio §2.7.5.3.1)', async (b) => {
      const { ring } = await liveRng(b, 8, F);
      const table = ring.data + 4096;
      ring.setDesc(0, table, 32, VIRTQ_DESC_F_INDIRECT);
      ring.setDesc(0, table + 64, 16, VIRTQ_DESC_F_INDIRECT, 0, table);
      ring.setDesc(1, ring.data, 16, VIRTQ_DESC_F_WRITE, 0, table);
      const dev = await offerRng(b, ring);
      assert.ok(dev.needsReset);
      assert.is(dev.counters['violation.NESTED_INDIRECT'], 1);
    });

    test('a valid indirect chain is served', async (b) => {
      const { ring } = await liveRng(b, 8, F);
      const table = ring.data + 4096;
      ring.setDesc(0, table, 16, VIRTQ_DESC_F_INDIRECT);
      ring.setDesc(0, ring.data, 32, VIRTQ_DESC_F_WRITE, 0, table);
      assert.not.ok((await offerRng(b, ring)).needsReset);
      assert.equal(ring.usedElem(0), { id: 0, len: 32 });
    });

    test('INDIRECT without VIRTIO_F_RING_INDIRECT_DESC negotiated is a violation', async (b) => {
      const { ring } = await liveRng(b);
      ring.setDesc(0, ring.data + 4096, 16, VIRTQ_DESC_F_INDIRECT);
      assert.is((await offerRng(b, ring)).counters['violation.INDIRECT_NOT_NEGOTIATED'], 1);
    });
  }),

  notifyQueueNotReady: behaviour('notify-queue-not-ready', (test) => {
    test('a notification (EVENT_AVAIL, QueueNotify) for a queue that is not ready is dropped and counted', async (b) => {
      const peer = b.peer();
      await peer.negotiate(RNG);
      await peer.notify(RNG, 0);
      await peer.notify(RNG, 7);
      const dev = (await b.stats()).devices[RNG]!;
      assert.is(dev.counters['dropped.NOTIFY_NOT_READY'], 2);
      assert.not.ok(dev.needsReset, 'an early notify is not a reason to reset');
    });
  }, { transports: ['msg', 'mmio'] }), // a regblock doorbell names no queue: there is no notification to drop

  resetReleasesQueues: behaviour('reset-releases-queues', (test) => {
    test('writing status 0 releases queues and in-flight work', async (b) => {
      const { peer, ring } = await liveRng(b);
      ring.setDesc(0, ring.data, 16, VIRTQ_DESC_F_WRITE);
      await offerRng(b, ring);
      assert.is(ring.usedIdx(), 1);
      await peer.setStatus(RNG, 0);
      assert.not.ok(await peer.queueEnabled(RNG, 0), 'the queue is unset (GET_VQUEUE size 0, QueueReady 0)');
      const d = (await b.stats()).devices[RNG]!;
      assert.is(d.status, 0);
      assert.equal(d.queues[0], { size: 0, enabled: false, live: false, inFlight: 0 });
    });

    test('the config generation is not reset by a device reset', async (b) => {
      const { peer } = await liveRng(b);
      const before = (await peer.getConfig(CONSOLE, 0, 4)).generation;
      await peer.setStatus(CONSOLE, 0);
      assert.is((await peer.getConfig(CONSOLE, 0, 4)).generation, before);
    });
  }),

  setVqueueOutsideWindow: behaviour('set-vqueue-outside-window', (test) => {
    test('SET_VQUEUE with a ring outside the window is refused and the queue stays unset', async (b) => {
      const peer = b.peer();
      await peer.negotiate(RNG);
      const end = b.layout.windowSize;
      const pool = b.layout.poolOffset;
      await peer.setQueue(RNG, 0, 8, end - 64, pool + 4096, pool + 8192); // answered / transaction done: the driver does not hang
      assert.not.ok(await peer.queueEnabled(RNG, 0), 'the queue was not configured');
      const dev = (await b.stats()).devices[RNG]!;
      assert.is(dev.counters['violation.ADDR_OUTSIDE_WINDOW'], 1);
      assert.is(dev.counters['refused.SET_VQUEUE'], 1);
    });

    test('SET_VQUEUE with a size that is not a power of two is refused', async (b) => {
      const peer = b.peer();
      await peer.negotiate(RNG);
      const p = b.layout.poolOffset;
      await peer.setQueue(RNG, 0, 12, p, p + 4096, p + 8192);
      assert.not.ok(await peer.queueEnabled(RNG, 0));
      assert.is((await b.stats()).devices[RNG]!.counters['violation.QUEUE_SIZE'], 1);
    });
  }),

  staleConfigGeneration: behaviour('stale-config-generation', (test) => {
    test('SET_CONFIG with a stale generation is rejected with size 0 (virtio-msg §ConfigGen)', async (b) => {
      const peer = b.msgPeer();
      const g = await peer.must(CONSOLE, P.VIRTIO_MSG_GET_CONFIG, u32s(0, 4));
      const gen = g.getUint32(0, true);
      const p = new Uint8Array(16);
      p.set(u32s(gen + 1, 0, 4));
      p.set([1, 2, 3, 4], 12);
      const a = await peer.must(CONSOLE, P.VIRTIO_MSG_SET_CONFIG, p);
      assert.is(a.getUint32(8, true), 0, 'rejected: number of bytes is 0');
      assert.is(a.getUint32(0, true), gen, 'answer carries the current generation');
      assert.ok((await b.logs()).some((l) => l.includes('stale generation')), 'the log names the reason');
      const after = await peer.must(CONSOLE, P.VIRTIO_MSG_GET_CONFIG, u32s(0, 4));
      assert.equal(new Uint8Array(after.buffer, after.byteOffset + 12, 4), new Uint8Array(g.buffer, g.byteOffset + 12, 4), 'config unchanged');
    });

    test('GET_CONFIG outside the config space answers 0 bytes', async (b) => {
      const a = await b.msgPeer().must(CONSOLE, P.VIRTIO_MSG_GET_CONFIG, u32s(8, 8));
      assert.is(a.getUint32(8, true), 0);
    });
  }, { transports: ['msg'] }),

  statusBitsNotCleared: behaviour('status-bits-not-cleared', (test) => {
    test('the driver cannot clear a status bit except by writing 0 (virtio §2.1.1)', async (b) => {
      const peer = b.peer();
      await peer.negotiate(RNG);
      assert.is(await peer.setStatus(RNG, ACKNOWLEDGE), ACKNOWLEDGE | DRIVER | FEATURES_OK, 'status unchanged');
      assert.is((await b.stats()).devices[RNG]!.counters['refused.SET_DEVICE_STATUS'], 1);
    });

    test('DRIVER_OK without FEATURES_OK is refused', async (b) => {
      const peer = b.peer();
      await peer.setStatus(RNG, ACKNOWLEDGE);
      await peer.setStatus(RNG, ACKNOWLEDGE | DRIVER);
      assert.is((await peer.setStatus(RNG, ACKNOWLEDGE | DRIVER | DRIVER_OK)) & DRIVER_OK, 0);
    });
  }),

  truncatedMessage: behaviour('truncated-message', (test) => {
    test('a message shorter than its fixed payload is dropped and counted, without an answer', async (b) => {
      const out = await b.msgPeer().raw(FrontendBus.encode(0, P.VIRTIO_MSG_SET_DEVICE_STATUS, RNG, 7, new Uint8Array(2)));
      assert.is(out.length, 0, 'no answer to a truncated message');
      const st = await b.stats();
      assert.is(st.bus['dropped.TRUNCATED'], 1);
      assert.is(st.devices[RNG]!.status, 0, 'status unchanged');
    });

    test('a msg_size below the 8-byte header or above the slot size is dropped', async (b) => {
      const peer = b.msgPeer();
      const m = FrontendBus.encode(0, P.VIRTIO_MSG_GET_DEVICE_STATUS, RNG, 7);
      m[6] = 4;
      assert.is((await peer.raw(m)).length, 0);
      const big = FrontendBus.encode(0, P.VIRTIO_MSG_GET_DEVICE_STATUS, RNG, 8);
      new DataView(big.buffer).setUint16(6, 0xffff, true);
      assert.is((await peer.raw(big)).length, 0);
      assert.is((await b.stats()).bus['dropped.BAD_SIZE'], 2);
    });
  }, { transports: ['msg'] }),

  unknownMessageId: behaviour('unknown-message-id', (test) => {
    test('an unknown msg_id is dropped and counted, never answered (virtio-msg §Error Signaling)', async (b) => {
      const peer = b.msgPeer();
      assert.is((await peer.raw(FrontendBus.encode(0, 0x3f, 0, 9, new Uint8Array(8)))).length, 0);
      assert.is((await peer.raw(FrontendBus.encode(P.TYPE_BUS, 0x7e, 0, 9, new Uint8Array(8)))).length, 0);
      const st = await b.stats();
      assert.is(st.bus['dropped.UNKNOWN_MSG_ID'], 1);
      assert.is(st.bus['dropped.UNKNOWN_BUS_MSG_ID'], 1);
    });

    test('a message for a device number that does not exist is dropped', async (b) => {
      assert.is((await b.msgPeer().raw(FrontendBus.encode(0, P.VIRTIO_MSG_GET_DEVICE_INFO, 42, 9))).length, 0);
      assert.is((await b.stats()).bus['dropped.UNKNOWN_DEVICE'], 1);
    });
  }, { transports: ['msg'] }),

  writableBeforeReadable: behaviour('writable-before-readable', (test) => {
    test('a device-readable descriptor after a writable one is a violation (virtio §2.7.4.2)', async (b) => {
      const { ring } = await liveRng(b);
      ring.setDesc(0, ring.data, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
      ring.setDesc(1, ring.data + 16, 16, 0);
      const dev = await offerRng(b, ring);
      assert.ok(dev.needsReset);
      assert.is(dev.counters['violation.READABLE_AFTER_WRITABLE'], 1);
      assert.equal([...b.bytes.subarray(ring.data, ring.data + 16)], new Array(16).fill(0), 'nothing written into the chain');
    });
  }),
};
