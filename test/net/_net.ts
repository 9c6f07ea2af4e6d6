/**
 * Shared setup of the virtio-net suites: host-sim with two net devices on virtual switch sw0
 * (dev 2 = net0, dev 3 = net1, appended after rng 0 and console 1), frame builders and a reference checksum.
 */
import type { DeviceManifestEntry } from '../../firmware/hal';
import { NetDriver } from '../../frontend/drivers/net';
import type { NetDriverOptions } from '../../frontend/drivers/net';
import type { Sim } from '../../frontend/sim';
import { createSim } from '../../frontend/sim';

export const NET0 = 2;
export const NET1 = 3;
export const MAC0 = Uint8Array.of(0x52, 0x54, 0, 0xaa, 0, 1);
export const MAC1 = Uint8Array.of(0x52, 0x54, 0, 0xaa, 0, 2);
export const HOST_MAC = Uint8Array.of(0x02, 0, 0, 0, 0, 0x99);
export const BROADCAST = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);

const hex = (m: Uint8Array) => Array.from(m, (x) => x.toString(16).padStart(2, '0')).join(':');

/** A simulator with two net devices (extra manifest fields merged into both). */
export function netSim(extra: Partial<DeviceManifestEntry> = {}): Promise<Sim> {
  return createSim({
    devices: [
      { type: 'rng', service: 'entropy0' },
      { type: 'console', service: 'console0' },
      { type: 'net', service: 'net0', mac: hex(MAC0), ...extra },
      { type: 'net', service: 'net1', mac: hex(MAC1), ...extra },
    ],
    services: { net0: { kind: 'packet', switch: 'sw0' }, net1: { kind: 'packet', switch: 'sw0' } },
  });
}

/** Opens both interfaces with the frontend driver model. */
export async function twoNics(s: Sim, opts: NetDriverOptions = {}): Promise<[NetDriver, NetDriver]> {
  const fe = await s.frontend();
  return [await NetDriver.open(fe.devices[NET0]!, { queueSize: 64, ...opts }), await NetDriver.open(fe.devices[NET1]!, { queueSize: 64, ...opts })];
}

/** An Ethernet frame dst, src, ethertype, payload (padded to `len` if given). */
export function ether(dst: Uint8Array, src: Uint8Array, type: number, payload: Uint8Array, len = 14 + payload.length): Uint8Array {
  const f = new Uint8Array(Math.max(len, 14 + payload.length));
  f.set(dst, 0);
  f.set(src, 6);
  f[12] = type >> 8;
  f[13] = type & 0xff;
  f.set(payload, 14);
  return f;
}

/** RFC 1071 reference: one's-complement of the one's-complement sum of 16-bit big-endian words. */
export function internetChecksum(...parts: Uint8Array[]): number {
  let sum = 0;
  for (const p of parts) {
    const b = p.length % 2 ? Uint8Array.of(...p, 0) : p;
    for (let i = 0; i < b.length; i += 2) sum += (b[i]! << 8) | b[i + 1]!;
  }
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return ~sum & 0xffff;
}

/** Addresses of a UDP frame (defaults: 10.0.0.1:1234 → 10.0.0.2:5678). */
export interface UdpAddresses {
  srcIp?: ArrayLike<number>;
  dstIp?: ArrayLike<number>;
  srcPort?: number;
  dstPort?: number;
}

/**
 * An IPv4/UDP frame with the UDP checksum field holding only the pseudo-header sum, as a driver
 * using checksum offload sends it. Returns the frame, csum_start/offset and the checksum a full
 * computation gives.
 */
export function udpFrame(dst: Uint8Array, src: Uint8Array, payload: Uint8Array, a: UdpAddresses = {}) {
  const udpLen = 8 + payload.length;
  const ip = new Uint8Array(20);
  const iv = new DataView(ip.buffer);
  ip[0] = 0x45;
  iv.setUint16(2, 20 + udpLen);
  ip[8] = 64;
  ip[9] = 17;
  ip.set(a.srcIp ?? [10, 0, 0, 1], 12);
  ip.set(a.dstIp ?? [10, 0, 0, 2], 16);
  iv.setUint16(10, internetChecksum(ip));
  const udp = new Uint8Array(udpLen);
  const uv = new DataView(udp.buffer);
  uv.setUint16(0, a.srcPort ?? 1234);
  uv.setUint16(2, a.dstPort ?? 5678);
  uv.setUint16(4, udpLen);
  udp.set(payload, 8);
  const pseudo = new Uint8Array(12);
  pseudo.set(ip.subarray(12, 20), 0);
  pseudo[9] = 17;
  new DataView(pseudo.buffer).setUint16(10, udpLen);
  let full = internetChecksum(pseudo, udp);
  if (full === 0) full = 0xffff;
  // partial: the folded pseudo-header sum (not inverted), what Linux puts there for CHECKSUM_PARTIAL
  const seed = ~internetChecksum(pseudo) & 0xffff;
  uv.setUint16(6, seed);
  const frame = ether(dst, src, 0x0800, Uint8Array.of(...ip, ...udp));
  return { frame, csumStart: 14 + 20, csumOffset: 6, full };
}

/** Waits until `nic` received `n` frames (the simulator is synchronous: a few polls suffice). */
export async function receiveN(nic: NetDriver, n: number): Promise<Awaited<ReturnType<NetDriver['receive']>>> {
  const out = [];
  for (let i = 0; i < 50 && out.length < n; i++) out.push(...(await nic.receive()));
  return out;
}

/** Counters of device `dev`. */
export function counters(s: Sim, dev: number): Record<string, number> {
  return s.stats().devices[dev]!.counters;
}
