/**
 * The board the i2c and gpio suites run on (both runtimes): rng, an i2c bus with a 24C02 EEPROM at
 * 0x50 (its contents file in a fresh directory) and a temperature sensor at 0x48, and a gpio device
 * with five lines, one of them unnamed.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StartOptions } from './backends';

export const I2C_DEV = 1;
export const GPIO_DEV = 2;
export const EEPROM = 0x50;
export const SENSOR = 0x48;
export const SENSOR_CELSIUS = 21.75;
export const LINES = ['LED0', 'BUTTON0', '', 'RESET_N', 'ALERT'];
export const LED0 = 0;
export const BUTTON0 = 1;
export const RESET_N = 3;

/** A fresh directory for the EEPROM file, and the start options of a backend using it. */
export function lowSpeed(eepromPath?: string) {
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'bulkhead-lowspeed-'));
  const eeprom = eepromPath ?? join(dir, 'eeprom.bin');
  const opts: StartOptions = {
    devices: [
      { type: 'rng', service: 'entropy0' },
      { type: 'i2c', service: 'i2c0' },
      { type: 'gpio', service: 'gpio0' },
    ],
    services: {
      i2c0: {
        kind: 'i2c',
        targets: [
          { name: 'eeprom0', type: '24c02', address: EEPROM, path: eeprom },
          { name: 'temp0', type: 'temperature-sensor', address: '0x48', celsius: SENSOR_CELSIUS },
        ],
      },
      gpio0: { kind: 'gpio', lines: LINES },
    },
  };
  return { dir, eeprom, opts, file: () => new Uint8Array(readFileSync(eeprom)), done: () => rmSync(dir, { recursive: true, force: true }) };
}
