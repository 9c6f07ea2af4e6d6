// `bulkhead replay TRACE [--runtime node|native] [--bundle FILE] [--print]`
// Re-runs a `.bhtrace` (recorded by `sim --record`, `run --record` or the fuzzer) against a firmware
// bundle (default dist/firmware.js) on either runtime, checking every step: the firmware's window at
// every HAL call and return, each HAL call and its arguments, each entry point's result. Stops at the
// first divergence with a decoded diff. --print shows the trace as a timeline instead (no replay).
// Exit status: 0 identical, 1 diverged, 2 unreadable trace. Format and guarantees: docs/trace-format.md.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function parse(args) {
  const o = { trace: null, runtime: 'node', bundle: join(root, 'dist', 'firmware.js'), print: false };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const val = () => {
      if (i + 1 >= args.length) throw new Error(`${a} needs a value`);
      return args[++i];
    };
    if (a === '--runtime') o.runtime = val();
    else if (a === '--bundle') o.bundle = resolve(val());
    else if (a === '--print') o.print = true;
    else if (!a.startsWith('-') && !o.trace) o.trace = resolve(a);
    else throw new Error(`unknown option ${a} (usage: bulkhead replay TRACE [--runtime node|native] [--bundle FILE] [--print])`);
  }
  if (!o.trace) throw new Error('usage: bulkhead replay TRACE [--runtime node|native] [--bundle FILE] [--print]');
  if (!['node', 'native'].includes(o.runtime)) throw new Error(`--runtime must be node or native, not ${o.runtime}`);
  return o;
}

/** Reads a trace file, refusing one over the format's size limit before reading it. */
function readTraceFile(path, limit) {
  if (!existsSync(path)) throw Object.assign(new Error(`${path}: no such trace`), { code: 2 });
  const size = statSync(path).size;
  if (size > limit) throw Object.assign(new Error(`${path}: ${size} bytes, over the ${limit}-byte limit for a trace`), { code: 2 });
  return readFileSync(path);
}

export async function run(args) {
  const o = parse(args);
  const { trace } = await import(pathToFileURL(join(root, 'dist', 'sim.mjs')).href);
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
