// `bulkhead gpio list | get LINE | set LINE 0|1 | watch [LINE…]  [--socket PATH]`
// The host side of a running backend's virtio-gpio lines, through its gpio control socket
// (runtime/native/gpio.c, docs/gpio.md): drive an input the guest reads (and interrupts on), see the
// value and direction the guest gives its lines. LINE is a line name from the board or a number.
// The socket is --socket, else $BULKHEAD_GPIO_SOCKET, else ./gpio.sock (the qemu-ivshmem board's,
// relative to the backend's working directory).
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const USAGE = 'usage: bulkhead gpio list | get LINE | set LINE 0|1 | watch [LINE…]  [--socket PATH] (default $BULKHEAD_GPIO_SOCKET or ./gpio.sock)';

function parse(args) {
  const o = { socket: process.env.BULKHEAD_GPIO_SOCKET || 'gpio.sock', rest: [], interval: 100 };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--socket' || a === '-s') {
      if (i + 1 >= args.length) throw new Error(`${a} needs a path`);
      o.socket = args[++i];
    } else if (a === '--interval') o.interval = Number(args[++i]);
    else if (a === '-h' || a === '--help') o.help = true;
    else o.rest.push(a);
  }
  return o;
}

const row = (s) => `${String(s.line).padStart(4)}  ${(s.name || '-').padEnd(24)} ${s.direction.padEnd(5)} ${s.value}${s.direction === 'out' || s.direction === 'none' ? '' : `  (host drives ${s.input})`}`;

export async function run(args) {
  const o = parse(args);
  const [cmd, ...rest] = o.rest;
  if (o.help || !cmd) {
    console.log(USAGE);
    return o.help ? 0 : 2;
  }
  const { GpioControl } = await import(pathToFileURL(join(root, 'runtime', 'native', 'gpio-control.mjs')).href);
  const c = await GpioControl.connect(o.socket);
  try {
    if (cmd === 'list' && rest.length === 0) {
      console.log(`line  ${'name'.padEnd(24)} dir   value`);
      for (const s of await c.list()) console.log(row(s));
    } else if (cmd === 'get' && rest.length === 1) {
      const s = await c.get(rest[0]);
      console.log(String(s.value));
      if (process.stdout.isTTY) console.error(row(s));
    } else if (cmd === 'set' && rest.length === 2 && (rest[1] === '0' || rest[1] === '1')) {
      await c.set(rest[0], Number(rest[1]));
    } else if (cmd === 'watch') {
      // Prints every line whose direction or value changes (polled), until interrupted.
      const pick = async () => (await c.list()).filter((s) => rest.length === 0 || rest.includes(s.name) || rest.includes(String(s.line)));
      let last = new Map();
      for (;;) {
        for (const s of await pick()) {
          const k = `${s.direction} ${s.value}`;
          if (last.get(s.line) !== k) console.log(`${new Date().toISOString()} ${row(s)}`);
          last.set(s.line, k);
        }
        await new Promise((r) => setTimeout(r, o.interval));
      }
    } else {
      console.error(USAGE);
      return 2;
    }
    return 0;
  } finally {
    c.close();
  }
}
