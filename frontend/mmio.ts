/**
 * The driver side of transport `mmio` (docs/transport.md): a model of the two parties in front of a
 * trapped virtio-mmio device — the **hypervisor**, which turns each guest access to a device's register
 * page into a record in the window's ring, waits for a read's answer and injects the device's
 * interrupt while its line is asserted, and the **guest's stock virtio_mmio driver**, whose accesses it
 * issues in the order Linux issues them (drivers/virtio/virtio_mmio.c, read at torvalds/linux commit
 * 02213273f72a43bad3a8e9c18595a2c74ee487e8, the 6.1-era interface Debian's guest kernel has; the status
 * sequence is drivers/virtio/virtio.c's). Each method names the Linux function it follows.
 *
 * Accesses the model makes that Linux does not, each to learn an outcome Linux does not check, are
 * marked "model-only": QueueReady read back after QueueReady = 1, the config read back after a config
 * write, Status read after a configuration-change interrupt (to see DEVICE_NEEDS_RESET). Set `trace` to
 * an array to record every access (`readl 0x070`, `writel 0x070 0x1`).
 *
 * Writes are posted (the hypervisor completes the vCPU's store before the backend has seen it; the ring
 * keeps the order, so a later read sees every earlier write), reads are synchronous.
 */
import {
  MMIO,
  REC_IGNORED,
  REC_READ,
  REC_RESULT,
  REC_VALUE,
  REC_WRITE,
  RING_HEAD,
  RING_IRQ,
  RING_TAIL,
  VIRTIO_MMIO_INT_CONFIG,
  VIRTIO_MMIO_INT_VRING,
  VIRTIO_MMIO_MAGIC,
  VIRTIO_MMIO_VERSION,
  MMIO_MAX_DEVICES,
} from '../firmware/transport/mmio-layout';
import { H, RECORD_SIZE, RECORD_SLOTS_OFFSET } from '../firmware/window/layout';
import { REQUEST_TIMEOUT_MS } from './bus';
import type { WindowLayout } from './layout';
import { readLayout } from './layout';
import type { FrontendPort } from './port';
import type { DeviceInfo, DriverEvent, DriverTransport } from './transport';

export class MmioBus implements DriverTransport {
  readonly kind = 'mmio';
  readonly layout: WindowLayout;
  readonly counters = { kicks: 0, sent: 0, received: 0, events: 0, waits: 0, reads: 0, ignored: 0 };
  onEvent: (e: DriverEvent) => void = () => {};
  /** When set, every access is appended (`readl 0x070`, `writel 0x070 0x1`). */
  trace: string[] | null = null;
  private readonly ring: number;
  private readonly slots: number;
  private readonly devices: number;
  /** Records produced (the hypervisor's index; the window's copy is only written). */
  private head: number;
  private inInterrupt = false;

  constructor(readonly port: FrontendPort) {
    this.layout = readLayout(port.bytes);
    this.ring = this.layout.areaOffset;
    this.slots = (this.layout.areaSize - RECORD_SLOTS_OFFSET) / RECORD_SIZE;
    if (!(this.slots >= 2 && (this.slots & (this.slots - 1)) === 0)) throw new Error(`mmio: record ring of ${this.layout.areaSize} bytes is not a power-of-two number of records`);
    const v = this.view();
    this.devices = Math.min(v.getUint32(H.deviceCount, true), MMIO_MAX_DEVICES);
    this.head = v.getUint32(this.ring + RING_HEAD, true);
  }

  private view(): DataView {
    const b = this.port.bytes;
    return new DataView(b.buffer, b.byteOffset, b.byteLength);
  }

  kick(): void {
    this.counters.kicks++;
    this.port.kick();
  }

  // ---- the hypervisor: one record per trapped access ------------------------------------------

  private completed(idx: number): boolean {
    const tail = this.view().getUint32(this.ring + RING_TAIL, true);
    return ((tail - idx - 1) >>> 0) < 0x80000000;
  }

