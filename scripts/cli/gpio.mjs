// `bulkhead gpio list | get LINE | set LINE 0|1 | watch [LINE…]`: the host side of a running native
// backend's virtio-gpio lines, through its gpio control socket (runtime/native/gpio.c, docs/gpio.md):
// drive an input the guest reads (and interrupts on), see the value and direction the guest gives its
// lines. LINE is a line name from the board (names may hold spaces: quote them) or a number.
import { Argument } from 'commander';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from './_bundle.mjs';
import { positive } from './_options.mjs';

export const summary = "a running backend's gpio lines from the host: list, get LINE, set LINE 0|1, watch [LINE…]";

export function define(cmd) {
  cmd
    .addArgument(new Argument('<action>', 'list | get | set | watch').choices(['list', 'get', 'set', 'watch']))
    .argument('[args...]', 'get: LINE; set: LINE 0|1; watch: the lines to watch (default all)')
    .option('-s, --socket <path>', "the backend's gpio control socket (the board's `control`)", process.env.BULKHEAD_GPIO_SOCKET || 'gpio.sock')
    .option('--interval <ms>', 'watch: how often to look, in milliseconds', positive, 100)
    .addHelpText('after', '\nThe socket defaults to $BULKHEAD_GPIO_SOCKET, else ./gpio.sock (the qemu-ivshmem board\'s, relative to the\nbackend\'s working directory). Exit status 1 with the backend\'s reason for a mistake (no such line).');
}

const row = (s) => `${String(s.line).padStart(4)}  ${(s.name || '-').padEnd(24)} ${s.direction.padEnd(5)} ${s.value}${s.direction === 'out' || s.direction === 'none' ? '' : `  (host drives ${s.input})`}`;

/** Checks the positional arguments of `action`; a mistake is a usage error (exit 2). */
function usage(action, args) {
  const ok = { list: args.length === 0, get: args.length === 1, set: args.length === 2 && (args[1] === '0' || args[1] === '1'), watch: true }[action];
  if (ok) return null;
  return { list: 'list takes no arguments', get: 'usage: gpio get LINE', set: 'usage: gpio set LINE 0|1' }[action];
}

export async function run(o, [action, args]) {
  const bad = usage(action, args);
  if (bad) {
    console.error(`bulkhead gpio: ${bad}`);
    return 2;
  }
  const { GpioControl } = await import(pathToFileURL(join(ROOT, 'runtime', 'native', 'gpio-control.mjs')).href);
  const c = await GpioControl.connect(o.socket);
  try {
    if (action === 'list') {
      console.log(`line  ${'name'.padEnd(24)} dir   value`);
      for (const s of await c.list()) console.log(row(s));
    } else if (action === 'get') {
      const s = await c.get(args[0]);
      console.log(String(s.value));
      if (process.stdout.isTTY) console.error(row(s));
    } else if (action === 'set') {
      await c.set(args[0], Number(args[1]));
    } else {
      // every line whose direction or value changes, until interrupted
      const last = new Map();
      for (;;) {
        for (const s of await c.list()) {
          if (args.length && !args.includes(s.name) && !args.includes(String(s.line))) continue;
          const k = `${s.direction} ${s.value}`;
          if (last.get(s.line) !== k) console.log(`${new Date().toISOString()} ${row(s)}`);
          last.set(s.line, k);
        }
        await new Promise((r) => setTimeout(r, o.interval));
      }
    }
    return 0;
  } finally {
    c.close();
  }
}
