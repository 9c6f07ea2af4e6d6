/**
 * The node runtime's I2C bus: the backing of `i2c` services (docs/hal.md, docs/i2c.md), with the
 * simulated targets the board declares. runtime/native/i2c.c is the same bus in C; test/shared runs one
 * suite against both.
 *
 *   24c02               a 256-byte EEPROM in 8-byte pages, its contents in a file (created erased, 0xFF)
 *   temperature-sensor  an 8-register file: temperature (read-only), config and limits (read/write),
 *                       status, manufacturer and device ID (read-only)
 *
 * One `transfer` is one I2C transaction (START, messages with repeated STARTs, STOP). An address no
 * target answers is NACKed, and so is data a target refuses; the transaction stops at that message.
 * The targets' rules are the datasheets': the first byte of a write sets the target's address pointer,
 * later bytes are written from there; a read continues from the pointer.
 */
import * as fs from 'node:fs';

export const I2C_M_READ = 1;
export const I2C_M_MORE = 0x100;
export const I2C_MAX_ENTRIES = 256;
export const I2C_MAX_MESSAGE_BYTES = 8192;
const EINVAL = 22;
const EFAULT = 14;

/** A simulated target: one I2C address on the bus. */
export interface I2cTarget {
  readonly name: string;
  readonly address: number;
  /** A write message (after START + address + W); false NACKs it (nothing changed). */
  write(data: Uint8Array): boolean;
  /** A read message of `out.length` bytes; false NACKs it (nothing read). */
  read(out: Uint8Array): boolean;
  /** The STOP ending a transaction that reached this target. */
  stop(): void;
  /** The target as the host sees it (docs/i2c.md). */
  describe(): string;
}

/** The 24C02's size and page (Atmel AT24C02 datasheet: 2 Kbit, 8-byte page write). */
export const EEPROM_24C02_BYTES = 256;
export const EEPROM_24C02_PAGE = 8;

/**
 * A 24C02: the first byte of a write is the word address; data bytes after it go into the page of that
 * address, the low three address bits rolling over inside the page (a longer write overwrites the
 * page's first bytes). A read returns bytes from the address pointer on, rolling over from 255 to 0;
 * a read without a preceding address write continues where the last access ended ("current address
 * read"). Written bytes reach the file at the STOP, with fdatasync (the write cycle of the part).
 */
export class Eeprom24c02 implements I2cTarget {
  private readonly mem = new Uint8Array(EEPROM_24C02_BYTES);
  private ptr = 0;
  private dirty = false;
  private readonly fd: number;

  constructor(
    readonly name: string,
    readonly address: number,
    readonly path: string,
  ) {
    if (!fs.existsSync(path)) fs.writeFileSync(path, new Uint8Array(EEPROM_24C02_BYTES).fill(0xff));
    const size = fs.statSync(path).size;
    if (size !== EEPROM_24C02_BYTES) throw new Error(`i2c target ${name}: ${path} is ${size} bytes, a 24c02 holds ${EEPROM_24C02_BYTES}`);
    this.fd = fs.openSync(path, 'r+');
    fs.readSync(this.fd, this.mem, 0, EEPROM_24C02_BYTES, 0);
  }

  write(data: Uint8Array): boolean {
    if (data.length === 0) return true; // address only (SMBus Quick): acknowledged
    const word = data[0]!;
    const page = word & ~(EEPROM_24C02_PAGE - 1);
    let off = word & (EEPROM_24C02_PAGE - 1);
    for (let i = 1; i < data.length; i++) {
      this.mem[page | off] = data[i]!;
      off = (off + 1) & (EEPROM_24C02_PAGE - 1);
      this.dirty = true;
    }
    this.ptr = page | off;
    return true;
  }

  read(out: Uint8Array): boolean {
    for (let i = 0; i < out.length; i++) {
      out[i] = this.mem[this.ptr]!;
      this.ptr = (this.ptr + 1) & (EEPROM_24C02_BYTES - 1);
    }
    return true;
  }

