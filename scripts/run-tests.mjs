// Runs uvu over a test folder and ends with one plain summary line, "N passed, N failed, N skipped",
// so a reader (or CI) sees the verdict at a glance. Usage: node scripts/run-tests.mjs <dir> [uvu args…]
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const [dir = 'test', ...rest] = process.argv.slice(2);
const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'node_modules', 'uvu', 'bin.js'), dir, '\\.test\\.ts$', ...rest], {
  cwd: root,
  stdio: ['ignore', 'pipe', 'inherit'],
  env: { ...process.env, FORCE_COLOR: process.stdout.isTTY ? '1' : '0' },
});
let out = '';
child.stdout.on('data', (d) => {
  process.stdout.write(d);
  out += d;
});
child.on('close', (code) => {
  const plain = out.replace(/\x1b\[[0-9;]*m/g, '');
  const num = (label) => Number((plain.match(new RegExp(`${label}:\\s+(\\d+)`)) ?? [])[1] ?? 0);
  const total = num('Total');
  const passed = num('Passed');
  const skipped = num('Skipped');
  const failed = Math.max(0, total - passed - skipped) + (code !== 0 && total === passed + skipped ? 1 : 0);
  console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
  if (total === 0) {
    console.error(`no tests ran under ${dir}`);
    process.exit(1);
  }
  process.exit(code ?? 1);
});
