/**
 * Shared set-up for the i2c bad-input suites (simulator): the low-speed board of test/shared/lowspeed.ts
 * (rng 0, i2c 1, gpio 2; a 24C02 at 0x50, a sensor at 0x48), raw request chains on a RawRing.
 */
import { VIRTIO_F_ACCESS_PLATFORM, VIRTIO_F_VERSION_1, VIRTIO_I2C_F_ZERO_LENGTH_REQUEST, VIRTIO_I2C_FLAGS_M_RD } from '../../firmware/virtio';
import type { Sim } from '../../frontend/sim';
import { createSim } from '../../frontend/sim';
import type { RawRing, Seg } from '../helpers';
import { liveRaw, submitChain } from '../helpers';
import { I2C_DEV, lowSpeed } from '../shared/lowspeed';

export { EEPROM, I2C_DEV, SENSOR } from '../shared/lowspeed';
export const I2C_FEATURES = VIRTIO_F_VERSION_1 | VIRTIO_F_ACCESS_PLATFORM | VIRTIO_I2C_F_ZERO_LENGTH_REQUEST;

/** A simulator on the low-speed board with a fresh EEPROM file; `done()` cleans up. */
export async function i2cSim() {
  const ls = lowSpeed();
  const s = await createSim(ls.opts);
  return { s, eeprom: ls.file, done: () => (s.dispose(), ls.done()) };
}

/** The i2c device live with one raw request queue of `size`. */
export function liveI2c(s: Sim, size = 16): RawRing {
  return liveRaw(s, I2C_DEV, I2C_FEATURES, [0], size)[0]!;
}

/** struct virtio_i2c_out_hdr for a 7-bit address (or `rawAddr` as given) and flags. */
export function outHdr(addr: number, flags = 0, rawAddr?: number): Uint8Array {
  const b = new Uint8Array(8);
  const v = new DataView(b.buffer);
  v.setUint16(0, rawAddr ?? addr << 1, true);
  v.setUint32(4, flags >>> 0, true);
  return b;
}

/** The segments of a read request: header, `len` writable bytes (filled 0xAA), the status byte. */
export function readReq(addr: number, len: number, flags = 0): Seg[] {
  return [{ bytes: outHdr(addr, VIRTIO_I2C_FLAGS_M_RD | flags) }, ...(len ? [{ len, fill: 0xaa }] : []), { len: 1 }];
}

/** The segments of a write request. */
export function writeReq(addr: number, data: Uint8Array, flags = 0): Seg[] {
  return [{ bytes: outHdr(addr, flags) }, ...(data.length ? [{ bytes: data }] : []), { len: 1 }];
}

/** Offers one request on the i2c queue and runs the backend (test/helpers.ts submitChain). */
export function submitI2c(ring: RawRing, segs: Seg[]) {
  return submitChain(ring, I2C_DEV, 0, segs);
}
