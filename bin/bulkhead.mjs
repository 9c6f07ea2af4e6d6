#!/usr/bin/env node
// The `bulkhead` command line, on commander. Each command is scripts/cli/<name>.mjs exporting
//   summary         one line for the command list
//   define(cmd)     its arguments and options (a commander Command: `--help` per command, unknown
//                   options and bad values are clear errors)
//   run(opts, args) what it does (options as commander parsed them, then the positional arguments);
//                   returns the exit status. Heavy imports happen inside run, so `--help` is instant.
//   needsBundle     true when it runs the firmware bundle: dist/ is built first if missing or stale.
// docs/cli.md is generated from these definitions (`npm run docs:cli`); test/unit/cli-docs.test.ts
// fails when it is out of date, so every flag is documented in exactly one place.
import { Command, CommanderError } from 'commander';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cliDir = join(root, 'scripts', 'cli');

/** The program with every command defined (exported for the docs generator and tests). */
export async function program() {
  const p = new Command('bulkhead')
    .description('Bulkhead: a virtio backend for Type-1 hypervisors (README.md; docs/ has the design)')
    .showHelpAfterError('(add --help for usage)')
    .configureHelp({ sortSubcommands: true })
    .exitOverride(); // inherited by the commands: errors come back here as CommanderError
  const names = readdirSync(cliDir).filter((f) => f.endsWith('.mjs') && !f.startsWith('_')).map((f) => f.slice(0, -4));
  for (const name of names.sort()) {
    const mod = await import(pathToFileURL(join(cliDir, `${name}.mjs`)).href);
    const cmd = p.command(name).summary(mod.summary).description(mod.description ?? mod.summary).showHelpAfterError('(add --help for usage)');
    await mod.define(cmd);
    cmd.action(async () => {
      if (mod.needsBundle) (await import('../scripts/cli/_bundle.mjs')).ensureBundle();
      process.exitCode = (await mod.run(cmd.opts(), cmd.processedArgs)) ?? 0;
    });
  }
  return p;
}

const isMain = process.argv[1] && fileURLToPath(import.meta.url) === (await import('node:fs')).realpathSync(process.argv[1]);
if (isMain) {
  const p = await program();
  try {
    if (process.argv.length <= 2) {
      p.outputHelp();
      process.exit(0);
    }
    await p.parseAsync(process.argv);
  } catch (e) {
    if (e instanceof CommanderError) process.exitCode = e.exitCode === 0 ? 0 : 2; // commander already printed why
    else {
      console.error(`bulkhead ${process.argv[2] ?? ''}: ${e instanceof Error ? e.message : String(e)}`);
      if (process.env.BULKHEAD_DEBUG) console.error(e);
      process.exitCode = 1;
    }
  }
}
