// Runs against the TS sources: the window is a GuestWindow whose avail idx changes between any two
// reads, as a concurrent driver on another CPU can make it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RngDevice } from '../../firmware/devices/rng';
import { VIRTQ_DESC_F_WRITE } from '../../firmware/virtio';
import { SplitQueue } from '../../firmware/virtqueue/split';
import { GuestWindow } from '../../firmware/window/window';

const POOL = 0x1000;
const SIZE = 8;
const DESC = POOL;
const AVAIL = POOL + 16 * SIZE;
const USED = POOL + 0x1000;
const DATA = POOL + 0x2000;
/** Reads after which the device is considered stuck in a guest-controlled loop. */
const READ_LIMIT = 100_000;

/** avail idx alternates between "one more entry" and "no new entry" on every read. */
class FlippingWindow extends GuestWindow {
  reads = 0;
  q: SplitQueue | null = null;
  override u16(off: number): number {
    if (off !== AVAIL + 2 || !this.q) return super.u16(off);
    if (++this.reads > READ_LIMIT) throw new Error(`avail idx read ${READ_LIMIT} times in one call: the device loops on a flipping index`);
    return (this.q.nextAvail + (this.reads & 1)) & 0xffff;
  }
}

test('a driver flipping avail idx between reads cannot make the device loop: the index is fetched once per decision', () => {
  const buf = new ArrayBuffer(1 << 16);
  const v = new DataView(buf);
  const win = new FlippingWindow(buf, POOL);
  v.setUint32(DESC, DATA, true);
  v.setUint32(DESC + 8, 16, true);
  v.setUint16(DESC + 12, VIRTQ_DESC_F_WRITE, true); // every ring entry names head 0
  const q = new SplitQueue(win, 0, SIZE, DESC, AVAIL, USED, true, false, () => {});
  win.q = q;
  const rng = new RngDevice({ entropy: { read: (_off, len) => len }, log: () => {} });
  rng.activate({ features: 0n, queue: () => q, configChanged: () => {}, kick: () => {} });
  const budget = 16;
  const more = rng.processQueue(0, budget);
  assert.ok(win.reads < 4 * budget + 8, `avail idx read ${win.reads} times for a budget of ${budget}`);
  assert.ok(more, 'budget used up: the device should report work left');
  assert.is(q.nextUsed, budget, 'every pop that hasAvailable() promised should have produced a chain');
});

test.run();
