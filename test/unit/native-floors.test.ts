/**
 * The native runtime's C files sit on floors (the table at the top of runtime/native/bh.h): a file
 * includes only headers of its own floor or below, and calls only functions declared there. A lower
 * floor that must be woken registers a callback (event.c) instead of calling up. Reads the sources
 * only, so it runs in the host tier without a native build.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = join(import.meta.dirname, '..', '..', 'runtime', 'native');
const src = (f: string) => readFileSync(join(dir, f), 'utf8');

/** file (.c or .h) → floor, from bh.h's table: lines ` *   N  a.c b.c   x.h   what`, a blank N continues the floor above. */
function floorTable(): Map<string, number> {
  const floors = new Map<string, number>();
  const lines = src('bh.h').split('\n');
  const start = lines.findIndex((l) => /^ \*\s+\d\s+\S+\.c\b/.test(l));
  assert.ok(start > 0, 'runtime/native/bh.h has no floor table (lines " *   N  file.c ...  header.h")');
  let floor = -1;
  for (const line of lines.slice(start)) {
    const m = /^ \*\s+(\d)?\s+(\S+\.[ch]\b.*)$/.exec(line);
    if (!m) break;
    if (m[1] !== undefined) floor = Number(m[1]);
    for (const f of m[2]!.match(/[\w-]+\.[ch]\b/g) ?? []) floors.set(f, floor);
  }
  return floors;
}

/** Function names declared (prototypes) in a header. */
function declared(header: string): string[] {
  const names = new Set<string>();
  for (const m of src(header).matchAll(/^[\w][\w\s*]*?\b(bh_\w+|ivs_\w+)\s*\([^;{]*\)\s*(?:__attribute__\(\(.*\)\))?\s*;/gm)) names.add(m[1]!);
  return [...names];
}

/** Calls of `name(` in code (comments and strings removed). */
function code(file: string): string {
  return src(file)
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/\/\/.*$/gm, '')
    .replace(/"(?:\\.|[^"\\])*"/g, '""');
}

const floors = floorTable();
const cFiles = readdirSync(dir).filter((f) => f.endsWith('.c'));
const firmwareSources = (src('Makefile').match(/^FW_SRCS\s*:=\s*(.*)$/m)?.[1] ?? '').trim().split(/\s+/);

test('every C file of the firmware has a floor in bh.h, and bh.h lists no file that is not there', () => {
  assert.ok(firmwareSources.length > 10, 'Makefile: FW_SRCS not found');
  const missing = firmwareSources.filter((f) => !floors.has(f));
  assert.equal(missing, [], `runtime/native/bh.h's floor table lacks ${missing.join(', ')}`);
  const stale = [...floors.keys()].filter((f) => !readdirSync(dir).includes(f));
  assert.equal(stale, [], `runtime/native/bh.h's floor table names files that do not exist: ${stale.join(', ')}`);
});

test('a C file includes only headers of its own floor or below', () => {
  const bad: string[] = [];
  for (const f of cFiles.filter((c) => floors.has(c))) {
    for (const [, h] of src(f).matchAll(/^#include\s+"([^"]+)"/gm)) {
      if (h === 'quickjs.h') continue;
      const hf = floors.get(h!);
      if (hf === undefined) bad.push(`${f} includes ${h}, which has no floor in bh.h`);
      else if (hf > floors.get(f)!) bad.push(`${f} (floor ${floors.get(f)}) includes ${h} (floor ${hf})`);
    }
  }
  assert.equal(bad, [], bad.join('\n'));
});

test('a C file calls no function of a higher floor (callbacks go through event.c)', () => {
  const owner = new Map<string, number>();
  for (const [h, fl] of floors) if (h.endsWith('.h')) for (const fn of declared(h)) owner.set(fn, fl);
  assert.ok(owner.size > 50, `found only ${owner.size} declarations in the floor headers`);
  const bad: string[] = [];
  for (const f of cFiles.filter((c) => floors.has(c))) {
    const body = code(f);
    for (const [fn, fl] of owner) if (fl > floors.get(f)! && new RegExp(`\\b${fn}\\s*\\(`).test(body)) bad.push(`${f} (floor ${floors.get(f)}) calls ${fn} (floor ${fl})`);
  }
  assert.equal(bad, [], bad.join('\n'));
});

test('the programs beside the firmware (server, loadgen, ping-pong) stay out of its headers', () => {
  const bad = cFiles.filter((f) => !floors.has(f)).filter((f) => /#include\s+"(bh|services|js|loop|image)\.h"/.test(src(f)));
  assert.equal(bad, [], `${bad.join(', ')} include firmware headers but are not in bh.h's floor table`);
});

test.run();
