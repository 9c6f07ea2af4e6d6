import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GuestProtocolError } from '../../firmware/errors';
import { computeLayout, H, nextGeneration, WINDOW_MAGIC } from '../../firmware/window/layout';
import { GuestWindow } from '../../firmware/window/window';

const win = () => new GuestWindow(new ArrayBuffer(1 << 20), 0xb000);

test('guestRange accepts a range inside the pool and returns its offset', () => {
  assert.is(win().guestRange(0xb000, 0, 16, 'buf'), 0xb000);
  assert.is(win().guestRange((1 << 20) - 16, 0, 16, 'buf'), (1 << 20) - 16);
});

test('guestRange rejects ranges below the pool, past the end, or with a high address half', () => {
  for (const [lo, hi, len] of [
    [0, 0, 16],
    [0xaff0, 0, 32],
    [(1 << 20) - 15, 0, 16],
    [0xb000, 1, 16],
    [0xffffffff, 0, 2],
    [0xb000, 0, 0xffffffff],
  ] as const) {
    assert.throws(() => win().guestRange(lo, hi, len, 'buf'), (e: unknown) => e instanceof GuestProtocolError && e.code === 'ADDR_OUTSIDE_WINDOW', `${lo}/${hi}/${len}`);
  }
});

test('copyOut is a private copy: later window writes do not change it', () => {
  const buf = new ArrayBuffer(1 << 20);
  const w = new GuestWindow(buf, 0xb000);
  new Uint8Array(buf)[0xb000] = 7;
  const c = w.copyOut(0xb000, 4);
  new Uint8Array(buf)[0xb000] = 9;
  assert.is(c[0], 7);
});

test('internal accessors refuse out-of-window offsets with a plain Error (a host bug)', () => {
  assert.throws(() => win().u32((1 << 20) - 2), /outside window/);
  assert.throws(() => win().setU16(-1, 0), /outside window/);
});

test('computeLayout places FIFOs after the header page and the pool after the FIFOs', () => {
  const l = computeLayout(4 << 20, 64);
  assert.is(l.fifoD2V.offset, 4096);
  assert.is(l.fifoV2D.offset, 4096 + 20480);
  assert.is(l.poolOffset, 0xb000);
  assert.is(l.poolSize, (4 << 20) - 0xb000);
  assert.throws(() => computeLayout(4 << 20, 48), /power of two/);
  assert.throws(() => computeLayout(64 * 1024, 64), /too small/);
});

test('computeLayout per transport: regblock puts a directory page and one page per device before the pool, mmio its record ring', () => {
  const r = computeLayout(4 << 20, 0, { transport: 'regblock', devices: 3 });
  assert.equal([r.transport, r.areaOffset, r.areaSize, r.poolOffset, r.slotSize, r.fifoD2V.slots], ['regblock', 4096, 4 * 4096, 5 * 4096, 0, 0]);
  const m = computeLayout(4 << 20, 0, { transport: 'mmio', recordSlots: 64 });
  assert.equal([m.transport, m.areaOffset, m.areaSize, m.poolOffset], ['mmio', 4096, 128 + 64 * 16, 8192]);
  assert.is(computeLayout(4 << 20, 64).transport, 'msg', 'msg is the default, laid out as before');
  assert.throws(() => computeLayout(4 << 20, 0, { transport: 'regblock', devices: 0 }), /1\.\.64 devices/);
  assert.throws(() => computeLayout(4 << 20, 0, { transport: 'mmio', recordSlots: 48 }), /power of two/);
  assert.throws(() => computeLayout(4 << 20, 64, { transport: 'pci' as never }), /one of msg, regblock, mmio/);
});

test('the boot generation counts on from the previous boot found in the window, and is never 0', () => {
  const buf = new ArrayBuffer(1 << 20);
  const v = new DataView(buf);
  const w = new GuestWindow(buf, 0xb000);
  assert.is(nextGeneration(w), 1, 'fresh window');
  v.setUint32(H.magic, WINDOW_MAGIC, true);
  v.setUint32(H.backendGeneration, 41, true);
  assert.is(nextGeneration(w), 42, 'restart over the same window');
  v.setUint32(H.backendGeneration, 0xffffffff, true);
  assert.is(nextGeneration(w), 1, 'wraps past 0');
});

test.run();
