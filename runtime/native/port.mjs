/**
 * The frontend's end of the native runtime: a FrontendPort (frontend/port.ts) over an ivshmem
 * server, so the TypeScript driver model and the shared test suites run against build/bulkhead-fw
 * exactly as they run against the simulator. The shared memory is mapped once and aliased by
 * `bytes`; doorbells are eventfds handed out by the server (build/bulkhead_port.node does the
 * SCM_RIGHTS and mmap parts, which Node cannot do itself).
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const ADDON_PATH = fileURLToPath(new URL('../../build/bulkhead_port.node', import.meta.url));

/** Window header offset of the frontend's ivshmem peer id (docs/window-layout.md). */
const FRONTEND_PEER_ID = 0x42;

let addon;
function loadAddon() {
  if (!addon) {
    try {
      addon = require(ADDON_PATH);
    } catch (e) {
      throw new Error(`native port addon not built (${ADDON_PATH}): run npm run setup:native (${e.message})`);
    }
  }
  return addon;
}

/** True when the addon is built (tests skip the native tier otherwise). */
export function nativePortAvailable() {
  try {
    loadAddon();
    return true;
  } catch {
    return false;
  }
}

/**
 * Connects to an ivshmem server as the frontend peer and returns a FrontendPort.
 * @param {{ socket: string }} opts
 */
export async function connectNative({ socket }) {
  const a = loadAddon();
  let rang = false;
  let waiter = null;
  const onRing = () => {
    if (waiter) {
      const w = waiter;
      waiter = null;
      w(true);
    } else rang = true;
  };
  const h = a.open(socket, onRing);
  const bytes = new Uint8Array(h.window);
  bytes[FRONTEND_PEER_ID] = h.peerId & 0xff;
  bytes[FRONTEND_PEER_ID + 1] = h.peerId >> 8;
  let closed = false;
  return {
    bytes,
    peerId: h.peerId,
    kick() {
      if (!closed) a.kick(h.handle);
    },
    wait(timeoutMs) {
      // A ring that arrived while JS was busy is in the eventfd counter or already in `rang`.
      if (rang || (!closed && a.drain(h.handle))) {
        rang = false;
        return Promise.resolve(true);
      }
      if (closed) return Promise.resolve(false);
      return new Promise((resolve) => {
        const t = setTimeout(() => {
          waiter = null;
          resolve(false);
        }, Math.max(0, timeoutMs));
        waiter = (v) => {
          clearTimeout(t);
          resolve(v);
        };
      });
    },
    /** Rings one given peer (benchmarks; the driver model only uses kick()). */
    kickPeer(id) {
      if (!closed) a.kickPeer(h.handle, id);
    },
    /** ivshmem peer ids currently connected (besides us). */
    peers() {
      return closed ? [] : a.peers(h.handle);
    },
    close() {
      if (closed) return;
      closed = true;
      a.close(h.handle);
      if (waiter) {
        const w = waiter;
        waiter = null;
        w(false);
      }
    },
  };
}
