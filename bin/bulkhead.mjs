#!/usr/bin/env node
// The `bulkhead` command line. Each command lives in scripts/cli/<command>.mjs and exports
// `run(args)`; this file only dispatches and prints help.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

const COMMANDS = {
  build: 'bundle the firmware and the host library with rollup (dist/)',
  demo: 'the embedded default (`npm start`): firmware on host-sim serving the frontend model, with a summary',
  sim: 'serve a board from the node runtime to the frontend model: `sim [--board B] [--blk disk.img[,ro]] [--script f.mjs]`',
  bench: 'benchmarks: `bench [scenario…] [--runtime node|native] [--json]`',
  fuzz: 'structure-aware fuzzer: `fuzz --target T --cases N --seed S`',
  image: 'build a partition image: `image --board B [--devices …] -o part.img`',
  run: 'run a partition image on the native runtime: `run part.img [options]`',
  qemu: 'QEMU board emulation: real Linux virtio drivers on Bulkhead',
  gpio: 'a running backend\'s gpio lines from the host: `gpio list | get LINE | set LINE 0|1 | watch` [--socket PATH]',
};

function help() {
  const lines = ['usage: bulkhead <command> [options]', '', 'commands:'];
  for (const [name, what] of Object.entries(COMMANDS)) {
    const built = existsSync(join(root, 'scripts', 'cli', `${name}.mjs`));
    lines.push(`  ${name.padEnd(7)} ${what}${built ? '' : '  (not built yet)'}`);
  }
  lines.push('', 'The README explains each; docs/ has the design.');
  console.log(lines.join('\n'));
}

const [cmd, ...args] = process.argv.slice(2);
if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
  help();
  process.exit(0);
}
if (!(cmd in COMMANDS)) {
  console.error(`bulkhead: unknown command '${cmd}' (try --help)`);
  process.exit(2);
}
const file = join(root, 'scripts', 'cli', `${cmd}.mjs`);
if (!existsSync(file)) {
  console.error(`bulkhead: '${cmd}' is not built yet in this version`);
  process.exit(2);
}
try {
  const mod = await import(pathToFileURL(file).href);
  const code = await mod.run(args);
  process.exitCode = typeof code === 'number' ? code : 0;
} catch (e) {
  console.error(`bulkhead ${cmd}: ${e instanceof Error ? e.message : String(e)}`);
  if (process.env.BULKHEAD_DEBUG) console.error(e);
  process.exitCode = 1;
}
