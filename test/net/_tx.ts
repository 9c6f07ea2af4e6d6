/** Transmit-side helpers: send a frame with a raw header from net0, see what reached the host port. */
import type { Sim } from '../../frontend/sim';
import { counters, NET0, netSim, twoNics } from './_net';

/** A virtio_net_hdr with the given fields (12 bytes). */
export function hdr(f: { flags?: number; gsoType?: number; hdrLen?: number; gsoSize?: number; csumStart?: number; csumOffset?: number } = {}): Uint8Array {
  const b = new Uint8Array(12);
  const v = new DataView(b.buffer);
  b[0] = f.flags ?? 0;
  b[1] = f.gsoType ?? 0;
  v.setUint16(2, f.hdrLen ?? 0, true);
  v.setUint16(4, f.gsoSize ?? 0, true);
  v.setUint16(6, f.csumStart ?? 0, true);
  v.setUint16(8, f.csumOffset ?? 0, true);
  return b;
}

/** net0 transmits each (header, frame); returns the frames the host port captured and net0's counters. */
export async function transmit(items: { hdr: Uint8Array; frame: Uint8Array }[]): Promise<{ s: Sim; captured: Uint8Array[]; c: Record<string, number> }> {
  const s = await netSim();
  const host = s.net();
  const [a] = await twoNics(s);
  for (const it of items) if (!a.queue(it.frame, undefined, it.hdr)) throw new Error('tx ring full');
  await a.flush();
  const captured = host.capture().map((f) => f.data);
  return { s, captured, c: counters(s, NET0) };
}
