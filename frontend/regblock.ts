/**
 * The driver side of transport `regblock` (docs/transport.md): the register block of each device in
 * the window, written with Jailhouse's write-transaction handshake (firmware/transport/regblock-layout.ts
 * has the layout and the pinned revision). This is the TypeScript model of what
 * frontend/linux/bulkhead_regblock.c does in the guest: registers are read straight from the block;
 * a write waits until `write_transaction` is 0, stores the register, names it in `write_transaction`
 * and rings; a read that depends on a write waits for the transaction to clear first.
 */
import { H } from '../firmware/window/layout';
import {
  DIR_BLOCK_OFFSET,
  DIR_BLOCK_SIZE,
  DIR_COUNT,
  DIR_DEVICE_ID,
  DIR_ENTRIES,
  DIR_ENTRY_SIZE,
  DIR_NUM_QUEUES,
  DIR_VENDOR_ID,
  RB,
  TRANSACTION_WIDTH_SHIFT,
} from '../firmware/transport/regblock-layout';
import { REQUEST_TIMEOUT_MS } from './bus';
import type { WindowLayout } from './layout';
import { readLayout } from './layout';
import type { FrontendPort } from './port';
import type { DeviceInfo, DriverEvent, DriverTransport } from './transport';
import { pollUntil } from './transport';

/** Directory entries a frontend accepts (the directory is the backend's; still bounded). */
const MAX_DEVICES = 64;

export class RegBlockBus implements DriverTransport {
  readonly kind = 'regblock';
  readonly layout: WindowLayout;
  readonly counters = { kicks: 0, sent: 0, received: 0, events: 0, waits: 0 };
  onEvent: (e: DriverEvent) => void = () => {};
  /** Window offset of each device's block, by device number. */
  private readonly blocks: number[] = [];
  private readonly infos: DeviceInfo[] = [];

  constructor(readonly port: FrontendPort) {
    this.layout = readLayout(port.bytes);
    const v = this.view();
    const dir = this.layout.areaOffset;
    const n = Math.min(v.getUint32(dir + DIR_COUNT, true), MAX_DEVICES, v.getUint32(H.deviceCount, true));
    for (let d = 0; d < n; d++) {
      const e = dir + DIR_ENTRIES + d * DIR_ENTRY_SIZE;
      const size = v.getUint32(e + DIR_BLOCK_SIZE, true);
      this.blocks.push(v.getUint32(e + DIR_BLOCK_OFFSET, true));
      this.infos.push({ deviceId: v.getUint32(e + DIR_DEVICE_ID, true), vendorId: v.getUint32(e + DIR_VENDOR_ID, true), numFeatureBits: 64, configSize: Math.max(0, size - RB.config), maxQueues: v.getUint32(e + DIR_NUM_QUEUES, true) });
    }
  }

  private view(): DataView {
    const b = this.port.bytes;
    return new DataView(b.buffer, b.byteOffset, b.byteLength);
  }

  private block(dev: number): number {
    const b = this.blocks[dev];
    if (b === undefined) throw new Error(`regblock: no device ${dev}`);
    return b;
  }

  async discover(): Promise<{ devNum: number; info: DeviceInfo }[]> {
    return this.infos.map((info, devNum) => ({ devNum, info })).filter((d) => d.info.deviceId !== 0);
  }

  kick(): void {
    this.counters.kicks++;
    this.port.kick();
  }

  /** The event bytes of every block: cleared, then handed on (config first, as Jailhouse's handler does). */
  poll(): number {
    const v = this.view();
    let n = 0;
    for (let d = 0; d < this.blocks.length; d++) {
      const b = this.blocks[d]!;
      if (v.getUint8(b + RB.configEvent)) {
        v.setUint8(b + RB.configEvent, 0);
        n++;
        this.counters.events++;
        this.onEvent({ devNum: d, kind: 'config', status: v.getUint32(b + RB.deviceStatus, true), generation: v.getUint32(b + RB.configGeneration, true) });
      }
      if (v.getUint8(b + RB.queueEvent)) {
        v.setUint8(b + RB.queueEvent, 0);
        n++;
        this.counters.events++;
        this.onEvent({ devNum: d, kind: 'used', queue: -1 });
      }
    }
    this.counters.received += n;
    return n;
  }

