import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTQ_DESC_F_WRITE } from '../../firmware/virtio';
import { LIVE, negotiate, RawRing, setStatus, sim } from '../helpers';

test('a console receive buffer with no writable bytes is returned empty and does not stall input', async () => {
  const s = await sim();
  negotiate(s, 1);
  const rx = new RawRing(s, 8);
  rx.install(1, 0);
  setStatus(s, 1, LIVE);
  rx.setDesc(0, rx.data, 16, 0); // device-readable only: a driver bug
  rx.setDesc(1, rx.data + 64, 32, VIRTQ_DESC_F_WRITE);
  rx.offer(0);
  rx.offer(1);
  rx.notify(1, 0);
  s.console().input('abc');
  assert.equal(rx.usedElem(0), { id: 0, len: 0 }, 'the unusable buffer came back empty');
  assert.equal(rx.usedElem(1), { id: 1, len: 3 }, 'input went into the next buffer');
  assert.equal([...s.bytes.subarray(rx.data + 64, rx.data + 67)], [97, 98, 99]);
  assert.not.ok(s.needsReset(1));
  s.dispose();
});

test.run();