  stop(): void {
    if (!this.dirty) return;
    fs.writeSync(this.fd, this.mem, 0, EEPROM_24C02_BYTES, 0);
    fs.fdatasyncSync(this.fd);
    this.dirty = false;
  }

  describe(): string {
    return `${this.name}: 24c02 EEPROM at 0x${this.address.toString(16)}, ${this.path}`;
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

/** The temperature sensor's registers (docs/i2c.md). */
export const SENSOR_REG = { TEMP: 0, TEMP_FRAC: 1, CONFIG: 2, T_HIGH: 3, T_LOW: 4, STATUS: 5, MANUFACTURER_ID: 6, DEVICE_ID: 7 } as const;
export const SENSOR_REGISTERS = 8;
export const SENSOR_MANUFACTURER_ID = 0x42;
export const SENSOR_DEVICE_ID = 0x54;
const SENSOR_WRITABLE = [false, false, true, true, true, false, false, false];

/**
 * A register-file temperature sensor: the first byte of a write selects a register, later bytes write
 * it and the ones after it; a read returns registers from the pointer on. Registers end at 7: a read
 * or write past the last register, or a write to a read-only one, is NACKed whole.
 */
export class TemperatureSensor implements I2cTarget {
  private readonly regs = new Uint8Array(SENSOR_REGISTERS);
  private ptr = 0;

  constructor(
    readonly name: string,
    readonly address: number,
    celsius: number,
  ) {
    if (!(celsius >= -128 && celsius < 128)) throw new Error(`i2c target ${name}: celsius ${celsius} is outside -128..127.99`);
    const fixed = Math.round(celsius * 256);
    this.regs[SENSOR_REG.TEMP] = (fixed >> 8) & 0xff;
    this.regs[SENSOR_REG.TEMP_FRAC] = fixed & 0xff;
    this.regs[SENSOR_REG.T_HIGH] = 80;
    this.regs[SENSOR_REG.T_LOW] = 10;
    this.regs[SENSOR_REG.MANUFACTURER_ID] = SENSOR_MANUFACTURER_ID;
    this.regs[SENSOR_REG.DEVICE_ID] = SENSOR_DEVICE_ID;
    this.updateStatus();
  }

  private updateStatus(): void {
    const t = (this.regs[SENSOR_REG.TEMP]! << 24) >> 24; // signed °C
    const high = (this.regs[SENSOR_REG.T_HIGH]! << 24) >> 24;
    const low = (this.regs[SENSOR_REG.T_LOW]! << 24) >> 24;
    this.regs[SENSOR_REG.STATUS] = (t >= high ? 1 : 0) | (t < low ? 2 : 0);
  }

  write(data: Uint8Array): boolean {
    if (data.length === 0) return true;
    const reg = data[0]!;
    if (reg >= SENSOR_REGISTERS || reg + data.length - 1 > SENSOR_REGISTERS) return false;
    for (let i = 1; i < data.length; i++) if (!SENSOR_WRITABLE[reg + i - 1]) return false;
    for (let i = 1; i < data.length; i++) this.regs[reg + i - 1] = data[i]!;
    this.ptr = reg + data.length - 1;
    this.updateStatus();
    return true;
  }

  read(out: Uint8Array): boolean {
    if (this.ptr + out.length > SENSOR_REGISTERS) return false;
    out.set(this.regs.subarray(this.ptr, this.ptr + out.length));
    this.ptr += out.length;
    return true;
  }

  stop(): void {}

  describe(): string {
    return `${this.name}: temperature sensor at 0x${this.address.toString(16)}`;
  }
}

/** A target entry of the board (`services.<bus>.targets[]`). */
export interface I2cTargetConfig {
  name?: string;
  type?: string;
  address?: number | string;
  path?: string;
  celsius?: number;
}

/** Parses an address given as a number or a "0x50"-style string: a 7-bit address 0x03..0x77. */
export function parseI2cAddress(a: unknown): number {
  const n = typeof a === 'number' ? a : typeof a === 'string' && /^(0x[0-9a-f]+|[0-9]+)$/i.test(a) ? Number(a) : NaN;
  return Number.isInteger(n) && n >= 0x03 && n <= 0x77 ? n : -1;
}

/** Builds the targets of a bus from its board entry; throws a one-line reason for a board mistake. */
export function buildTargets(bus: string, targets: unknown): I2cTarget[] {
  if (!Array.isArray(targets)) throw new Error(`i2c service ${bus}: targets must be an array`);
  const out: I2cTarget[] = [];
  for (const t of targets as I2cTargetConfig[]) {
    const name = String(t.name ?? '');
    const address = parseI2cAddress(t.address);
    if (!/^[A-Za-z0-9_.-]{1,63}$/.test(name)) throw new Error(`i2c service ${bus}: a target needs a name (letters, digits, _ . -)`);
    if (address < 0) throw new Error(`i2c target ${name}: address ${String(t.address)} is not a 7-bit address 0x03..0x77`);
    if (out.some((x) => x.address === address)) throw new Error(`i2c target ${name}: address 0x${address.toString(16)} is taken`);
    if (t.type === '24c02') {
      if (!t.path) throw new Error(`i2c target ${name}: a 24c02 needs a path (its contents file)`);
      out.push(new Eeprom24c02(name, address, t.path));
    } else if (t.type === 'temperature-sensor') {
      out.push(new TemperatureSensor(name, address, t.celsius ?? 25));
    } else throw new Error(`i2c target ${name}: unknown type ${String(t.type)} (24c02, temperature-sensor)`);
  }
  return out;
}

/** The bus: targets by address and the transaction rules of docs/hal.md. */
export class I2cBus {
  readonly transactions = { count: 0, nacks: 0 };

  constructor(readonly targets: I2cTarget[]) {}

  /**
   * Runs a transaction of `entries` (4 numbers each: address, flags, window offset, length) over
   * `window`. Validates everything first (−EINVAL, −EFAULT: nothing moved); then messages run in order
   * and the transaction stops at the first NACK. Returns the number of messages completed.
   */
  transfer(window: Uint8Array, e: ArrayLike<number>, entries: number): number {
    if (!(Number.isInteger(entries) && entries >= 0 && entries <= I2C_MAX_ENTRIES) || e.length < 4 * entries) return -EINVAL;
    const msgs: { target: I2cTarget | undefined; address: number; read: boolean; ranges: [number, number][]; len: number }[] = [];
    let cur: (typeof msgs)[number] | null = null;
    for (let k = 0; k < entries; k++) {
      const [address, flags, off, len] = [e[4 * k]!, e[4 * k + 1]!, e[4 * k + 2]!, e[4 * k + 3]!];
      if (address > 0x7f || (flags & ~(I2C_M_READ | I2C_M_MORE)) !== 0) return -EINVAL;
      if (!(off + len <= window.length)) return -EFAULT;
      const read = (flags & I2C_M_READ) !== 0;
      if (cur && (cur.address !== address || cur.read !== read)) return -EINVAL; // a continuation must be the same message
      cur ??= { target: this.targets.find((t) => t.address === address), address, read, ranges: [], len: 0 };
      cur.ranges.push([off, len]);
      cur.len += len;
      if (cur.len > I2C_MAX_MESSAGE_BYTES) return -EINVAL;
      if (!(flags & I2C_M_MORE)) {
        msgs.push(cur);
        cur = null;
      }
    }
    if (cur) return -EINVAL; // the last entry continues into nothing
    this.transactions.count++;
    const touched = new Set<I2cTarget>();
    let done = 0;
    for (const m of msgs) {
      const t = m.target;
      if (t) touched.add(t);
      const buf = new Uint8Array(m.len);
      if (!m.read) {
        let p = 0;
        for (const [o, l] of m.ranges) buf.set(window.subarray(o, o + l), (p += l) - l);
      }
      if (!t || !(m.read ? t.read(buf) : t.write(buf))) {
        this.transactions.nacks++;
        break;
      }
      if (m.read) {
        let p = 0;
        for (const [o, l] of m.ranges) window.set(buf.subarray(p, (p += l)), o);
      }
      done++;
    }
    for (const t of touched) t.stop();
    return done;
  }
}