  until(cond: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
    return pollUntil(this, cond, timeoutMs, what);
  }

  /** vi_synchronize_reg_write: waits until the backend has taken the last write. */
  private sync(dev: number): Promise<void> {
    const at = this.block(dev) + RB.writeTransaction;
    return this.until(() => this.view().getUint32(at, true) === 0, REQUEST_TIMEOUT_MS, () => `regblock device ${dev}: write_transaction still 0x${this.view().getUint32(at, true).toString(16)} after ${REQUEST_TIMEOUT_MS} ms: the backend is not answering`);
  }

  /** vi_reg_write: one register (width 2, 4 or 8; `configWidth` for a config-space write), named in write_transaction, rung. */
  private async write(dev: number, off: number, width: 1 | 2 | 4 | 8, value: number | bigint, configWidth = 0): Promise<void> {
    await this.sync(dev);
    const v = this.view();
    const at = this.block(dev) + off;
    if (width === 1) v.setUint8(at, Number(value));
    else if (width === 2) v.setUint16(at, Number(value), true);
    else if (width === 4) v.setUint32(at, Number(value) >>> 0, true);
    else v.setBigUint64(at, BigInt(value), true);
    v.setUint32(this.block(dev) + RB.writeTransaction, (off | (configWidth << TRANSACTION_WIDTH_SHIFT)) >>> 0, true);
    this.counters.sent++;
    this.kick();
  }

  private async read32(dev: number, off: number): Promise<number> {
    await this.sync(dev);
    return this.view().getUint32(this.block(dev) + off, true);
  }

  private async read16(dev: number, off: number): Promise<number> {
    await this.sync(dev);
    return this.view().getUint16(this.block(dev) + off, true);
  }

  getStatus(dev: number): Promise<number> {
    return this.read32(dev, RB.deviceStatus).then((s) => s & 0xff);
  }

  async setStatus(dev: number, status: number): Promise<null> {
    await this.write(dev, RB.deviceStatus, 4, status);
    return null;
  }

