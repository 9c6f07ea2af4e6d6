/**
 * Firmware entry: takes the Board HAL, reads the board, builds the devices of the capability
 * manifest, writes the window header and defines the entry points the runtime drives
 * (`globalThis.bulkhead`, docs/hal.md). Everything below is runtime-agnostic.
 */
import { BlkDevice } from './devices/blk';
import { ConsoleDevice } from './devices/console';
import type { VirtioDevice } from './devices/device';
import { FaultyTestDevice } from './devices/faulty';
import { GpioDevice } from './devices/gpio';
import { I2cDevice } from './devices/i2c';
import { NetDevice, parseMac } from './devices/net';
import { RngDevice } from './devices/rng';
import { VsockDevice } from './devices/vsock';
import type { BoardConfig, DeviceManifestEntry, Hal, Logger } from './hal';
import { LOG_ERROR, LOG_INFO } from './hal';
import type { EntropyService, GpioService, I2cBusService, PacketService, StorageService, StreamService, VsockService } from './services';
import { MmioTransport } from './transport/mmio';
import { RegBlockTransport } from './transport/regblock';
import type { Transport, TransportHost, TransportLimits } from './transport/transport';
import { VirtioMsgTransport } from './transport/virtio-msg';
import type { WindowLayout } from './window/layout';
import { BACKEND_READY, BACKEND_STOPPED, computeLayout, nextGeneration, setBackendState, writeHeader } from './window/layout';
import { GuestWindow } from './window/window';

/** Entry points a runtime calls (docs/hal.md). */
export interface FirmwareEntryPoints {
  start(): void;
  onInterrupt(line: number): number;
  poll(): number;
  onTimer(): number;
  onService(h: number): number;
  onFault(kind: string, detail: string): number;
  stop(): void;
  stats(): string;
}

/** Opens a named service of the manifest, failing loudly on a board mistake (a host bug, not a guest fault). */
function open(hal: Hal, board: BoardConfig, entry: DeviceManifestEntry, kind: string, opener: (name: string) => number): number {
  const name = entry.service;
  if (!name || !board.services[name]) throw new Error(`board ${board.name}: device ${entry.type} names no service, or an unknown one (${String(name)})`);
  if (board.services[name]!.kind !== kind) throw new Error(`board ${board.name}: service ${name} is ${board.services[name]!.kind}, device ${entry.type} needs ${kind}`);
  const h = opener(name);
  if (h < 0) throw new Error(`board ${board.name}: service ${name} failed to open (errno ${-h})`);
  return h;
}

/** What a device may need to know about this boot. */
export interface BootInfo {
  /** The window already held a previous backend instance's header: this boot is a restart. */
  restarted: boolean;
}

/** Devices of the manifest that name storage service `name` (an asynchronous one completes to exactly one device). */
function storageUsers(board: BoardConfig, name: string): number {
  return board.devices.filter((d) => d.service === name).length;
}

const ENOSYS = 38;

/**
 * Builds one device of the manifest; each device reaches only the service it names. Services are HAL
 * functions bound to their handle (bind(), not arrow wrappers: a call goes straight to the runtime,
 * without an interpreted frame).
 */
