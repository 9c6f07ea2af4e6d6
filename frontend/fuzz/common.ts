/**
 * What the fuzz targets share (engine.ts: transport, virtqueue and device targets over virtio-msg;
 * registers.ts: the register transports): the case format (also the corpus file format), the arena
 * in the pool, the context a run drives, and the guard that turns a host exception into a finding.
 */
import type { TransportKind } from '../layout';
import type { Sim } from '../sim';
import type { FuzzRound } from './packed';
import type { RawDriver } from './raw';

/** One fuzz input (also the corpus file format, JSON). */
export interface FuzzCase {
  target: string;
  /** Queue parameters: which queue, its size, the features the driver asks for (hex). */
  queue: { index: number; size: number; features: string };
  /** Ring bytes: descriptor table (16 × size) and available ring (flags, idx, ring[size], used_event). */
  desc: string;
  avail: string;
  /** Window bytes written into the arena (offsets relative to the arena start). */
  window: { off: number; data: string }[];
  /** Raw messages posted into the driver→device FIFO before the doorbells. */
  messages: string[];
  /** Doorbells rung (each runs the backend until idle). */
  kicks: number;
  /** Host input, hex: bytes for a stream device (console); for gpio, one host line change per byte (line = bits 0-6 mod the lines, value = bit 7). */
  input?: string;
  /** gpio: interrupts enabled (SET_IRQ_TYPE [line, type] on a requestq of the harness's own) before the case's queue runs. */
  irq?: [number, number][];
  /** Leave the device→driver FIFO undrained between doorbells. */
  noDrain?: boolean;
  /** `packed`: the device type whose queue is fuzzed (rng or console). */
  device?: string;
  /** `packed`: rounds after the set-up, each window writes and messages, then one doorbell (frontend/fuzz/packed.ts). */
  rounds?: FuzzRound[];
  /** vsock: well-formed rx buffers posted on queue 0 (an auxiliary ring after the arena) when the target queue is another. */
  rxBuffers?: number;
  /** Register targets (registers.ts): bring the rng live over the register wire first. */
  live?: boolean;
  /** Register targets: the operations, in order. */
  ops?: RegOp[];
}

/** One operation of a register-transport case (registers.ts). */
export interface RegOp {
  /** txn: a regblock write transaction; scribble: bytes into a block, no transaction; record: an mmio access; head: the mmio ring head moved by `value`; kick: a doorbell. */
  kind: 'txn' | 'scribble' | 'record' | 'head' | 'kick';
  dev?: number;
  word?: number;
  off?: number;
  width?: number;
  op?: number;
  /** hex */
  value?: string;
  /** hex */
  data?: string;
}

/** A broken invariant. */
export interface Finding {
  invariant: string;
  detail: string;
}

/** Arena layout inside the pool: rings at fixed offsets, buffers after them. */
export const ARENA = { size: 0x40000, desc: 0, avail: 0x1000, used: 0x2000, data: 0x4000, tables: 0x30000 };
/** Backend passes one doorbell may take before the fuzzer calls it unbounded. */
export const MAX_PASSES_PER_DOORBELL = 512;
/** The sim a fuzz run drives, with device numbers by type. */
export interface FuzzContext {
  sim: Sim;
  /** The virtio-msg raw driver (msg contexts; the register targets drive the window themselves). */
  drv: RawDriver;
  devices: string[];
  arena: number;
  transport: TransportKind;
}

/** Runs `fn`; an exception becomes a finding (`bounded-passes` when a doorbell never went idle). */
export function guarded(findings: Finding[]): (what: string, fn: () => void) => void {
  return (what, fn) => {
    try {
      fn();
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      findings.push({ invariant: /still busy/.test(msg) ? 'bounded-passes' : 'host-exception', detail: `${what}: ${msg}` });
    }
  };
}
