// Unit: the node runtime's virtual switch — learning/flooding, checksum completion edge cases, symmetric flow hash.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { completeChecksum, flowHash, PACKET_F_NEEDS_CSUM, VirtualSwitch } from '../../runtime/node/switch';
import { ether, HOST_MAC, internetChecksum, MAC0, MAC1, udpFrame } from './_net';

test('unknown unicast floods, learned unicast goes to one port, a port never gets its own frame', () => {
  const sw = new VirtualSwitch('t');
  const [p0, p1, p2] = ['a', 'b', 'c'].map((n) => sw.attach(n));
  p1!.send(ether(MAC0, MAC1, 0x88b5, new Uint8Array(46)), 0, 0, 0); // teaches MAC1 → b, floods
  assert.equal([p0!.queued, p1!.queued, p2!.queued], [1, 0, 1], 'unknown destination flooded to the others');
  p0!.send(ether(MAC1, MAC0, 0x88b5, new Uint8Array(46)), 0, 0, 0);
  assert.equal([p0!.queued, p1!.queued, p2!.queued], [1, 1, 1], 'learned destination delivered to b only');
});

test('completion stores 0xffff when the sum is 0 and refuses offsets past the frame', () => {
  const b = new Uint8Array(4); // sum of words 0xffff + field(0) → ~0xffff = 0 → sent as 0xffff
  b[0] = 0xff;
  b[1] = 0xff;
  assert.ok(completeChecksum(b, 0, 2));
  assert.equal([b[2], b[3]], [0xff, 0xff], 'CSUM_MANGLED_0');
  assert.is(completeChecksum(new Uint8Array(10), 8, 1), false, 'field past the end refused');
});

test('a NEEDS_CSUM frame is completed for a plain port and left partial for one that accepts it', () => {
  const sw = new VirtualSwitch('t');
  const tx = sw.attach('tx');
  const plain = sw.attach('plain');
  const offl = sw.attach('offl');
  offl.acceptsPartialCsum = true;
  const u = udpFrame(MAC1, MAC0, new Uint8Array(33).fill(0x5a));
  tx.send(u.frame, PACKET_F_NEEDS_CSUM, u.csumStart, u.csumOffset);
  const a = plain.peek()!;
  assert.is((a.data[40]! << 8) | a.data[41]!, u.full, 'completed checksum equals the reference');
  assert.equal(offl.peek()!.data, u.frame, 'the accepting port sees the partial frame, unchanged by the other completion');
  assert.is(internetChecksum(Uint8Array.of(10, 0, 0, 1, 10, 0, 0, 2, 0, 17, 0, 41), a.data.subarray(34)), 0, 'segment verifies');
});

test('flow hash is the same in both directions and differs between flows', () => {
  const f = udpFrame(MAC1, MAC0, new Uint8Array(8)).frame;
  const r = f.slice();
  r.set(f.subarray(30, 34), 26);
  r.set(f.subarray(26, 30), 30);
  r.set([f[36]!, f[37]!, f[34]!, f[35]!], 34);
  assert.ok(flowHash(f) > 0, 'IPv4/UDP hashes');
  assert.is(flowHash(r), flowHash(f), 'reverse direction, same hash');
  const g = f.slice();
  g[35] = 99;
  assert.is.not(flowHash(g), flowHash(f), 'another source port, another hash');
  assert.is(flowHash(ether(MAC0, HOST_MAC, 0x88b5, new Uint8Array(46))), 0, 'non-IP frames hash to 0');
});

test('peek(k) sees the frame k places behind the next; promote(k) moves it to the front, the others keep their order', () => {
  const sw = new VirtualSwitch('t');
  const tx = sw.attach('tx');
  const rx = sw.attach('rx');
  const frame = (tag: number) => ether(MAC1, MAC0, 0x88b5, Uint8Array.of(tag, ...new Uint8Array(45)));
  for (const tag of [1, 2, 3, 4]) tx.send(frame(tag), 0, 0, 0);
  const order = () => Array.from({ length: rx.queued }, (_, k) => rx.peek(k)!.data[14]);
  assert.equal(order(), [1, 2, 3, 4]);
  assert.is(rx.peek(4), null, 'no fifth frame');
  assert.is(rx.peek(-1), null, 'no negative index');
  assert.is(rx.peek(1.5), null, 'no fractional index');
  assert.ok(rx.promote(2));
  assert.equal(order(), [3, 1, 2, 4], 'the promoted frame first, the ones it passed in order behind it');
  assert.is(rx.promote(4), false, 'nothing to promote past the end');
  assert.ok(rx.promote(0), 'promote(0) is a no-op on the next frame');
  assert.equal(order(), [3, 1, 2, 4]);
  // A frame abandoned half-read is dropped first, as by peek: index 0 is then the frame after it.
  assert.is(rx.recv(new Uint8Array(4), true), 4);
  assert.ok(rx.promote(1));
  assert.equal(order(), [2, 1, 4]);
});

test.run();
