/**
 * The TypeScript sources import downwards only (docs/architecture.md "Layers"), with no cycles.
 * The import graph comes from madge (the well-kept tool for exactly this); the layer rules are the
 * project's own and live here.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import madge from 'madge';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..', '..');
const graph = madge(['firmware', 'frontend', 'runtime/node', 'runtime/trace'], {
  baseDir: root,
  fileExtensions: ['ts'],
  tsConfig: join(root, 'tsconfig.json'),
  excludeRegExp: [/\.d\.ts$/, /^frontend\/linux\//],
});

/** What a firmware file's folder may import, besides its own folder and the shared definitions. */
const FIRMWARE_FLOORS: Record<string, RegExp[]> = {
  window: [],
  virtqueue: [/^firmware\/window\//],
  devices: [/^firmware\/virtqueue\//],
  // The transport drives devices through their base class only.
  transport: [/^firmware\/window\//, /^firmware\/virtqueue\//, /^firmware\/devices\/device\.ts$/],
};
/** firmware/*.ts that every layer may import: spec constants, errors, the HAL and service contracts. */
const SHARED = /^firmware\/(errors|virtio|hal|services)\.ts$/;

/** The rule a file breaks by importing `dep`, or null. */
function broken(file: string, dep: string): string | null {
  if (file.startsWith('firmware/')) {
    if (!dep.startsWith('firmware/')) return 'the firmware imports nothing from outside firmware/ (it runs alone in QuickJS)';
    if (file === 'firmware/main.ts') return null;
    if (SHARED.test(file)) return 'the shared definitions import nothing else of the firmware';
    if (SHARED.test(dep)) return null;
    const folder = file.split('/')[1]!;
    const allowed = FIRMWARE_FLOORS[folder];
    if (!allowed) return `firmware/${folder}/ is not a known layer: add it to FIRMWARE_FLOORS and docs/architecture.md`;
    if (dep.startsWith(`firmware/${folder}/`) || allowed.some((r) => r.test(dep))) return null;
    return `firmware/${folder}/ may import only ${['its own folder', ...allowed.map(String)].join(', ')} and the shared definitions`;
  }
  if (file.startsWith('runtime/node/')) {
    if (dep.startsWith('runtime/node/') || dep.startsWith('runtime/trace/') || dep === 'firmware/hal.ts') return null;
    return 'the node runtime sees the bundle only through the HAL contract (firmware/hal.ts); it may use the trace library (runtime/trace/)';
  }
  if (file.startsWith('runtime/trace/')) {
    // the trace format and its readers: host-side, shared by the node runtime and the tools; they decode
    // the window with the firmware's own layouts and message definitions
    return dep.startsWith('runtime/trace/') || dep.startsWith('firmware/') ? null : 'the trace library (runtime/trace/) imports only itself and firmware definitions';
  }
  if (file === 'frontend/sim.ts' && (dep.startsWith('frontend/fuzz/') || dep.startsWith('frontend/drivers/'))) {
    return 'the simulator knows neither the fuzzer nor the drivers (frontend/index.ts gathers them)';
  }
  if (file.startsWith('frontend/') && dep === 'frontend/index.ts') return 'frontend/index.ts is the package entry: nothing inside imports it';
  return null;
}

test('no import cycles in firmware/, frontend/, runtime/node/ or runtime/trace/', async () => {
  const cycles = (await graph).circular();
  assert.equal(cycles, [], `import cycles:\n${cycles.map((c) => '  ' + c.join(' -> ')).join('\n')}`);
});

test('every import goes down a layer (docs/architecture.md "Layers")', async () => {
  const g = (await graph).obj();
  assert.ok(Object.keys(g).length > 30, `madge found only ${Object.keys(g).length} files: is its configuration still right?`);
  const bad: string[] = [];
  for (const [file, deps] of Object.entries(g)) {
    for (const dep of deps) {
      const why = broken(file, dep);
      if (why) bad.push(`  ${file} imports ${dep}: ${why}`);
    }
  }
  assert.equal(bad, [], `imports against the layers:\n${bad.join('\n')}`);
});

test('the rules catch an upward import (a device reaching into the transport)', () => {
  assert.ok(broken('firmware/devices/blk.ts', 'firmware/transport/transport.ts'));
  assert.ok(broken('firmware/window/window.ts', 'firmware/virtqueue/split.ts'));
  assert.ok(broken('frontend/sim.ts', 'frontend/fuzz/index.ts'));
  assert.is(broken('firmware/transport/transport.ts', 'firmware/devices/device.ts'), null);
});

test.run();
