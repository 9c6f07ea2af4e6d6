/** Partition images (scripts/image.mjs, docs/image-format.md). */
export const IMAGE_MAGIC: string;
export const IMAGE_FORMAT_VERSION: number;
export const IMAGE_HEADER_SIZE: number;
export const IMAGE_HASH_SIZE: number;
export const IMAGE_FLAG_BYTECODE: number;
export const RUNTIME_ABI: number;
/** Header field offsets. */
export const H: {
  magic: number; version: number; headerSize: number; abi: number; boardId: number; flags: number;
  manifestOffset: number; manifestLength: number; firmwareOffset: number; firmwareLength: number; totalLength: number;
};
export interface BuildImageOptions {
  /** Board name (boards/NAME.json), path, or board object. */
  board?: string | object;
  /** Device types to keep from the board (comma list or array). */
  devices?: string | string[];
  /** Firmware bundle (default dist/firmware.js). */
  bundle?: string;
  /** Store the bundle source instead of QuickJS bytecode. */
  source?: boolean;
  /** Native runtime used to compile (default build/bulkhead-fw). */
  fw?: string;
  output?: string;
}
export function buildImage(opts?: BuildImageOptions): Uint8Array;
export function sealImage(img: Uint8Array): Uint8Array;
export function engineOf(fw?: string): string;
export function compileBytecode(bundlePath: string, fw?: string): Uint8Array;
export function parseImage(img: Uint8Array): {
  header: { magic: string; version: number; headerSize: number; abi: number; boardId: number; flags: number; totalLength: number };
  manifest: any;
  firmware: Uint8Array;
  hashOk: boolean;
};