  /** Waits (doorbells, no interrupts: a vCPU inside an MMIO access takes none) until record `idx` is done. */
  private async waitDone(idx: number, what: () => string): Promise<void> {
    const end = Date.now() + REQUEST_TIMEOUT_MS;
    while (!this.completed(idx)) {
      const left = end - Date.now();
      if (left <= 0) throw new Error(`mmio: ${what()} not answered within ${REQUEST_TIMEOUT_MS} ms: the backend is not serving the record ring`);
      await this.port.wait(left);
    }
  }

  private async post(dev: number, off: number, width: number, op: number, value: number): Promise<number> {
    if ((this.head - this.view().getUint32(this.ring + RING_TAIL, true)) >>> 0 >= this.slots) {
      this.kick();
      await this.waitDone((this.head - this.slots) >>> 0, () => 'a full record ring');
    }
    const v = this.view();
    const at = this.ring + RECORD_SLOTS_OFFSET + (this.head & (this.slots - 1)) * RECORD_SIZE;
    v.setUint16(at, dev, true);
    v.setUint16(at + 2, off, true);
    v.setUint8(at + 4, width);
    v.setUint8(at + 5, op);
    v.setUint16(at + 6, 0, true);
    v.setUint32(at + REC_VALUE, value >>> 0, true);
    v.setUint32(at + REC_RESULT, 0, true);
    const idx = this.head;
    this.head = (this.head + 1) >>> 0;
    v.setUint32(this.ring + RING_HEAD, this.head, true);
    this.counters.sent++;
    return idx;
  }

  private async read(dev: number, off: number, width: 1 | 2 | 4): Promise<number> {
    const name = width === 4 ? 'readl' : width === 2 ? 'readw' : 'readb';
    this.trace?.push(`${name} 0x${off.toString(16).padStart(3, '0')}`);
    const idx = await this.post(dev, off, width, REC_READ, 0);
    this.kick();
    await this.waitDone(idx, () => `device ${dev}: ${name} 0x${off.toString(16)}`);
    this.counters.reads++;
    const v = this.view();
    const at = this.ring + RECORD_SLOTS_OFFSET + (idx & (this.slots - 1)) * RECORD_SIZE;
    if (v.getUint32(at + REC_RESULT, true) === REC_IGNORED) {
      this.counters.ignored++;
      return 0;
    }
    return v.getUint32(at + REC_VALUE, true);
  }

  private async write(dev: number, off: number, width: 1 | 2 | 4, value: number, defer = false): Promise<void> {
    const name = width === 4 ? 'writel' : width === 2 ? 'writew' : 'writeb';
    this.trace?.push(`${name} 0x${off.toString(16).padStart(3, '0')} 0x${(value >>> 0).toString(16)}`);
    await this.post(dev, off, width, REC_WRITE, value);
    if (!defer) this.kick();
  }

  private readl(dev: number, off: number): Promise<number> {
    return this.read(dev, off, 4);
  }
  private writel(dev: number, off: number, value: number): Promise<void> {
    return this.write(dev, off, 4, value);
  }

  /** The hypervisor injects each device whose line is asserted: vm_interrupt runs for it. */
  private async interrupts(): Promise<void> {
    if (this.inInterrupt) return;
    this.inInterrupt = true;
    try {
      const v = this.view();
      const lines = [v.getUint32(this.ring + RING_IRQ, true), v.getUint32(this.ring + RING_IRQ + 4, true)];
      for (let d = 0; d < this.devices; d++) if ((lines[d >> 5]! >>> (d & 31)) & 1) await this.vmInterrupt(d);
    } finally {
      this.inInterrupt = false;
    }
  }

  /** vm_interrupt: read InterruptStatus, acknowledge it, then the config change and the vrings. */
  private async vmInterrupt(dev: number): Promise<void> {
    const status = await this.readl(dev, MMIO.interruptStatus);
    await this.writel(dev, MMIO.interruptAck, status);
    if (status & VIRTIO_MMIO_INT_CONFIG) {
      const st = (await this.readl(dev, MMIO.status)) & 0xff; // model-only: to report DEVICE_NEEDS_RESET
      this.counters.events++;
      this.onEvent({ devNum: dev, kind: 'config', status: st });
    }
    if (status & VIRTIO_MMIO_INT_VRING) {
      this.counters.events++;
      this.onEvent({ devNum: dev, kind: 'used', queue: -1 });
    }
  }