export function buildDevice(hal: Hal, board: BoardConfig, entry: DeviceManifestEntry, log: Logger, boot: BootInfo = { restarted: false }): VirtioDevice {
  switch (entry.type) {
    case 'rng': {
      const h = open(hal, board, entry, 'entropy', (n) => hal.entropyOpen(n));
      const entropy: EntropyService = { read: hal.entropyRead.bind(hal, h) };
      return new RngDevice({ entropy, log });
    }
    case 'console': {
      const h = open(hal, board, entry, 'stream', (n) => hal.streamOpen(n));
      const bind = (sh: number): StreamService => ({
        write: hal.streamWrite.bind(hal, sh),
        read: hal.streamRead.bind(hal, sh),
      });
      const stream = bind(h);
      // Ports beyond 0: `ports: [{ service, name }]` in the manifest (VIRTIO_CONSOLE_F_MULTIPORT).
      const extra = (Array.isArray(entry['ports']) ? (entry['ports'] as { service?: string; name?: string }[]) : []).map((p) => ({
        name: p.name,
        stream: bind(open(hal, board, { type: 'console', service: p.service }, 'stream', (n) => hal.streamOpen(n))),
      }));
      return new ConsoleDevice({ stream, log, cols: entry['cols'] as number | undefined, rows: entry['rows'] as number | undefined, extraPorts: extra });
    }
    case 'blk': {
      const h = open(hal, board, entry, 'storage', (n) => hal.storageOpen(n));
      const [sizeBytes, ro, depth, blockSize] = hal.storageInfo(h) as [number, number, number?, number?];
      // Asynchronous when the runtime offers it for this service (ABI 3, board `io` not "sync").
      const async = (depth ?? 0) > 0 && hal.storageSubmit !== undefined && hal.storageComplete !== undefined && hal.storageCancel !== undefined;
      if (async && storageUsers(board, entry.service!) > 1) throw new Error(`board ${board.name}: asynchronous storage service ${entry.service} is named by more than one device`);
      const unavailable = () => -ENOSYS;
      const storage: StorageService = {
        sizeBytes,
        readOnly: ro === 1,
        queueDepth: async ? depth! : 0,
        blockSize: blockSize ?? 512,
        handle: h,
        read: hal.storageRead.bind(hal, h),
        write: hal.storageWrite.bind(hal, h),
        flush: hal.storageFlush.bind(hal, h),
        discard: hal.storageDiscard.bind(hal, h),
        writeZeroes: hal.storageWriteZeroes.bind(hal, h),
        submit: async ? hal.storageSubmit!.bind(hal, h) : unavailable,
        complete: async ? hal.storageComplete!.bind(hal, h) : unavailable,
        cancel: async ? hal.storageCancel!.bind(hal, h) : unavailable,
      };
      return new BlkDevice({ storage, log, queues: entry['queues'] as number | undefined, serial: entry['serial'] as string | undefined, physicalBlockSize: entry['physicalBlockSize'] as number | undefined });
    }
    case 'net': {
      const h = open(hal, board, entry, 'packet', (n) => hal.packetOpen(n));
      const port: PacketService = {
        send: hal.packetSend.bind(hal, h),
        peek: hal.packetPeek.bind(hal, h),
        promote: hal.packetPromote.bind(hal, h),
        recv: hal.packetRecv.bind(hal, h),
        setOffloads: hal.packetSetOffloads.bind(hal, h),
      };
      // Default MAC: locally administered 52:54:00:12:34:<device index>.
      const mac = typeof entry['mac'] === 'string' ? parseMac(entry['mac']) : Uint8Array.of(0x52, 0x54, 0, 0x12, 0x34, board.devices.indexOf(entry) & 0xff);
      if (!mac) throw new Error(`board ${board.name}: net mac ${String(entry['mac'])} is not aa:bb:cc:dd:ee:ff`);
      return new NetDevice({ port, log, mac, mtu: entry['mtu'] as number | undefined, queuePairs: entry['queuePairs'] as number | undefined });
    }
    case 'vsock': {
      const h = open(hal, board, entry, 'vsock', (n) => hal.vsockOpen(n));
      const service: VsockService = {
        connect: hal.vsockConnect.bind(hal, h),
        established: hal.vsockEstablished.bind(hal, h),
        send: hal.vsockSend.bind(hal, h),
        recv: hal.vsockRecv.bind(hal, h),
        shutdown: hal.vsockShutdown.bind(hal, h),
        close: hal.vsockClose.bind(hal, h),
        poll: hal.vsockPoll.bind(hal, h),
      };
      const guestCid = entry['guestCid'];
      if (typeof guestCid !== 'number') throw new Error(`board ${board.name}: vsock needs "guestCid" (the guest's context ID, 3..0xfffffffe)`);
      return new VsockDevice({ service, log, guestCid, transportResetOnStart: boot.restarted });
    }
    case 'i2c': {
      // The bus and its targets are the service's (board `services.<name>.targets`, docs/i2c.md).
      const h = open(hal, board, entry, 'i2c', (n) => hal.i2cOpen(n));
      const bus: I2cBusService = { transfer: hal.i2cTransfer.bind(hal, h) };
      return new I2cDevice({ bus, log });
    }
    case 'gpio': {
      // Lines and their names come from the service's board entry (`lines`, docs/gpio.md); both runtimes read the same.
      const h = open(hal, board, entry, 'gpio', (n) => hal.gpioOpen(n));
      const lines = board.services[entry.service!]!['lines'];
      if (!Array.isArray(lines) || !lines.every((l) => typeof l === 'string')) throw new Error(`board ${board.name}: gpio service ${entry.service} needs lines: an array of line names ('' for an unnamed line)`);
      const gpio: GpioService = {
        handle: h,
        setDirection: hal.gpioSetDirection.bind(hal, h),
        setValue: hal.gpioSetValue.bind(hal, h),
        sample: hal.gpioSample.bind(hal, h),
      };
      return new GpioDevice({ gpio, names: lines as string[], log });
    }
    case 'faulty-test': // test-only misbehaving model (firmware/devices/faulty.ts); no shipped board lists it
      return new FaultyTestDevice({ log });
    default:
      throw new Error(`board ${board.name}: unknown device type ${entry.type}`);
  }
}

