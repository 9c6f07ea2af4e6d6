// `bulkhead replay TRACE`: options in define() below (docs/cli.md).
// Re-runs a `.bhtrace` (recorded by `sim --record`, `run --record` or the fuzzer) against a firmware
// bundle (default dist/firmware.js) on either runtime, checking every step: the firmware's window at
// every HAL call and return, each HAL call and its arguments, each entry point's result. Stops at the
// first divergence with a decoded diff. --print shows the trace as a timeline instead (no replay).
// Exit status: 0 identical, 1 diverged, 2 unreadable trace. Format and guarantees: docs/trace-format.md.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { Option } from 'commander';
import { ROOT as root, importSim } from './_bundle.mjs';

export const summary = 're-run a trace (.bhtrace) on either runtime and check every step, or print it as a timeline';
export const needsBundle = true;

export function define(cmd) {
  cmd
    .argument('<trace>', 'the .bhtrace file (from sim --record, run --record or the fuzzer)')
    .addOption(new Option('--runtime <runtime>', 'replay on node (quickjs-emscripten) or native (build/bulkhead-fw --replay)').choices(['node', 'native']).default('node'))
    .option('--bundle <file>', 'the firmware bundle to replay (default: dist/firmware.js)')
    .option('--print', 'print the trace as a timeline, one line per event, instead of replaying it');
}

/** Reads a trace file, refusing one over the format's size limit before reading it. */
function readTraceFile(path, limit) {
  if (!existsSync(path)) throw Object.assign(new Error(`${path}: no such trace`), { code: 2 });
  const size = statSync(path).size;
  if (size > limit) throw Object.assign(new Error(`${path}: ${size} bytes, over the ${limit}-byte limit for a trace`), { code: 2 });
  return readFileSync(path);
}

export async function run(opts, [tracePath]) {
  const o = { ...opts, trace: resolve(tracePath), bundle: resolve(opts.bundle ?? join(root, 'dist', 'firmware.js')) };
  const { trace } = await importSim();
  let bytes;
  try {
    bytes = readTraceFile(o.trace, trace.LIMITS.fileBytes);
    if (o.print) {
      trace.printTimeline(bytes, o.trace, (l) => console.log(l));
      return 0;
    }
    const header = trace.readHeader(bytes, o.trace);
    trace.describeHeader(header).forEach((l) => console.log(l));
  } catch (e) {
    if (e instanceof trace.TraceFormatError || e.code === 2) {
      console.error(`bulkhead replay: ${e.message}`);
      return 2;
    }
    throw e;
  }
  const header = trace.readHeader(bytes, o.trace);
  const bundle = readFileSync(o.bundle);
  const sha = createHash('sha256').update(bundle).digest('hex');
  if (sha !== header.bundleSha256) {
    console.log(`note: replaying bundle ${o.bundle} (sha256 ${sha}), not the one recorded (${header.bundleSha256}): a divergence may be that change`);
  }
  const model = new trace.WindowModel(header.boardJson);
  let result;
  if (o.runtime === 'node') {
    result = await trace.replayOnNode(bytes, bundle.toString('utf8'), o.trace, (r) => model.follow(r));
  } else {
    result = replayNative(trace, bytes, o, model);
  }
  for (const l of trace.describeResult(result, model)) console.log(l);
  if (result.error && !result.divergence) return 2;
  return result.ok ? 0 : 1;
}

/**
 * Runs the native runtime's replayer (build/bulkhead-fw --replay) and turns its one JSON line into
 * the same result the node replayer gives; a window divergence is decoded here by following the trace
 * up to the record where it happened.
 */
function replayNative(trace, bytes, o, model) {
  const fw = join(root, 'build', 'bulkhead-fw');
  if (!existsSync(fw)) throw new Error(`${fw} is not built: run \`npm run setup:native\``);
  const r = spawnSync(fw, ['--replay', o.trace, '--bundle', o.bundle], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  const line = r.stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop();
  if (!line) throw new Error(`bulkhead-fw --replay gave no result (exit ${r.status}): ${r.stderr.trim()}`);
  return trace.nativeResult(JSON.parse(line), bytes, o.trace, model);
}
