/**
 * The frontend's reading of the window header. The frontend trusts its backend's header (it is the
 * backend that must distrust the frontend), but still checks it is a Bulkhead window it understands.
 */
import { FIFO_HEAD, FIFO_SLOTS, FIFO_TAIL, H, TRANSPORT_KINDS, WINDOW_MAGIC, WINDOW_VERSION } from '../firmware/window/layout';
import type { FifoLayout, TransportKind, WindowLayout } from '../firmware/window/layout';

export { FIFO_HEAD, FIFO_SLOTS, FIFO_TAIL, H };
export type { FifoLayout, TransportKind, WindowLayout };

/** Reads and checks the header the backend wrote; throws with a clear reason if it is not usable. */
export function readLayout(bytes: Uint8Array): WindowLayout {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = v.getUint32(H.magic, true);
  if (magic !== WINDOW_MAGIC) throw new Error(`window magic 0x${magic.toString(16)} is not Bulkhead's 0x${WINDOW_MAGIC.toString(16)}`);
  const version = v.getUint16(H.version, true);
  if (version !== WINDOW_VERSION) throw new Error(`window layout version ${version}, this frontend speaks ${WINDOW_VERSION}`);
  const id = v.getUint32(H.transport, true);
  const transport = TRANSPORT_KINDS[id];
  if (!transport) throw new Error(`window transport ${id} is not one this frontend speaks (${TRANSPORT_KINDS.map((k, i) => `${i} ${k}`).join(', ')})`);
  return {
    transport,
    areaOffset: v.getUint32(H.transportArea, true),
    areaSize: v.getUint32(H.transportAreaSize, true),
    windowSize: v.getUint32(H.windowSize, true),
    slotSize: v.getUint32(H.slotSize, true),
    fifoD2V: { offset: v.getUint32(H.fifoD2VOffset, true), slots: v.getUint32(H.fifoD2VSlots, true) },
    fifoV2D: { offset: v.getUint32(H.fifoV2DOffset, true), slots: v.getUint32(H.fifoV2DSlots, true) },
    poolOffset: v.getUint32(H.poolOffset, true),
    poolSize: v.getUint32(H.poolSize, true),
  };
}
