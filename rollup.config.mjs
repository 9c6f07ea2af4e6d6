// Two bundles:
//  - dist/firmware.js: the firmware, an iife evaluated as a global script inside QuickJS (node or native runtime).
//  - dist/sim.mjs: the host side (node runtime, simulator, frontend driver model, bench), an ES module for Node.
//
// The firmware bundle's `let` and `const` become `var` (Babel's block-scoping transform, on the finished
// chunk, shadowed names renamed): QuickJS checks every read and write of a lexical binding for the
// temporal dead zone with its own opcodes (get_loc_check, put_loc_check, get_var_ref_check), which have
// no short forms and block its peephole fusions (inc_loc, add_loc, ...). The firmware's per-packet path
// costs ≈ 10 % less without them (docs/performance-log.md, "Bundle and build"). The checks only catch a use
// before initialisation (TypeScript rejects the direct ones at compile time); without them such a use
// reads `undefined` instead of throwing.
import { getBabelOutputPlugin } from '@rollup/plugin-babel';
import typescript from '@rollup/plugin-typescript';

const lexicalToVar = getBabelOutputPlugin({
  allowAllFormats: true, // an iife: the transform adds no imports or helpers
  babelrc: false,
  configFile: false,
  plugins: [['@babel/plugin-transform-block-scoping', { tdz: false }]],
});

export default [
  {
    input: 'firmware/main.ts',
    output: { file: 'dist/firmware.js', format: 'iife', sourcemap: true, name: 'bulkheadFirmware', plugins: [lexicalToVar] },
    plugins: [typescript({ tsconfig: './firmware/tsconfig.json', compilerOptions: { noEmit: false, noEmitOnError: true, outDir: 'dist', declaration: false } })],
  },
  {
    input: 'frontend/index.ts',
    output: { file: 'dist/sim.mjs', format: 'es', sourcemap: true },
    external: (id) => id.startsWith('node:') || id === 'quickjs-emscripten',
    plugins: [typescript({ tsconfig: './tsconfig.json', compilerOptions: { noEmit: false, noEmitOnError: true, outDir: 'dist', declaration: false }, include: ['firmware/**/*.ts', 'frontend/**/*.ts', 'runtime/node/**/*.ts', 'runtime/trace/**/*.ts'] })],
  },
];
