/**
 * Backing services as device models see them. Data moves between the backing and the window by
 * window offset (ranges the virtqueue layer validated), never through a JS copy. main.ts binds these
 * to the runtime's HAL; tests may pass their own. Errors are negative errno values.
 */

/** Entropy source (virtio-rng). */
export interface EntropyService {
  /** Writes up to `len` random bytes at window offset `winOffset`; returns bytes written. */
  read(winOffset: number, len: number): number;
}

/** Byte stream (virtio-console port). */
export interface StreamService {
  /** Takes bytes from the window; returns bytes accepted (0 = would block) or −errno. */
  write(winOffset: number, len: number): number;
  /** Delivers pending input into the window; returns bytes (0 = none) or −errno. */
  read(winOffset: number, maxLen: number): number;
}

/** Block storage (virtio-blk). Offsets are bytes, exact up to 2^53. */
export interface StorageService {
  readonly sizeBytes: number;
  readonly readOnly: boolean;
  read(fileOffset: number, winOffset: number, len: number): number;
  write(fileOffset: number, winOffset: number, len: number): number;
  /** Returns once written data is durable. */
  flush(): number;
  discard(fileOffset: number, len: number): number;
  writeZeroes(fileOffset: number, len: number): number;
}

/** Packet port (virtio-net). */
export interface PacketService {
  send(winOffset: number, len: number): number;
  /** Receives one frame into the window; 0 = none queued. */
  recv(winOffset: number, maxLen: number): number;
}

export const EIO = 5;
export const EAGAIN = 11;
export const EROFS = 30;
export const EMSGSIZE = 90;
