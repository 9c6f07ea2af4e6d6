/**
 * Runtime- and transport-parameterised uvu suites: a behaviour is written once against a Backend and
 * registered on whichever backends an entry file names — a runtime (sim, native) on a transport (msg,
 * regblock, mmio). A behaviour of one wire only says which transports it holds on; registering it on
 * another is a no-op. Every test gets a fresh backend (started with its own options) that is stopped
 * afterwards, and every test title starts with the backend's name (`[sim/mmio] …`), so a failure
 * report says where it failed.
 */
import { suite } from 'uvu';
import type { Backend, BackendKind, StartOptions, TransportKind } from './backends';
import { onTransport, TRANSPORTS } from './backends';

export type TestFn = (title: string, body: (b: Backend) => Promise<void>, opts?: StartOptions) => void;

/** Starts a backend, runs `body` on it and stops it; a failing body's error is the one reported. */
export async function withBackend(kind: BackendKind, opts: StartOptions | undefined, body: (b: Backend) => Promise<void>): Promise<void> {
  const b = await kind.start(opts);
  let failed = true;
  try {
    await body(b);
    failed = false;
  } finally {
    if (failed) await b.stop().catch(() => {});
    else await b.stop();
  }
}

/** A behaviour: `define` declares its tests; the result registers and runs them on one backend. */
export function behaviour(name: string, define: (test: TestFn) => void, opts: { transports?: readonly TransportKind[] } = {}): (kind: BackendKind) => void {
  const transports = opts.transports ?? TRANSPORTS;
  return (kind) => {
    if (!transports.includes(kind.transport)) return;
    const s = suite(`${name} [${kind.label}]`);
    define((title, body, opts) => s(`[${kind.label}] ${title}`, () => withBackend(kind, opts, body)));
    s.run();
  };
}

/** Registers every behaviour of a suite module on `kind`. */
export function registerAll(behaviours: Record<string, (kind: BackendKind) => void>, kind: BackendKind): void {
  for (const register of Object.values(behaviours)) register(kind);
}

/** Registers `register` on `kind` once per transport (a behaviour of one wire registers only there). */
export function everyTransport(register: (kind: BackendKind) => void, kind: BackendKind): void {
  for (const t of TRANSPORTS) register(onTransport(kind, t));
}
