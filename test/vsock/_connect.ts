/** A raw driver with one connection to host port 5000 (from guest port `port`), RESPONSE taken. */
import * as assert from 'uvu/assert';
import type { Sim } from '../../frontend/sim';
import type { MemoryVsockConn } from '../../runtime/node/vsock';
import { VIRTIO_VSOCK_OP_REQUEST, VIRTIO_VSOCK_OP_RESPONSE } from '../../firmware/virtio';
import { RawVsock } from './_vsock';

export function rawConnection(s: Sim, opts: { port?: number; bufAlloc?: number; rxBuffers?: number } = {}): { d: RawVsock; conn: MemoryVsockConn } {
  const l = s.vsock().listen(5000);
  const d = new RawVsock(s);
  d.postRx(opts.rxBuffers ?? 8);
  d.send({ op: VIRTIO_VSOCK_OP_REQUEST, srcPort: opts.port ?? 1000, bufAlloc: opts.bufAlloc ?? 256 * 1024 });
  const rx = d.received();
  assert.is(rx.length, 1, 'one answer to the REQUEST');
  assert.is(rx[0]!.op, VIRTIO_VSOCK_OP_RESPONSE, 'RESPONSE');
  return { d, conn: l.connections[0]! };
}