  // ---- DriverTransport --------------------------------------------------------------------------

  /** Interrupts are taken in `until` (they need register reads); nothing arrives synchronously. */
  poll(): number {
    return 0;
  }

  async until(cond: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      await this.interrupts();
      if (cond()) return;
      const left = end - Date.now();
      if (left <= 0) throw new Error(what());
      this.counters.waits++;
      await this.port.wait(left);
    }
  }

  /** virtio_mmio_probe for every device page: MagicValue, Version, DeviceID (0: a placeholder), VendorID. */
  async discover(): Promise<{ devNum: number; info: DeviceInfo }[]> {
    const out: { devNum: number; info: DeviceInfo }[] = [];
    for (let d = 0; d < this.devices; d++) {
      if ((await this.readl(d, MMIO.magicValue)) !== VIRTIO_MMIO_MAGIC) continue;
      if ((await this.readl(d, MMIO.version)) !== VIRTIO_MMIO_VERSION) continue;
      const deviceId = await this.readl(d, MMIO.deviceId);
      if (deviceId === 0) continue;
      const vendorId = await this.readl(d, MMIO.vendorId);
      out.push({ devNum: d, info: { deviceId, vendorId, numFeatureBits: 64, configSize: 0, maxQueues: 0 } });
    }
    return out;
  }

  /** vm_get_status. */
  async getStatus(dev: number): Promise<number> {
    return (await this.readl(dev, MMIO.status)) & 0xff;
  }

  /** vm_set_status and vm_reset (status 0). */
  async setStatus(dev: number, status: number): Promise<null> {
    await this.writel(dev, MMIO.status, status);
    return null;
  }

  /** vm_get_features. */
  async deviceFeatures(dev: number): Promise<bigint> {
    await this.writel(dev, MMIO.deviceFeaturesSel, 1);
    const hi = await this.readl(dev, MMIO.deviceFeatures);
    await this.writel(dev, MMIO.deviceFeaturesSel, 0);
    const lo = await this.readl(dev, MMIO.deviceFeatures);
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  /** vm_finalize_features. */
  async setDriverFeatures(dev: number, f: bigint): Promise<void> {
    await this.writel(dev, MMIO.driverFeaturesSel, 1);
    await this.writel(dev, MMIO.driverFeatures, Number(f >> 32n));
    await this.writel(dev, MMIO.driverFeaturesSel, 0);
    await this.writel(dev, MMIO.driverFeatures, Number(f & 0xffffffffn));
  }

  /**
   * virtio_cread's loop over vm_generation and vm_get: ConfigGeneration, the bytes (words where
   * aligned, as vm_get reads 4- and 8-byte fields; Linux reads field by field), ConfigGeneration again.
   */
  async getConfig(dev: number, offset: number, len: number): Promise<{ generation: number; data: Uint8Array }> {
    for (let tries = 0; tries < 100; tries++) {
      const g1 = await this.readl(dev, MMIO.configGeneration);
      const data = new Uint8Array(len);
      for (let pos = 0; pos < len; ) {
        const at = offset + pos;
        const w = at % 4 === 0 && len - pos >= 4 ? 4 : at % 2 === 0 && len - pos >= 2 ? 2 : 1;
        const x = await this.read(dev, MMIO.config + at, w);
        for (let k = 0; k < w; k++) data[pos + k] = (x >>> (8 * k)) & 0xff;
        pos += w;
      }
      if ((await this.readl(dev, MMIO.configGeneration)) === g1) return { generation: g1, data };
    }
    throw new Error(`mmio device ${dev}: config generation never settled`);
  }

  /** vm_set (1, 2, 4 bytes; 8 as two writel); then model-only: the field read back to see whether it was taken. */
  async setConfig(dev: number, _generation: number, offset: number, data: Uint8Array): Promise<boolean> {
    const w = data.length;
    const le = (o: number, n: number) => {
      let x = 0;
      for (let k = n - 1; k >= 0; k--) x = (x << 8) | data[o + k]!;
      return x >>> 0;
    };
    if (w === 1 || w === 2 || w === 4) await this.write(dev, MMIO.config + offset, w, le(0, w));
    else if (w === 8) {
      await this.writel(dev, MMIO.config + offset, le(0, 4));
      await this.writel(dev, MMIO.config + offset + 4, le(4, 4));
    } else throw new Error(`mmio: a config write is one field of 1, 2, 4 or 8 bytes, not ${w}`);
    const back = (await this.getConfig(dev, offset, w)).data;
    return back.every((x, i) => x === data[i]);
  }

  /** vm_setup_vq (version 2); model-only: QueueReady read back, to see whether the device took the queue. */
  async setupQueue(dev: number, index: number, size: number, desc: number, avail: number, used: number): Promise<boolean> {
    await this.writel(dev, MMIO.queueSel, index);
    if ((await this.readl(dev, MMIO.queueReady)) !== 0) return false;
    const num = await this.readl(dev, MMIO.queueNumMax);
    if (num === 0 || size > num) return false;
    await this.writel(dev, MMIO.queueNum, size);
    await this.writel(dev, MMIO.queueDescLow, desc);
    await this.writel(dev, MMIO.queueDescHigh, 0);
    await this.writel(dev, MMIO.queueDriverLow, avail);
    await this.writel(dev, MMIO.queueDriverHigh, 0);
    await this.writel(dev, MMIO.queueDeviceLow, used);
    await this.writel(dev, MMIO.queueDeviceHigh, 0);
    await this.writel(dev, MMIO.queueReady, 1);
    return (await this.readl(dev, MMIO.queueReady)) === 1;
  }

  /** vm_del_vq: select, QueueReady = 0, read it back (Linux WARN_ONs a non-zero value). */
  async deleteQueue(dev: number, index: number): Promise<void> {
    await this.writel(dev, MMIO.queueSel, index);
    await this.writel(dev, MMIO.queueReady, 0);
    await this.readl(dev, MMIO.queueReady);
  }

  /** The offered feature bits of block `block` (DeviceFeaturesSel, then DeviceFeatures). */
  async deviceFeatureWord(dev: number, block: number): Promise<number> {
    await this.writel(dev, MMIO.deviceFeaturesSel, block);
    return this.readl(dev, MMIO.deviceFeatures);
  }

  /** QueueSel, then QueueReady. */
  async queueEnabled(dev: number, index: number): Promise<boolean> {
    await this.writel(dev, MMIO.queueSel, index);
    return (await this.readl(dev, MMIO.queueReady)) !== 0;
  }

  /**
   * Raw access for hostile tests: one record exactly as given (any device, offset, width, direction),
   * rung and waited for; returns the backend's answer and its result (REC_DONE or REC_IGNORED).
   */
  async access(dev: number, off: number, width: number, op: number, value = 0): Promise<{ value: number; result: number }> {
    const idx = await this.post(dev, off, width, op, value);
    this.kick();
    await this.waitDone(idx, () => `device ${dev}: record at 0x${off.toString(16)}`);
    const v = this.view();
    const at = this.ring + RECORD_SLOTS_OFFSET + (idx & (this.slots - 1)) * RECORD_SIZE;
    return { value: v.getUint32(at + REC_VALUE, true), result: v.getUint32(at + REC_RESULT, true) };
  }

  /** The ring's window offset and slot count, for hostile tests that write it directly. */
  get recordRing(): { offset: number; slots: number } {
    return { offset: this.ring, slots: this.slots };
  }

  /** Continues from the ring's head as the window has it (after a test wrote the ring directly). */
  resyncHead(): void {
    this.head = this.view().getUint32(this.ring + RING_HEAD, true);
  }

  /** One read the device state does not notice (MagicValue of device 0). */
  async roundTrip(): Promise<void> {
    await this.readl(0, MMIO.magicValue);
  }

  /** vm_notify: the queue index into QueueNotify. */
  notify(dev: number, index: number, defer = false): Promise<void> {
    return this.write(dev, MMIO.queueNotify, 4, index, defer);
  }
}
