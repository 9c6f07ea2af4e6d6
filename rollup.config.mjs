// Two bundles:
//  - dist/firmware.js: the firmware, an iife evaluated as a global script inside QuickJS (node or native runtime).
//  - dist/sim.mjs: the host side (node runtime, simulator, frontend driver model, bench), an ES module for Node.
import typescript from '@rollup/plugin-typescript';

export default [
  {
    input: 'firmware/main.ts',
    output: { file: 'dist/firmware.js', format: 'iife', sourcemap: true, name: 'bulkheadFirmware' },
    plugins: [typescript({ tsconfig: './firmware/tsconfig.json', compilerOptions: { noEmit: false, noEmitOnError: true, outDir: 'dist', declaration: false } })],
  },
  {
    input: 'frontend/sim.ts',
    output: { file: 'dist/sim.mjs', format: 'es', sourcemap: true },
    external: (id) => id.startsWith('node:') || id === 'quickjs-emscripten',
    plugins: [typescript({ tsconfig: './tsconfig.json', compilerOptions: { noEmit: false, noEmitOnError: true, outDir: 'dist', declaration: false }, include: ['firmware/**/*.ts', 'frontend/**/*.ts', 'runtime/node/**/*.ts'] })],
  },
];