  /** vi_get_features: select the high word, read it, select the low word, read it. */
  async deviceFeatures(dev: number): Promise<bigint> {
    await this.write(dev, RB.deviceFeaturesSel, 4, 1);
    const hi = await this.read32(dev, RB.deviceFeatures);
    await this.write(dev, RB.deviceFeaturesSel, 4, 0);
    const lo = await this.read32(dev, RB.deviceFeatures);
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  /** vi_finalize_features: high word first, then low. */
  async setDriverFeatures(dev: number, f: bigint): Promise<void> {
    await this.write(dev, RB.driverFeaturesSel, 4, 1);
    await this.write(dev, RB.driverFeatures, 4, Number(f >> 32n));
    await this.write(dev, RB.driverFeaturesSel, 4, 0);
    await this.write(dev, RB.driverFeatures, 4, Number(f & 0xffffffffn));
    await this.sync(dev);
  }

  /** The config space read between two equal, even generations (vi_generation waits while it is odd). */
  async getConfig(dev: number, offset: number, len: number): Promise<{ generation: number; data: Uint8Array }> {
    await this.sync(dev);
    const b = this.block(dev);
    const size = this.infos[dev]!.configSize;
    if (offset + len > size) return { generation: this.view().getUint32(b + RB.configGeneration, true), data: new Uint8Array(0) };
    for (let tries = 0; tries < 100; tries++) {
      const g1 = this.view().getUint32(b + RB.configGeneration, true);
      if (g1 & 1) {
        await this.port.wait(1);
        continue;
      }
      const bytes = this.port.bytes;
      const data = bytes.slice(b + RB.config + offset, b + RB.config + offset + len);
      if (this.view().getUint32(b + RB.configGeneration, true) === g1) return { generation: g1, data };
    }
    throw new Error(`regblock device ${dev}: config generation never settled`);
  }

  /** vi_set: the field written in the block's config space, its width in write_transaction (regblock-layout.ts). */
  async setConfig(dev: number, _generation: number, offset: number, data: Uint8Array): Promise<boolean> {
    const w = data.length;
    if (w !== 1 && w !== 2 && w !== 4 && w !== 8) throw new Error(`regblock: a config write is one field of 1, 2, 4 or 8 bytes, not ${w}`);
    let value = 0n;
    for (let k = w - 1; k >= 0; k--) value = (value << 8n) | BigInt(data[k]!);
    await this.write(dev, RB.config + offset, w, value, w);
    await this.sync(dev);
    const b = this.block(dev) + RB.config + offset;
    const now = this.port.bytes.subarray(b, b + w);
    return now.every((x, i) => x === data[i]);
  }

  /** vi_setup_vq: select, check it is free, read the maximum, write size, vector, areas, enable; read enable back. */
  async setupQueue(dev: number, index: number, size: number, desc: number, avail: number, used: number): Promise<boolean> {
    await this.write(dev, RB.queueSel, 4, index);
    if ((await this.read16(dev, RB.queueEnable)) !== 0) return false;
    const max = await this.read16(dev, RB.queueSize);
    if (max === 0 || size > max) return false;
    await this.write(dev, RB.queueSize, 2, size);
    await this.write(dev, RB.queueDriverVector, 2, 0);
    await this.write(dev, RB.queueDesc, 8, BigInt(desc));
    await this.write(dev, RB.queueDriver, 8, BigInt(avail));
    await this.write(dev, RB.queueDevice, 8, BigInt(used));
    await this.write(dev, RB.queueEnable, 2, 1);
    return (await this.read16(dev, RB.queueEnable)) === 1;
  }

  /** vi_del_vq: select and deactivate. */
  async deleteQueue(dev: number, index: number): Promise<void> {
    await this.write(dev, RB.queueSel, 4, index);
    await this.write(dev, RB.queueEnable, 2, 0);
    await this.sync(dev);
  }

  /** The offered feature bits of block `block` (device_features_sel, then device_features). */
  async deviceFeatureWord(dev: number, block: number): Promise<number> {
    await this.write(dev, RB.deviceFeaturesSel, 4, block);
    return this.read32(dev, RB.deviceFeatures);
  }

  /** queue_sel, then queue_enable. */
  async queueEnabled(dev: number, index: number): Promise<boolean> {
    await this.write(dev, RB.queueSel, 4, index);
    return (await this.read16(dev, RB.queueEnable)) !== 0;
  }

  /**
   * Raw access for hostile tests: stores `value` (`width` bytes) at `off` of the block unless `width`
   * is 0, writes `word` into write_transaction as it is, rings, and waits for the backend to clear it.
   */
  async transact(dev: number, word: number, off = 0, width: 0 | 1 | 2 | 4 | 8 = 0, value: number | bigint = 0): Promise<void> {
    await this.sync(dev);
    const v = this.view();
    const at = this.block(dev) + off;
    if (width === 1) v.setUint8(at, Number(value));
    else if (width === 2) v.setUint16(at, Number(value), true);
    else if (width === 4) v.setUint32(at, Number(value) >>> 0, true);
    else if (width === 8) v.setBigUint64(at, BigInt(value), true);
    v.setUint32(this.block(dev) + RB.writeTransaction, word >>> 0, true);
    this.counters.sent++;
    this.kick();
    await this.sync(dev);
  }

  /** The block of device `dev` (window offset), for hostile tests that write it directly. */
  blockOffset(dev: number): number {
    return this.block(dev);
  }

  /** One transaction the device state does not notice (queue_driver_vector: every queue interrupts on the one line). */
  async roundTrip(): Promise<void> {
    await this.write(0, RB.queueDriverVector, 2, 0);
    await this.sync(0);
  }

  /** vi_notify: the doorbell alone (every queue's device vector is the backend's one line). */
  async notify(_dev: number, _index: number, defer = false): Promise<void> {
    if (!defer) this.kick();
  }
}
