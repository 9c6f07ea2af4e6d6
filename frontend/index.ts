/**
 * The package entry `bulkhead/sim` (dist/sim.mjs): the simulator (./sim), the frontend driver model,
 * the node runtime's pieces, the spec constants and the fuzzer, for users' own scripts and tools.
 * Only this file gathers them: the simulator itself knows nothing of the fuzzer or the drivers.
 */
export * from './sim';
export { Frontend, DriverDevice } from './device';
export type { FrontendOptions, RingFormat } from './device';
export { FrontendBus } from './bus';
export { RegBlockBus } from './regblock';
export { MmioBus } from './mmio';
export { attachTransport } from './device';
export type { DriverTransport, DriverEvent, DeviceInfo } from './transport';
export { PoolAllocator } from './pool';
export { DriverQueue, SplitDriverQueue } from './vring';
export { PackedDriverQueue } from './vring-packed';
export { RngDriver } from './drivers/rng';
export { ConsoleDriver } from './drivers/console';
export { BlkDriver, BlkStatusError, parseBlkConfig, encodeRanges } from './drivers/blk';
export { NetDriver } from './drivers/net';
export { VsockDriver, VsockSocket, VsockListener } from './drivers/vsock';
export type { NetFrame } from './drivers/net';
export { I2cDriver, I2cError } from './drivers/i2c';
export type { I2cMessage } from './drivers/i2c';
export { GpioDriver } from './drivers/gpio';
export { VirtualSwitch, SwitchPort, completeChecksum, onesComplementSum, foldChecksum, PACKET_F_NEEDS_CSUM, PACKET_F_DATA_VALID } from '../runtime/node/switch';
export type { Frame } from '../runtime/node/switch';
export { MemoryStream, NodeRuntime } from '../runtime/node/runtime';
export { MemoryVsockHost, MemoryVsockConn } from '../runtime/node/vsock';
export type { HostVsock, MemoryVsockListener } from '../runtime/node/vsock';
export { GpioLines } from '../runtime/node/gpio';
export type { GpioLineState } from '../runtime/node/gpio';
export { I2cBus, Eeprom24c02, TemperatureSensor, SENSOR_REG, SENSOR_DEVICE_ID, SENSOR_MANUFACTURER_ID } from '../runtime/node/i2c';
export type { FrontendPort } from './port';
export type { TransportKind, WindowLayout } from './layout';
export type { BoardConfig, DeviceManifestEntry } from '../firmware/hal';
export * as protocol from '../firmware/transport/protocol';
export * as virtio from '../firmware/virtio';
export * as net from '../firmware/devices/net';
export * as vsock from '../firmware/devices/vsock';
export * as fuzz from './fuzz/index';
export * as trace from './trace';