/** The transport the board names (docs/transport.md), over the shared device state machine. */
export function createTransport(win: GuestWindow, layout: WindowLayout, devices: VirtioDevice[], host: TransportHost, limits: TransportLimits): Transport {
  switch (layout.transport) {
    case 'msg':
      return new VirtioMsgTransport(win, layout, devices, host, limits);
    case 'regblock':
      return new RegBlockTransport(win, layout, devices, host, limits);
    case 'mmio':
      return new MmioTransport(win, layout, devices, host, limits);
  }
}

/** Boots the firmware on a HAL and returns its entry points. */
export function boot(hal: Hal): FirmwareEntryPoints {
  const board = JSON.parse(hal.boardJson) as BoardConfig;
  const log: Logger = (level, msg) => hal.log(level, msg);
  const layout = computeLayout(board.window.size, board.window.fifoSlots ?? 0, { transport: board.transport, devices: board.devices.length, recordSlots: board.window.recordSlots });
  if (hal.window.byteLength !== layout.windowSize) {
    throw new Error(`board ${board.name} says the window is ${layout.windowSize} bytes, the runtime mapped ${hal.window.byteLength}`);
  }
  const win = new GuestWindow(hal.window, layout.poolOffset);
  const bootInfo: BootInfo = { restarted: nextGeneration(win) > 1 };
  const devices = board.devices.map((d) => buildDevice(hal, board, d, log, bootInfo));
  const toFrontend = board.lines.toFrontend;
  const transport = createTransport(
    win,
    layout,
    devices,
    { fence: hal.fence.bind(hal), raise: hal.raise.bind(hal, toFrontend), log }, // bound: no interpreted frame per call
    { budgetPerQueue: board.limits.budgetPerQueue, messagesPerPass: 256 },
  );

  return {
    start() {
      // The window outlives a backend restart (ivshmem): count on from the previous boot so a
      // frontend can tell a restart from the generation alone.
      const generation = nextGeneration(win);
      writeHeader(win, layout, generation, devices.length, typeof hal.peerId === 'number' ? hal.peerId : null);
      transport.boot();
      hal.fence();
      setBackendState(win, BACKEND_READY);
      hal.fence();
      log(LOG_INFO, `bulkhead: board ${board.name}, transport ${layout.transport}, ${devices.map((d, i) => `${i}:${d.name}`).join(' ')}, window ${layout.windowSize} bytes, pool at 0x${layout.poolOffset.toString(16)}`);
      hal.raise(toFrontend);
    },
    onInterrupt: () => (transport.service() ? 1 : 0),
    poll: () => (transport.service() ? 1 : 0),
    onTimer: () => (transport.service() ? 1 : 0),
    onService: (h) => (transport.serviceEvent(h) ? 1 : 0),
    onFault: (kind, detail) => (transport.fault(kind, detail) ? 1 : 0),
    stop() {
      transport.stop();
      setBackendState(win, BACKEND_STOPPED);
      hal.fence();
    },
    stats: () => JSON.stringify(transport.stats()),
  };
}

// Script entry: the runtime defined __hal before evaluating this bundle.
const g = globalThis as unknown as { __hal?: Hal; bulkhead?: FirmwareEntryPoints };
if (g.__hal) {
  const hal = g.__hal;
  try {
    g.bulkhead = boot(hal);
  } catch (e) {
    hal.log(LOG_ERROR, `bulkhead: boot failed: ${e instanceof Error ? e.message : String(e)}`);
    throw e;
  }
}
