#!/usr/bin/env node
// QEMU board emulation: a Debian kernel with its real virtio drivers, over frontend/linux on an
// ivshmem-doorbell device, against the native backend (build/bulkhead-fw) attached to the same
// ivshmem server. See docs/qemu.md.
//
//   npx bulkhead qemu [scenario...] [--arch amd64|arm64] [--backend native|vm] [--backend-arch amd64|arm64]
//                     [--peer fake:MODE] [--transport msg|regblock] [--keep] [--json] [--timeout S]
//   (npm run qemu -- … is the same; the options are defined in scripts/cli/qemu.mjs)
//
// --arch: the frontend guest's board: amd64 (qemu-system-x86_64, the default) or arm64
// (qemu-system-aarch64 -M virt -cpu cortex-a57, Debian's arm64 kernel, the module cross-built);
// scripts/qemu/guest-kit.mjs gets each architecture's kernel, kbuild tree and userland from Debian.
// --backend vm: the backend partition is a second QEMU guest (test/qemu/backend-vm/init) running
// bulkhead-fw --uio on its own ivshmem-doorbell device through runtime/native/linux/bulkhead_uio.ko;
// --backend-arch picks its architecture (default: the frontend's).
//
// Scenarios: probe blkverify blk console rng vsock reset restart vsock-restart (default: all of them), noback (no backend
// attached), net (board qemu-net: a virtio-net device whose TAP lives in a network namespace made
// for the run), bench (dd), bench-iops (4 KiB random I/O with test/qemu/tools/bhq-blkio).
// Exit 0 when every scenario passed. Everything is cached under .cache/qemu/ (idempotent).

import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT, CACHE, sh, which, hashOf } from './util.mjs';
import { ARCHES, archOf, hostArch, crossCompiler, headersVersion, guestKit, copyWithLibs, setLog } from './guest-kit.mjs';
import { connectClient, echoServer } from './vsock-peer.mjs';

export { ROOT, CACHE };
const GUEST = path.join(ROOT, 'test/qemu/guest');
const MODSRC = path.join(ROOT, 'frontend/linux');
const UIOSRC = path.join(ROOT, 'runtime/native/linux');
const BACKEND_VM = path.join(ROOT, 'test/qemu/backend-vm');
const FW = path.join(ROOT, ARCHES.amd64.fw);
const IVSERVER = path.join(ROOT, 'build/bulkhead-ivshmem-server');
const FAKE = path.join(ROOT, 'test/qemu/fixtures/fake_peer.py');
const NET_PEER = path.join(ROOT, 'scripts/qemu/net-peer.mjs');
const VSOCK_TEST = path.join(GUEST, 'tools/vsock-test.c');
// the vsock scenario: the host echo program's port and stream seed (test/qemu/guest/scenarios/vsock.sh)
const VSOCK = { uds: 'vsock.sock', echoPort: 5000, echoSeed: 1, echoBytes: 64 << 20 };
const BLKIO_SRC = path.join(ROOT, 'test/qemu/tools/bhq-blkio.c');

// blkverify writes raw blocks over the disk: it runs before blk makes the file system the later ones check
export const ALL_SCENARIOS = ['probe', 'ring', 'blkverify', 'blk', 'console', 'rng', 'vsock', 'i2c', 'gpio', 'reset', 'restart', 'vsock-restart'];
const DEBS = {
  busybox: 'busybox-static',
  cpio: 'cpio',
  depmod: 'kmod',
  'mkfs.ext4': 'e2fsprogs',
  debugfs: 'e2fsprogs',
  make: 'make',
  gcc: 'gcc',
  readelf: 'binutils',
  xz: 'xz-utils',
  // the i2c and gpio scenarios: Debian's tools, copied into the initramfs with their libraries
  i2cdetect: 'i2c-tools',
  gpioinfo: 'gpiod',
};
// files (not commands) the guest's bhq-blkio build needs: static libc and liburing
const DEB_FILES = {
  '/usr/include/liburing.h': 'liburing-dev',
  '/usr/lib/x86_64-linux-gnu/liburing.a': 'liburing-dev',
  '/usr/lib/x86_64-linux-gnu/libc.a': 'libc6-dev',
};
const WINDOW_SIZE = 8 << 20;
// the net scenario: the namespace made for a run (bhq-<pid>), its addresses, the net-peer port
const NETNS_PREFIX = 'bhq-';
const NET = { hostIp: '10.201.77.1', guestIp: '10.201.77.2', prefix: 24, port: 8077 };
const DISK_SIZE = 64 << 20;
const BENCH_DISK_SIZE = 256 << 20;
// the storage configurations of the Bulkhead disk (board service disk0's io and direct) that
// bench-iops serves in turn, and start-backend CFG switches to (docs/hal.md, docs/qemu.md)
export const STORAGE_CONFIGS = {
  'async-direct': { io: 'async', direct: true },
  'sync-direct': { io: 'sync', direct: true },
  async: { io: 'async', direct: false },
  sync: { io: 'sync', direct: false },
};
const BENCH_IOPS_CONFIGS = ['async-direct', 'sync-direct'];

// ---------------------------------------------------------------- output

let quiet = false;
const t0 = Date.now();
function log(msg) {
  if (!quiet) process.stderr.write(`[qemu ${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${msg}\n`);
}
async function stage(name, fn) {
  const s = Date.now();
  log(`${name} ...`);
  try {
    const r = await fn();
    log(`${name} done in ${((Date.now() - s) / 1000).toFixed(1)}s${r && r.note ? ` (${r.note})` : ''}`);
    return r;
  } catch (e) {
    log(`${name} FAILED after ${((Date.now() - s) / 1000).toFixed(1)}s: ${e.message}`);
    throw e;
  }
}

function filesUnder(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}

// ---------------------------------------------------------------- stages

// the Debian packages of the host tools, and per guest architecture its QEMU (and a cross compiler
// for a foreign one); the host's linux-headers-amd64 when an amd64 guest runs
export function ensureDeps(arches = ['amd64']) {
  const missing = new Set();
  const bins = { ...DEBS };
  for (const a of arches) {
    bins[archOf(a).qemu] = archOf(a).qemuDeb;
    const cc = crossCompiler(a);
    if (cc) bins[`${cc.prefix}gcc`] = cc.deb;
  }
  for (const [bin, deb] of Object.entries(bins)) if (!which(bin) && !fs.existsSync(`/sbin/${bin}`) && !fs.existsSync(`/usr/sbin/${bin}`)) missing.add(deb);
  if (!fs.existsSync('/bin/busybox')) missing.add('busybox-static');
  for (const [file, deb] of Object.entries(DEB_FILES)) if (!fs.existsSync(file)) missing.add(deb);
  const hostHeaders = arches.includes(hostArch());
  if (hostHeaders && !headersVersion()) missing.add('linux-headers-amd64');
  if (missing.size) {
    if (process.getuid?.() !== 0) throw new Error(`missing Debian packages: ${[...missing].join(' ')} (run as root, or: apt-get install ${[...missing].join(' ')})`);
    log(`installing ${[...missing].join(' ')} from Debian`);
    sh('apt-get', ['update', '-q'], { allowFail: true });
    sh('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  }
  if (hostHeaders && !headersVersion()) throw new Error('no /usr/src/linux-headers-*-amd64 after installing linux-headers-amd64');
  return { note: missing.size ? `installed ${[...missing].join(' ')}` : 'all present' };
}

// frontend/linux (or runtime/native/linux: bulkhead_uio.ko) built out of tree in a copy against the
// kit's kbuild tree (cross-compiled for a foreign architecture), keyed by its sources and the kernel
export function buildModule(kit, src = MODSRC, koName = 'bulkhead_ivshmem.ko') {
  const { kver } = kit;
  const srcs = fs.readdirSync(src).filter((f) => /\.(c|h)$|^Makefile$|^Kbuild$/.test(f)).sort();
  const key = hashOf([kver, ...srcs.flatMap((f) => [f, fs.readFileSync(path.join(src, f))])]);
  const dir = path.join(CACHE, 'module', key);
  const ko = path.join(dir, koName);
  if (fs.existsSync(ko)) return { ko, key, note: 'cached' };
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  for (const f of srcs) fs.copyFileSync(path.join(src, f), path.join(dir, f));
  const r = sh('make', ['-C', dir, `KDIR=${kit.kdir}`, ...kit.make], { allowFail: true });
  const warn = `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => /warning|error/i.test(l));
  if (r.status !== 0 || !fs.existsSync(ko)) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`module build failed:\n${warn.join('\n') || r.stderr.slice(-3000)}`);
  }
  return { ko, key, note: `built for ${kver}` };
}

// Linux's virtio-i2c and virtio-gpio drivers for the guest. Debian's 6.1 kernel does not configure them
// (CONFIG_I2C_VIRTIO, CONFIG_GPIO_VIRTIO are not set), so unless the guest kernel ships them the two
// driver sources — drivers/i2c/busses/i2c-virtio.c and drivers/gpio/gpio-virtio.c, unmodified — are
// taken from Debian's linux-source package of the guest kernel's own version and built out of tree
// against its headers, the way frontend/linux is. Cached per kernel; the .deb is kept in .cache/qemu/deb.
const VIRTIO_LOWSPEED = [
  { name: 'i2c-virtio', src: 'drivers/i2c/busses/i2c-virtio.c' },
  { name: 'gpio-virtio', src: 'drivers/gpio/gpio-virtio.c' },
];

export function ensureLowSpeedDrivers(kit) {
  const { kver, kroot } = kit;
  const own = VIRTIO_LOWSPEED.map((d) => {
    const r = spawnSync('modprobe', ['-d', kroot, '-S', kver, '--show-depends', d.name], { encoding: 'utf8' });
    return r.status === 0 ? /insmod (\S+)\s*$/.exec(r.stdout.trim())?.[1] : null;
  });
  if (own.every(Boolean)) return { kos: own, key: hashOf(own), note: "the guest kernel's own modules" };
  const version = sh('dpkg-query', ['-W', '-f=${Version}', `linux-headers-${kver}`]).stdout.trim();
  const series = /^(\d+\.\d+)/.exec(kver)?.[1];
  const dir = path.join(CACHE, 'lowspeed', `${kver}-${version}`);
  const kos = VIRTIO_LOWSPEED.map((d) => path.join(dir, `${d.name}.ko`));
  const key = hashOf([kver, version]);
  if (fs.existsSync(path.join(dir, '.done'))) return { kos, key, note: 'cached' };
  const dl = path.join(CACHE, 'deb');
  fs.mkdirSync(dl, { recursive: true });
  const pkg = `linux-source-${series}`;
  const find = () => fs.readdirSync(dl).find((f) => f.startsWith(`${pkg}_${version.replace(/^\d+:/, '')}_`) && f.endsWith('.deb'));
  if (!find()) {
    let r = sh('apt-get', ['download', `${pkg}=${version}`], { cwd: dl, allowFail: true });
    if (r.status !== 0) {
      sh('apt-get', ['update', '-q'], { allowFail: true });
      r = sh('apt-get', ['download', `${pkg}=${version}`], { cwd: dl });
    }
  }
  const deb = find();
  if (!deb) throw new Error(`apt-get download ${pkg}=${version} produced no .deb`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  // the source tarball inside the .deb, and only the two files out of it
  const members = VIRTIO_LOWSPEED.map((d) => `${pkg}/${d.src}`);
  execFileSync('sh', ['-c', `dpkg-deb --fsys-tarfile '${path.join(dl, deb)}' | tar -xO ./usr/src/${pkg}.tar.xz | xz -dc | tar -x -C '${dir}' ${members.join(' ')}`]);
  for (const d of VIRTIO_LOWSPEED) fs.renameSync(path.join(dir, pkg, d.src), path.join(dir, path.basename(d.src)));
  fs.rmSync(path.join(dir, pkg), { recursive: true, force: true });
  fs.writeFileSync(path.join(dir, 'Kbuild'), `obj-m := ${VIRTIO_LOWSPEED.map((d) => `${d.name}.o`).join(' ')}\n`);
  const r = sh('make', ['-C', `/usr/src/linux-headers-${kver}`, `M=${dir}`, 'modules'], { allowFail: true });
  if (r.status !== 0 || !kos.every((k) => fs.existsSync(k))) {
    const err = `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => /error/i.test(l)).join('\n');
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`building ${VIRTIO_LOWSPEED.map((d) => d.name).join(', ')} from ${deb} failed:\n${err || r.stderr.slice(-2000)}`);
  }
  fs.writeFileSync(path.join(dir, '.done'), `${deb}\n`);
  return { kos, key, note: `built from ${deb}` };
}

// the guest's user-space tools of the i2c and gpio scenarios (installed on the host by ensureDeps)
const LOWSPEED_TOOLS = ['i2cdetect', 'i2cget', 'i2cset', 'i2ctransfer', 'gpiodetect', 'gpioinfo', 'gpiofind', 'gpioget', 'gpioset', 'gpiomon'];

function toolPath(bin) {
  const p = which(bin) ?? [`/usr/sbin/${bin}`, `/sbin/${bin}`, `/usr/bin/${bin}`].find((f) => fs.existsSync(f));
  if (!p) throw new Error(`${bin} is missing (Debian packages i2c-tools, gpiod)`);
  return p;
}

// test/qemu/tools/bhq-blkio.c, the guest's random block I/O tool (verify and IOPS): a static binary
// against Debian's liburing, keyed by its source and the kit's architecture. For a foreign one it is
// cross-compiled against the liburing-dev of that architecture that setup:native unpacked for the
// aarch64 firmware (kit.uring)
export function buildBlkio(kit) {
  const src = fs.readFileSync(BLKIO_SRC);
  const key = hashOf(['bhq-blkio', kit.arch, src]);
  const dir = path.join(CACHE, 'tools', key);
  const bin = path.join(dir, 'bhq-blkio');
  if (fs.existsSync(bin)) return { bin, key, note: 'cached' };
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const cc = crossCompiler(kit.arch);
  let args = ['-O2', '-Wall', '-Wextra', '-Werror', '-static', '-o', `${bin}.tmp`, BLKIO_SRC, '-luring'];
  if (cc) {
    const uring = path.join(ROOT, kit.m.uring);
    if (!fs.existsSync(path.join(uring, 'usr/include/liburing.h')))
      throw new Error(`${kit.m.uring} (liburing-dev:${kit.arch}) is missing: npm run setup:native unpacks it`);
    args = [`-I${uring}/usr/include`, `-L${uring}/usr/lib/${kit.m.triplet}`, ...args];
  }
  const r = sh(cc ? `${cc.prefix}gcc` : 'gcc', args, { allowFail: true });
  if (r.status !== 0) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`bhq-blkio build failed:\n${r.stderr.slice(-3000)}`);
  }
  fs.renameSync(`${bin}.tmp`, bin);
  return { bin, key, note: `built for ${kit.arch}, ${fs.statSync(bin).size >> 10} KiB` };
}

function moduleDeps(kroot, kver, names) {
  const order = [];
  for (const n of names) {
    const r = sh('modprobe', ['-d', kroot, '-S', kver, '--show-depends', n]);
    for (const line of r.stdout.split('\n')) {
      const m = /^insmod (\S+)/.exec(line);
      if (m && !order.includes(m[1])) order.push(m[1]);
    }
  }
  return order;
}

// busybox initramfs: busybox, the virtio/ext4 modules of the guest kernel, our module,
// mkfs.ext4/fsck.ext4 with their libraries, bhq-blkio, i2c-tools and libgpiod tools (with `lowspeed`:
// the host architecture's guest only), /init and the scenarios
export function buildInitramfs(kit, mod, blkio, lowspeed = null) {
  const guestFiles = filesUnder(GUEST);
  const tools = lowspeed ? LOWSPEED_TOOLS.map(toolPath) : [];
  const key = hashOf([kit.kver, kit.key, mod.key, blkio.key, lowspeed?.key ?? 'no-lowspeed', ...tools.map((t) => fs.readFileSync(fs.realpathSync(t))), ...guestFiles.flatMap((f) => [path.relative(GUEST, f), fs.readFileSync(f)])]);
  const out = path.join(CACHE, `initramfs-${key}.cpio.gz`);
  if (fs.existsSync(out)) return { initrd: out, note: 'cached' };
  const root = path.join(CACHE, `initramfs-${key}.d`);
  const list = initramfsBase(root, kit, ['virtio_ring', 'virtio', 'virtio_blk', 'virtio_console', 'virtio-rng', 'virtio_net', 'ext4', 'virtio_pci', 'vmw_vsock_virtio_transport', ...(lowspeed ? ['i2c-dev'] : [])], ['bhq/scenarios']);
  fs.copyFileSync(mod.ko, path.join(root, 'lib/modules/bulkhead_ivshmem.ko'));
  // the library module both transports build on (frontend/linux/bulkhead_window.c), loaded first
  fs.copyFileSync(path.join(path.dirname(mod.ko), 'bulkhead_window.ko'), path.join(root, 'lib/modules/bulkhead_window.ko'));
  // transport regblock's module (frontend/linux/bulkhead_regblock.c): /init loads it instead when bh.module says so
  fs.copyFileSync(path.join(path.dirname(mod.ko), 'bulkhead_regblock.ko'), path.join(root, 'lib/modules/bulkhead_regblock.ko'));
  // i2c-virtio and gpio-virtio load after virtio (load.list order): built here or the kernel's own
  for (const ko of lowspeed?.kos ?? []) {
    const base = path.basename(ko).replace(/\.ko\.xz$/, '.ko');
    if (ko.endsWith('.xz')) execFileSync('sh', ['-c', `xz -dc '${ko}' > '${path.join(root, 'lib/modules', base)}'`]);
    else fs.copyFileSync(ko, path.join(root, 'lib/modules', base));
    if (!list.includes(base)) list.push(base);
  }
  fs.writeFileSync(path.join(root, 'lib/modules/load.list'), list.join('\n') + '\n');
  for (const b of ['/sbin/mkfs.ext4', '/sbin/fsck.ext4', ...tools]) copyWithLibs(kit, b, root);
  fs.copyFileSync(blkio.bin, path.join(root, 'sbin/bhq-blkio'));
  fs.chmodSync(path.join(root, 'sbin/bhq-blkio'), 0o755);
  const mke2fsConf = path.join(kit.sysroot, 'etc/mke2fs.conf');
  if (fs.existsSync(mke2fsConf)) fs.copyFileSync(mke2fsConf, path.join(root, 'etc/mke2fs.conf'));
  // busybox has no AF_VSOCK: the vsock scenario's guest end, static so that it needs no libraries (the kit's compiler)
  const vcc = crossCompiler(kit.arch);
  sh(vcc ? `${vcc.prefix}gcc` : 'gcc', ['-static', '-O2', '-Wall', '-Wextra', '-Werror', '-o', path.join(root, 'bin/vsock-test'), VSOCK_TEST]);
  fs.copyFileSync(path.join(GUEST, 'init'), path.join(root, 'init'));
  fs.chmodSync(path.join(root, 'init'), 0o755);
  fs.copyFileSync(path.join(GUEST, 'lib.sh'), path.join(root, 'bhq/lib.sh'));
  for (const f of fs.readdirSync(path.join(GUEST, 'scenarios')))
    fs.copyFileSync(path.join(GUEST, 'scenarios', f), path.join(root, 'bhq/scenarios', f));
  packInitramfs(root, out);
  return { initrd: out, note: `${list.length} kernel modules + bulkhead_window.ko + bulkhead_ivshmem.ko + bulkhead_regblock.ko + vsock-test, ${(fs.statSync(out).size >> 10)} KiB` };
}

// a fresh initramfs tree: directories, the kit's static busybox, the named kernel modules with their
// dependencies in load order (lib/modules/load.list); returns that list
function initramfsBase(root, kit, modules, dirs = []) {
  fs.rmSync(root, { recursive: true, force: true });
  for (const d of ['bin', 'sbin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'mnt', 'lib/modules', ...dirs])
    fs.mkdirSync(path.join(root, d), { recursive: true });
  fs.copyFileSync(path.join(kit.sysroot, 'bin/busybox'), path.join(root, 'bin/busybox'));
  fs.chmodSync(path.join(root, 'bin/busybox'), 0o755);
  fs.symlinkSync('busybox', path.join(root, 'bin/sh'));
  const list = [];
  for (const k of moduleDeps(kit.kroot, kit.kver, modules)) {
    const base = path.basename(k).replace(/\.ko\.xz$/, '.ko');
    if (k.endsWith('.xz')) execFileSync('sh', ['-c', `xz -dc '${k}' > '${path.join(root, 'lib/modules', base)}'`]);
    else fs.copyFileSync(k, path.join(root, 'lib/modules', base));
    list.push(base);
  }
  fs.writeFileSync(path.join(root, 'lib/modules/load.list'), list.join('\n') + '\n');
  return list;
}

function packInitramfs(root, out) {
  execFileSync('sh', ['-c', `cd '${root}' && find . | cpio -o -H newc --quiet | gzip -1 > '${out}.tmp' && mv '${out}.tmp' '${out}'`]);
  fs.rmSync(root, { recursive: true, force: true });
}

// the backend partition as a VM (--backend vm): busybox, virtio_blk for its own disk, virtio-rng for its
// own entropy source, uio + runtime/native/linux's bulkhead_uio.ko, the static firmware of the kit's
// architecture, the bundle and boards/qemu-ivshmem.json
export function buildBackendInitramfs(kit, uio) {
  const bundle = path.join(ROOT, 'dist/firmware.js');
  const fw = path.join(ROOT, kit.m.fw);
  if (!fs.existsSync(fw)) throw new Error(`${kit.m.fw} is missing: build the native runtime first (npm run setup:native)`);
  ensureBundle();
  const board = path.join(ROOT, 'boards/qemu-ivshmem.json');
  const parts = [fw, bundle, board, path.join(BACKEND_VM, 'init')];
  const key = hashOf([kit.kver, kit.key, uio.key, ...parts.flatMap((f) => [path.basename(f), fs.readFileSync(f)])]);
  const out = path.join(CACHE, `backend-initramfs-${key}.cpio.gz`);
  if (fs.existsSync(out)) return { initrd: out, note: 'cached' };
  const root = path.join(CACHE, `backend-initramfs-${key}.d`);
  const list = initramfsBase(root, kit, ['virtio_blk', 'virtio-rng', 'virtio_pci', 'uio'], ['bhb']);
  fs.copyFileSync(uio.ko, path.join(root, 'lib/modules/bulkhead_uio.ko'));
  fs.copyFileSync(fw, path.join(root, 'bhb/bulkhead-fw'));
  fs.chmodSync(path.join(root, 'bhb/bulkhead-fw'), 0o755);
  fs.copyFileSync(bundle, path.join(root, 'bhb/firmware.js'));
  fs.copyFileSync(board, path.join(root, 'bhb/board.json'));
  fs.copyFileSync(path.join(BACKEND_VM, 'init'), path.join(root, 'init'));
  fs.chmodSync(path.join(root, 'init'), 0o755);
  packInitramfs(root, out);
  return { initrd: out, note: `${list.length} kernel modules + bulkhead_uio.ko + bulkhead-fw, ${(fs.statSync(out).size >> 10)} KiB` };
}

function ensureBundle() {
  if (fs.existsSync(path.join(ROOT, 'dist/firmware.js'))) return;
  log('  dist/firmware.js missing: npm run build');
  sh('npm', ['run', '-s', 'build'], { cwd: ROOT });
}

// ---------------------------------------------------------------- processes

// Polls `pred` until it holds; a pred that throws ends the wait at once with its error (a helper
// process that exited is the failure, not a time-out later).
function waitFor(pred, ms, what) {
  return new Promise((resolve, reject) => {
    const end = Date.now() + ms;
    const tick = () => {
      let ok = false;
      try { ok = pred(); } catch (e) { return reject(e); }
      if (ok) return resolve();
      if (Date.now() > end) return reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
      setTimeout(tick, 50);
    };
    tick();
  });
}

function startProc(name, cmd, args, logFile, opts = {}) {
  const out = fs.openSync(logFile, 'a');
  const p = spawn(cmd, args, { stdio: ['ignore', out, out], ...opts });
  fs.closeSync(out);
  p.bhName = name;
  p.exited = null;
  p.on('exit', (code, sig) => { p.exited = { code, sig }; });
  return p;
}

// A pred for waitFor: throws with the process's own last words when it has exited.
function alive(p, logFile) {
  if (!p.exited) return true;
  const tail = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').trim().split('\n').slice(-10).join('\n') : '';
  throw new Error(`${p.bhName} exited (${p.exited.code ?? p.exited.sig}) before it was ready${tail ? `:\n${tail}` : ''}`);
}

async function stopProc(p, ms = 3000, sig = 'SIGTERM') {
  if (!p || p.exited) return;
  p.kill(sig);
  const end = Date.now() + ms;
  while (!p.exited && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  if (!p.exited) p.kill('SIGKILL');
}

// the board of a run: boards/qemu-ivshmem.json, or boards/qemu-net.json when the net scenario runs,
// or boards/qemu-regblock.json (with net) for transport regblock; its backings are relative to the run
// directory (the backend's working directory)
function boardFor(withNet, transport = 'msg') {
  const name = transport === 'regblock' ? 'qemu-regblock.json' : withNet ? 'qemu-net.json' : 'qemu-ivshmem.json';
  const board = JSON.parse(fs.readFileSync(path.join(ROOT, 'boards', name), 'utf8'));
  if ((board.transport ?? 'msg') !== transport) throw new Error(`board ${board.name} speaks ${board.transport}, the run wants ${transport}`);
  if (board.window.size !== WINDOW_SIZE) throw new Error(`board ${board.name}: window.size ${board.window.size}, the runner serves ${WINDOW_SIZE}`);
  return board;
}

// The board's relative `unix:` stream backings (the console socket, and any a scenario adds), gpio control sockets and
// relative vsock `uds` paths (with their `<uds>_PORT` sockets) are moved into the run's short socket
// folder, so that they fit a socket path whatever the checkout's path.
function socketsInto(board, sockDir) {
  for (const svc of Object.values(board.services)) {
    for (const k of ['backing', 'control']) // a stream's socket, a gpio service's control socket
      if (typeof svc[k] === 'string' && svc[k].startsWith('unix:') && !path.isAbsolute(svc[k].slice(5))) svc[k] = `unix:${path.join(sockDir, svc[k].slice(5))}`;
    if (svc.kind === 'vsock' && typeof svc.uds === 'string' && !path.isAbsolute(svc.uds)) svc.uds = path.join(sockDir, svc.uds);
  }
  return board;
}

// the host end of the guest's /dev/hvc0: answers "guest-to-host NONCE" with "host-to-guest NONCE"
function consoleClient(run) {
  const st = { seen: [], sent: [], connected: false, sock: null, buf: '' };
  const connect = () => {
    if (run.stopped) return;
    const s = net.createConnection(run.consoleSock);
    s.on('connect', () => { st.connected = true; st.sock = s; });
    s.on('data', (d) => {
      fs.appendFileSync(run.hvcLog, d);
      st.buf += d.toString('latin1');
      let i;
      while ((i = st.buf.indexOf('\n')) >= 0) {
        const line = st.buf.slice(0, i).replace(/\r$/, '');
        st.buf = st.buf.slice(i + 1);
        const m = /BHQ-CONSOLE guest-to-host (\w+)/.exec(line);
        if (m) {
          st.seen.push(m[1]);
          const reply = `BHQ-CONSOLE host-to-guest ${m[1]}\n`;
          s.write(reply);
          st.sent.push(m[1]);
        }
      }
    });
    s.on('error', () => {});
    s.on('close', () => { st.connected = false; if (!run.stopped) setTimeout(connect, 200); });
  };
  connect();
  return st;
}

// serve the Bulkhead disk with storage configuration `name` from the next (re)start on
function useStorageConfig(run, name) {
  const cfg = STORAGE_CONFIGS[name];
  if (!cfg) throw new Error(`unknown storage configuration ${name} (have: ${Object.keys(STORAGE_CONFIGS).join(', ')})`);
  run.boardDef.services.disk0 = { ...run.boardDef.services.disk0, ...cfg };
  run.storageConfig = name;
}

// the live firmware's counters for the figures of a benchmark: SIGUSR1's "[fw] stats" (device
// counters), "[fw] storage" (requests, bounces) and "[fw] calls" lines (runtime/native/loop.c) and its CPU time, under the storage
// configuration it served
async function fwSnapshot(run) {
  const got = await fwCounters(run);
  if (got) run.fwStats.push({ config: run.storageConfig ?? 'board', ...got });
}

// SIGUSR1 to the live firmware: its "[fw] stats", "[fw] storage" and "[fw] calls" lines (those that
// come within 3 s) and its CPU time; undefined without a live firmware
async function fwCounters(run) {
  const fw = run.fw;
  if (!fw || fw.exited) return undefined;
  const from = fs.statSync(run.backendLog).size;
  const cpuS = procCpuSeconds(fw.pid);
  fw.kill('SIGUSR1');
  const got = { cpuS };
  await waitFor(() => {
    const fd = fs.openSync(run.backendLog, 'r');
    const len = fs.fstatSync(fd).size - from;
    const b = Buffer.alloc(Math.max(0, len));
    fs.readSync(fd, b, 0, b.length, from);
    fs.closeSync(fd);
    const t = b.toString('latin1');
    for (const what of ['stats', 'storage', 'calls']) {
      const m = new RegExp(`\\[fw\\] ${what} (\\{.*\\})\\n`).exec(t);
      if (m) got[what] = JSON.parse(m[1]);
    }
    return got.stats && got.storage && got.calls;
  }, 3000, 'the firmware\'s [fw] stats, storage and calls lines after SIGUSR1').catch((e) => log(`  ${e.message}`));
  return got;
}

async function startBackend(run, peer) {
  if (peer.startsWith('fake')) {
    const mode = peer.split(':')[1] || 'ok';
    const fake = startProc('fake-peer', 'python3', [FAKE, run.ivSock, '--mode', mode, '--size', String(WINDOW_SIZE)], run.backendLog);
    run.procs.push(fake);
    await waitFor(() => alive(fake, run.backendLog) && fs.existsSync(run.ivSock), 10000, 'the fake peer socket');
    return;
  }
  for (const f of [IVSERVER, FW])
    if (!fs.existsSync(f)) throw new Error(`${path.relative(ROOT, f)} is missing: build the native runtime first (npm run setup:native / see docs/native.md)`);
  const shmName = `bulkhead-qemu-${process.pid}`;
  const server = startProc('ivshmem-server', IVSERVER, ['-S', run.ivSock, '-M', shmName, '-l', String(WINDOW_SIZE), '-n', '2', '-F'], run.serverLog);
  run.procs.push(server);
  await waitFor(() => alive(server, run.serverLog) && fs.existsSync(run.ivSock), 10000, 'the ivshmem server socket');
  if (peer === 'none') return;
  if (peer === 'vm') return startBackendVm(run);
  fs.writeFileSync(run.board, JSON.stringify(run.boardDef, null, 2));
  await startFw(run);
}

// ---------------------------------------------------------------- QEMU guests

// a guest of the kit's board (TCG, one CPU, no NIC, serial console on stdio, halts instead of
// rebooting) on the run's ivshmem server through its own ivshmem-doorbell device
function qemuArgs(run, kit, memMiB, initrd, append) {
  return [...kit.m.machine, '-accel', 'tcg', '-smp', '1', '-m', String(memMiB), '-nic', 'none', '-nographic', '-no-reboot',
    '-kernel', kit.vmlinuz, '-initrd', initrd,
    // no_timer_check (x86): Linux's IO-APIC timer check fails when a starved TCG guest misses ticks (a loaded host)
    '-append', `console=${kit.m.console} loglevel=4 panic=-1 oops=panic${kit.m.qemu === 'qemu-system-x86_64' ? ' no_timer_check' : ''} rdinit=/init${append}`,
    '-chardev', `socket,path=${run.ivSock},id=ivs`, '-device', 'ivshmem-doorbell,chardev=ivs,vectors=2'];
}

// the exact command line, for the run directory
function writeCmd(file, kit, args) {
  fs.writeFileSync(file, [kit.m.qemu, ...args].map((a) => (/\s/.test(a) ? `'${a}'` : a)).join(' ') + '\n');
}

// ---------------------------------------------------------------- the backend partition as a VM

const FW_RUNNING = /board \S+ \(id \d+\) running, peer id (-?\d+)/;

// a second QEMU guest on the same ivshmem server: test/qemu/backend-vm/init runs bulkhead-fw --uio
// on its ivshmem-doorbell device; its disk is the run's disk.img as the VM's own virtio-blk-pci
// (/dev/vda). Its serial console is the backend log and takes the commands of hostAction.
async function startBackendVm(run) {
  const kit = run.backendKit;
  const args = qemuArgs(run, kit, 256, run.backendInitrd, '');
  args.push('-drive', `file=${run.disk},format=raw,if=none,id=disk0`, '-device', 'virtio-blk-pci,drive=disk0',
    // the partition's own hardware RNG: without one a TCG guest's CRNG takes about a minute to seed,
    // and the firmware's entropy service (getrandom) blocks the event loop, every device with it, until then
    '-device', 'virtio-rng-pci');
  writeCmd(path.join(run.dir, 'backend-qemu.cmd'), kit, args);
  const p = spawn(kit.m.qemu, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  p.bhName = 'backend-vm';
  p.exited = null;
  p.on('exit', (code, sig) => { p.exited = { code, sig }; });
  p.stdin.on('error', () => {});
  run.procs.push(p);
  const vm = { proc: p, text: '' };
  const onData = (d) => {
    fs.appendFileSync(run.backendLog, d);
    vm.text += d.toString('latin1');
  };
  p.stdout.on('data', onData);
  p.stderr.on('data', onData);
  vm.send = (cmd) => { if (!p.exited) p.stdin.write(cmd + '\n'); };
  run.vm = vm;
  await vmFwRunning(run, 0, 120000);
}

// waits for the firmware's "running" line in the backend VM's console after offset `from`
async function vmFwRunning(run, from, ms) {
  const vm = run.vm;
  await waitFor(() => {
    const t = vm.text.slice(from);
    if (vm.proc.exited) throw new Error(`the backend VM exited (${vm.proc.exited.code ?? vm.proc.exited.sig})`);
    const bad = /BHB-(ERROR .*|FW-EXIT \d+)/.exec(t);
    if (bad) throw new Error(bad[0]);
    return FW_RUNNING.test(t);
  }, ms, 'bulkhead-fw to run in the backend VM').catch((e) => {
    throw new Error(`backend VM: ${e.message}; last lines of ${run.backendLog}:\n${vm.text.split('\n').slice(-15).join('\n')}`);
  });
}

// the firmware stops (its fdatasync), the VM syncs /dev/vda and powers off: disk.img is complete
async function powerOffVm(run) {
  if (!run.vm || run.vm.proc.exited) return;
  await vmCommand(run, 'poweroff', /BHB-OFF/, 20000).catch(() => {});
  await waitFor(() => run.vm.proc.exited, 10000, 'the backend VM to power off').catch(() => log('  the backend VM did not power off'));
}

async function vmCommand(run, cmd, until, ms) {
  const from = run.vm.text.length;
  run.vm.send(cmd);
  if (until) await waitFor(() => until.test(run.vm.text.slice(from)) || run.vm.proc.exited, ms, `'${cmd}' in the backend VM`);
  return from;
}

// ---------------------------------------------------------------- network namespace (net scenario)

function ipCmd(args, opts = {}) {
  return sh('ip', args, { timeout: 10000, ...opts });
}

// namespaces left by runs whose process is gone (killed before their cleanup ran)
function reapStaleNetns() {
  const r = ipCmd(['netns', 'list'], { allowFail: true });
  for (const line of (r.stdout || '').split('\n')) {
    const m = new RegExp(`^${NETNS_PREFIX}(\\d+)\\b`).exec(line);
    if (!m) continue;
    let alive = true;
    try { process.kill(Number(m[1]), 0); } catch (e) { alive = e.code === 'EPERM'; }
    if (!alive) ipCmd(['netns', 'del', `${NETNS_PREFIX}${m[1]}`], { allowFail: true });
  }
}

// a network namespace for this run: the backend runs in it, so its TAP is created there and nothing
// touches the host's own network; only the addresses of NET are assigned, inside it
function setupNetns(run) {
  if (!which('ip')) throw new Error('`ip` (iproute2) is missing: npm run setup:native installs it');
  if (!fs.existsSync('/dev/net/tun')) throw new Error('/dev/net/tun is missing: the net scenario needs the TUN driver (modprobe tun)');
  reapStaleNetns();
  const ns = `${NETNS_PREFIX}${process.pid}`;
  ipCmd(['netns', 'del', ns], { allowFail: true, stdio: 'ignore' });
  ipCmd(['netns', 'add', ns]);
  run.netns = ns;
  ipCmd(['-n', ns, 'link', 'set', 'lo', 'up']);
  return { note: ns };
}

function netTap(run) {
  return run.boardDef.services.net0.tap;
}

// after each (re)start of the backend: its TAP is new, give it the host address and bring it up
async function configureTap(run) {
  const tap = netTap(run);
  await waitFor(() => spawnSync('ip', ['-n', run.netns, 'link', 'show', tap], { stdio: 'ignore' }).status === 0, 10000, `the backend's TAP ${tap} in ${run.netns}`);
  ipCmd(['-n', run.netns, 'addr', 'add', `${NET.hostIp}/${NET.prefix}`, 'dev', tap]);
  ipCmd(['-n', run.netns, 'link', 'set', tap, 'up']);
}

// scripts/qemu/net-peer.mjs in the namespace: the TCP end of the guest's transfers
async function startNetPeer(run, maxSeconds) {
  const st = { ready: null, uploads: [], served: [], errors: [] };
  const p = spawn('ip', ['netns', 'exec', run.netns, process.execPath, NET_PEER, '--host', NET.hostIp, '--port', String(NET.port), '--max-seconds', String(maxSeconds)],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  p.bhName = 'net-peer';
  p.exited = null;
  p.on('exit', (code, sig) => { p.exited = { code, sig }; });
  run.procs.push(p);
  let buf = '';
  p.stdout.on('data', (d) => {
    fs.appendFileSync(run.netPeerLog, d);
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      let o;
      try { o = JSON.parse(line); } catch { continue; }
      if (o.ready) st.ready = o.ready;
      if (o.upload) st.uploads.push(o.upload);
      if (o.served) st.served.push(o.served);
      if (o.error) st.errors.push(o.error);
    }
  });
  p.stderr.on('data', (d) => fs.appendFileSync(run.netPeerLog, d));
  await waitFor(() => {
    if (p.exited) throw new Error('exited');
    return st.ready;
  }, 10000, 'net-peer to listen').catch((e) => {
    throw new Error(`net-peer did not come up (${e.message}): ${fs.existsSync(run.netPeerLog) ? fs.readFileSync(run.netPeerLog, 'utf8').slice(-800) : ''}`);
  });
  return st;
}

// (re)starts build/bulkhead-fw on the run's board; ready when its console socket listens
async function startFw(run) {
  const bundle = path.join(ROOT, 'dist/firmware.js');
  ensureBundle();
  const fwArgs = (process.env.BULKHEAD_QEMU_FW_ARGS || '--bundle {bundle} --board {board} --ivshmem {sock}')
    .split(/\s+/).filter(Boolean).map((a) => a.replace('{board}', run.board).replace('{sock}', run.ivSock).replace('{bundle}', bundle));
  fs.rmSync(run.consoleSock, { force: true });
  const fw = run.netns
    ? startProc('bulkhead-fw', 'ip', ['netns', 'exec', run.netns, FW, ...fwArgs], run.backendLog, { cwd: run.dir })
    : startProc('bulkhead-fw', FW, fwArgs, run.backendLog, { cwd: run.dir });
  run.procs.push(fw);
  run.fw = fw;
  // ready when it listens for the console (it opens services at boot, before READY)
  await waitFor(() => {
    if (fw.exited) throw new Error('exited');
    return fs.existsSync(run.consoleSock);
  }, 15000, 'bulkhead-fw to open its console socket').catch((e) => {
    const tail = fs.readFileSync(run.backendLog, 'utf8').split('\n').slice(-15).join('\n');
    throw new Error(`bulkhead-fw did not come up (${fw.exited ? `exit ${fw.exited.code ?? fw.exited.sig}` : e.message}); last lines of ${run.backendLog}:\n${tail}`);
  });
  if (run.netns) await configureTap(run);
}

// actions a guest scenario asks of the host ("BHQ-HOST <action>" on the serial console)
async function hostAction(run, action, arg) {
  log(`  host: ${action}${arg ? ` ${arg}` : ''}`);
  if (action === 'gpio-check') return gpioCheck(run, arg);
  if (action === 'kill-backend-in') {
    // a kill at a point of the guest's workload: the guest drew the delay from the run's seed
    const ms = Number(arg);
    if (!Number.isInteger(ms) || ms < 0 || ms > 60000) throw new Error(`kill-backend-in: bad delay ${arg}`);
    await new Promise((r) => setTimeout(r, ms));
    action = 'kill-backend';
  }
  if (run.vm) {
    if (action === 'stop-backend' || action === 'kill-backend') await vmCommand(run, action === 'stop-backend' ? 'fw-stop' : 'fw-kill', /BHB-FW-EXIT/, 15000);
    else if (action === 'start-backend') await vmFwRunning(run, await vmCommand(run, 'fw-start'), 60000);
    else throw new Error(`unknown host action ${action}`);
    return;
  }
  const vc = /^vsock-connect:(\d+):(\d+):(\d+)$/.exec(action);
  if (vc) {
    // a host client for a listening guest port: CONNECT on <uds>, then the stream both ways
    run.vsockClient = connectClient(path.join(run.sockDir, VSOCK.uds), Number(vc[1]), Number(vc[2]), Number(vc[3]));
    return;
  }
  if (action === 'vsock-stats') {
    // the counters of this backend instance, before a later scenario restarts it
    run.vsockStats = backendStats(run);
    return;
  }
  if (action === 'vsock-stats:restart') {
    run.vsockStatsRestart = backendStats(run); // the restarted instance's
    return;
  }
  if (action === 'stop-backend' || action === 'kill-backend') {
    if (!run.fw) throw new Error('no backend process');
    if (action === 'stop-backend' && run.collectStats) await fwSnapshot(run);
    await stopProc(run.fw, action === 'kill-backend' ? 0 : 5000, action === 'kill-backend' ? 'SIGKILL' : 'SIGTERM');
    run.fw = null;
  } else if (action === 'start-backend') {
    // start-backend CFG: the disk served with another storage configuration from now on (bench-iops)
    if (arg) useStorageConfig(run, arg);
    fs.writeFileSync(run.board, JSON.stringify(run.boardDef, null, 2));
    await startFw(run);
  } else {
    throw new Error(`unknown host action ${action}`);
  }
}

// `bulkhead gpio` (the CLI a user runs) against the backend's control socket, in the run directory
function gpioCli(run, args) {
  const ctl = String(run.boardDef.services.gpio0?.control ?? '').replace(/^unix:/, '');
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [path.join(ROOT, 'bin/bulkhead.mjs'), 'gpio', ...args, '--socket', path.resolve(run.dir, ctl)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    p.on('close', (code) => resolve({ code, out: out.trim() }));
  });
}

// "gpio-check NAME=V:RAISE=W": the host reads NAME; only if the guest drives it at V does it drive
// RAISE to W (the guest waits for that edge), so the guest's PASS needs both directions to work
async function gpioCheck(run, arg) {
  const m = /^([^=:]+)=([01]):([^=:]+)=([01])$/.exec(arg ?? '');
  if (!m) throw new Error(`gpio-check: bad argument ${arg}`);
  const [, name, want, raise, value] = m;
  const got = await gpioCli(run, ['get', name]);
  const check = { name, want, saw: got.code === 0 ? got.out : `error: ${got.out}`, raised: false };
  run.gpioChecks.push(check);
  if (got.code !== 0 || got.out !== want) return;
  const set = await gpioCli(run, ['set', raise, value]);
  check.raised = set.code === 0 ? `${raise}=${value}` : `error: ${set.out}`;
}

// host-side check of the gpio scenario: what `bulkhead gpio get` saw and whether it raised the edge
function checkGpioHost(checks) {
  const c = checks[0];
  if (!c) return { pass: false, detail: 'the guest asked for no gpio-check' };
  if (c.saw !== c.want) return { pass: false, detail: `bulkhead gpio get ${c.name} printed '${c.saw}', the guest drives ${c.want}` };
  if (c.raised === false || String(c.raised).startsWith('error')) return { pass: false, detail: `bulkhead gpio set failed: ${c.raised}` };
  return { pass: true, detail: `bulkhead gpio get ${c.name} = ${c.saw} (the guest's output), then bulkhead gpio set ${c.raised}` };
}

// host-side check of the i2c scenario: the EEPROM file holds what the guest wrote (BHQ-EEPROM lines)
function checkEeprom(file, expect) {
  if (!expect.length) return { pass: false, detail: 'the guest reported no EEPROM contents' };
  if (!fs.existsSync(file)) return { pass: false, detail: `${file} does not exist` };
  const b = fs.readFileSync(file);
  if (b.length !== 256) return { pass: false, detail: `${file} is ${b.length} bytes, a 24c02 holds 256` };
  for (const e of expect) {
    const got = b.subarray(e.off, e.off + e.hex.length / 2).toString('hex');
    if (got !== e.hex) return { pass: false, detail: `eeprom.bin at 0x${e.off.toString(16)}: ${got}, the guest wrote ${e.hex}` };
  }
  return { pass: true, detail: `eeprom.bin on the host holds the ${expect.length} ranges the guest wrote` };
}

function parseConsole(text) {
  const results = {};
  const files = {};
  const bench = [];
  const netfiles = [];
  const eeprom = [];
  const iops = [];
  for (const line of text.split(/\r?\n/)) {
    let m = /BHQ-RESULT (\S+) (PASS|FAIL) ?(.*)$/.exec(line);
    if (m) results[m[1]] = { pass: m[2] === 'PASS', detail: m[3] };
    m = /BHQ-FILE (\S+) ([0-9a-f]{64})/.exec(line);
    if (m) files[m[1]] = m[2];
    m = /BHQ-BENCH (\S+) (read|write) (\d+) ([\d.]+)/.exec(line);
    if (m) bench.push({ disk: m[1], op: m[2], mb: Number(m[3]), s: Number(m[4]) });
    m = /BHQ-NETFILE (\S+) ([0-9a-f]{64}) (\d+)/.exec(line);
    if (m) netfiles.push({ what: m[1], sha256: m[2], bytes: Number(m[3]) });
    m = /BHQ-EEPROM ([0-9a-f]+) ([0-9a-f]+)$/.exec(line);
    if (m) eeprom.push({ off: parseInt(m[1], 16), hex: m[2] });
    m = /BHQ-IOPS (\S+) (randread|randwrite) ((?:\w+=[\d.]+ ?)+)$/.exec(line);
    if (m) {
      const row = { label: m[1], rw: m[2] };
      for (const kv of m[3].trim().split(' ')) {
        const [k, v] = kv.split('=');
        row[k] = Number(v);
      }
      iops.push(row);
    }
  }
  return { results, files, bench, netfiles, eeprom, iops, done: /BHQ-DONE/.test(text), oops: /(Oops|BUG:|Kernel panic|general protection fault|Call Trace)/.exec(text)?.[0] };
}

// host-side check: the bytes the guest wrote are in the backend's image file
function verifyImage(disk, files) {
  const out = [];
  const fsck = sh('fsck.ext4', ['-n', '-f', disk], { allowFail: true });
  if (fsck.status !== 0) return { pass: false, detail: `host fsck.ext4 -n -f ${disk} exited ${fsck.status}: ${fsck.stdout.slice(-400)}` };
  for (const [name, sum] of Object.entries(files)) {
    const r = spawnSync('debugfs', ['-R', `cat /${name}`, disk], { maxBuffer: 256 << 20 });
    const got = createHash('sha256').update(r.stdout).digest('hex');
    if (got !== sum) return { pass: false, detail: `${name}: image has sha256 ${got.slice(0, 16)}…, guest wrote ${sum.slice(0, 16)}…` };
    out.push(name);
  }
  if (!out.length) return { pass: false, detail: 'the guest reported no files' };
  return { pass: true, detail: `fsck clean, ${out.length} files match on the host image (${out.join(' ')})` };
}

// host-side check of the net scenario: what the guest uploaded reached net-peer with the same sha256,
// and the blob it verified was served whole
function checkNetPeer(peer, netfiles) {
  const up = netfiles.find((f) => f.what === 'upload');
  if (!up) return { pass: false, detail: 'the guest reported no upload (BHQ-NETFILE upload)' };
  const got = peer.uploads.find((u) => u.sha256 === up.sha256 && u.bytes === up.bytes);
  if (!got) return { pass: false, detail: `net-peer received ${JSON.stringify(peer.uploads)}, the guest sent ${up.bytes} bytes sha256 ${up.sha256.slice(0, 16)}…` };
  if (peer.errors.length) return { pass: false, detail: `net-peer: ${peer.errors.join('; ')}` };
  return { pass: true, detail: `net-peer received ${got.bytes} bytes with the guest's sha256 and served ${peer.served.length} blob(s) of ${peer.ready.blobBytes} bytes` };
}

// the backend's device counters now ([fw] stats after SIGUSR1, fwCounters), or null
async function backendStats(run) {
  return (await fwCounters(run))?.stats ?? null;
}

// host-side check of the vsock scenario: the echo program saw the guest's stream intact, the host
// client's stream came back intact, and credit ran out both ways on the way (the backend's counters)
async function checkVsockHost(run) {
  const echo = run.vsockEcho.results[0];
  if (!echo) return { pass: false, detail: `no guest connection reached ${VSOCK.uds}_${VSOCK.echoPort}` };
  if (echo.error) return { pass: false, detail: `host echo program: ${echo.error} (after ${echo.bytes} bytes)` };
  if (echo.bytes !== VSOCK.echoBytes) return { pass: false, detail: `host echo program received ${echo.bytes} bytes, the guest sent ${VSOCK.echoBytes}` };
  if (!run.vsockClient) return { pass: false, detail: 'the guest never asked for the host client (BHQ-HOST vsock-connect)' };
  const client = await run.vsockClient;
  if (!client.ok) return { pass: false, detail: `host client → guest port 7000: ${client.detail}` };
  const st = await (run.vsockStats ?? backendStats(run));
  const v = st?.devices.find((d) => d.type === 'vsock')?.counters;
  if (!v) return { pass: false, detail: 'no vsock counters from the backend (SIGUSR1)' };
  const bad = Object.keys(v).filter((k) => /^rst\.(creditOverrun|creditLie|badLength|hostError)/.test(k) || k.startsWith('violation'));
  if (bad.length) return { pass: false, detail: `backend counters show ${bad.map((k) => `${k}=${v[k]}`).join(' ')}` };
  if (!(v.guestOutOfCredit > 0) || !(v.guestCreditWaits > 0)) return { pass: false, detail: `credit never ran out both ways (guestOutOfCredit ${v.guestOutOfCredit ?? 0}, guestCreditWaits ${v.guestCreditWaits ?? 0}): the check did not exercise flow control` };
  return {
    pass: true,
    detail: `host echo checked ${echo.bytes} bytes (${echo.pauses} pauses); host client via CONNECT 7000 (OK ${client.localPort}) got ${client.bytes} bytes back intact in ${client.seconds.toFixed(1)} s; credit ran out ${v.guestOutOfCredit}× guest→host and ${v.guestCreditWaits}× host→guest, ${v.creditUpdates ?? 0} credit updates, no resets`,
  };
}

// host-side check of vsock-restart: the restarted backend sent the re-probed driver one
// TRANSPORT_RESET (docs/vsock.md, "Backend restart"), and the new connection's bytes were intact
async function checkVsockRestart(run) {
  const st = await run.vsockStatsRestart;
  const v = st?.devices.find((d) => d.type === 'vsock')?.counters;
  if (!v) return { pass: false, detail: 'no vsock counters from the restarted backend (BHQ-HOST vsock-stats:restart)' };
  if (v.transportResets !== 1 || v.transportResetOwed !== 0) return { pass: false, detail: `the restarted backend sent ${v.transportResets ?? 0} TRANSPORT_RESET event(s), owes ${v.transportResetOwed}; want exactly one, delivered` };
  const last = run.vsockEcho.results.at(-1);
  if (!last || last.error || last.bytes !== 1 << 20) return { pass: false, detail: `the connection after the restart: ${last ? last.error ?? `${last.bytes} bytes` : 'none reached the host'}` };
  return { pass: true, detail: `the restarted backend sent one TRANSPORT_RESET to the re-probed driver (${v.droppedByTransportReset ?? 0} connection(s) dropped with it); 1 MiB intact through the host echo afterwards` };
}

// an image of `size` bytes written through with pseudo-random data (no holes: an O_DIRECT read of a
// hole or an unwritten extent would not reach the disk) and made durable
function writeImage(file, size) {
  const chunk = createHash('sha512').update(file).digest();
  const buf = Buffer.alloc(1 << 20);
  for (let i = 0; i < buf.length; i += chunk.length) chunk.copy(buf, i, 0, Math.min(chunk.length, buf.length - i));
  for (let i = 0; i < buf.length; i += 4096) buf.writeUInt32LE(i, i); // no two 4 KiB blocks of a MiB alike
  const fd = fs.openSync(file, 'w');
  try {
    for (let off = 0; off < size; off += buf.length) fs.writeSync(fd, buf, 0, Math.min(buf.length, size - off), off);
    fs.fdatasyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

// user + system CPU of a live process, from /proc (clock ticks of 1/100 s on Linux)
function procCpuSeconds(pid) {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const v = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(v[11]) + Number(v[12])) / 100;
  } catch {
    return undefined;
  }
}

// the seed of the guest's random choices (the crash scenario's kill points): BULKHEAD_QEMU_SEED or
// opts.seed replays a run, else a fresh one (printed)
function crashSeed(opts) {
  const v = opts.seed ?? process.env.BULKHEAD_QEMU_SEED;
  if (v === undefined || v === '') return 1 + Math.floor(Math.random() * 0x7ffffffe);
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 0x7fffffff) throw new Error(`BULKHEAD_QEMU_SEED must be an integer in 1..2^31-1, got ${v}`);
  return n;
}

// ---------------------------------------------------------------- main entry

export async function runQemu(opts = {}) {
  const scenarios = opts.scenarios?.length ? opts.scenarios : ALL_SCENARIOS;
  const peer = opts.peer || 'native';
  const arch = opts.arch || 'amd64';
  const backendArch = opts.backendArch || arch;
  quiet = !!opts.quiet;
  setLog(log);
  const arches = [...new Set(peer === 'vm' ? [arch, backendArch] : [arch])];
  arches.forEach(archOf);
  await stage('deps', () => ensureDeps(arches));
  const kits = {};
  for (const a of arches) kits[a] = await guestKit(a, stage);
  const kit = kits[arch];
  const mod = await stage(`module frontend/linux (${arch})`, () => buildModule(kit));
  const blkio = await stage(`tool bhq-blkio (${arch})`, () => buildBlkio(kit));
  // i2c-virtio/gpio-virtio and the guest's i2c-tools/libgpiod: the host architecture's guest only (the
  // tools are the host's binaries; the arm64 board runs no i2c or gpio scenario)
  const lowspeed = arch === hostArch() ? await stage('drivers i2c-virtio gpio-virtio', () => ensureLowSpeedDrivers(kit)) : null;
  const initrd = await stage(`initramfs (${arch})`, () => buildInitramfs(kit, mod, blkio, lowspeed));
  let backendInitrd = null;
  if (peer === 'vm') {
    const bkit = kits[backendArch];
    const uio = await stage(`module runtime/native/linux (${backendArch})`, () => buildModule(bkit, UIOSRC, 'bulkhead_uio.ko'));
    backendInitrd = (await stage(`backend initramfs (${backendArch})`, () => buildBackendInitramfs(bkit, uio))).initrd;
  }

  // opts.runsDir: where run directories go (default .cache/qemu/runs; the tier puts one run under a deep path)
  const dir = path.join(opts.runsDir ?? path.join(CACHE, 'runs'), `${new Date().toISOString().replace(/[:.]/g, '-')}-${process.pid}`);
  fs.mkdirSync(dir, { recursive: true });
  // Unix sockets live in a short folder of their own, whatever the checkout's path: a socket path is
  // limited to 108 bytes, and .cache/qemu/runs/… under a deep checkout is longer.
  const sockDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bhq-'));
  const run = {
    dir, procs: [], stopped: false, sockDir,
    ivSock: path.join(sockDir, 'ivshmem.sock'), consoleSock: path.join(sockDir, 'console.sock'),
    disk: path.join(dir, 'disk.img'), board: path.join(dir, 'board.json'),
    consoleLog: path.join(dir, 'guest-console.log'), hvcLog: path.join(dir, 'hvc0-host.log'),
    backendLog: path.join(dir, 'backend.log'), serverLog: path.join(dir, 'ivshmem-server.log'),
    netPeerLog: path.join(dir, 'net-peer.log'), boardDef: socketsInto(boardFor(scenarios.includes('net'), opts.transport ?? 'msg'), sockDir), netns: null, gpioChecks: [],
    backendKit: kits[backendArch], backendInitrd, vm: null, ref: path.join(dir, 'qemu-ref.img'),
    collectStats: scenarios.some((s) => s.startsWith('bench')), fwStats: [], storageConfig: null,
  };
  // bench-iops: the Bulkhead disk under each storage configuration in turn (the first from boot),
  // both images written through (not sparse: O_DIRECT reads reach the disk) in one host folder
  const iopsBench = scenarios.includes('bench-iops');
  const benchConfigs = opts.benchConfigs?.length ? opts.benchConfigs : BENCH_IOPS_CONFIGS;
  if (iopsBench) for (const c of benchConfigs) if (!STORAGE_CONFIGS[c]) throw new Error(`unknown storage configuration ${c} (have: ${Object.keys(STORAGE_CONFIGS).join(', ')})`);
  if (opts.storageConfig || iopsBench) useStorageConfig(run, opts.storageConfig ?? benchConfigs[0]);
  if (opts.imageDir) {
    fs.mkdirSync(opts.imageDir, { recursive: true });
    run.disk = path.resolve(opts.imageDir, `bulkhead-qemu-${process.pid}.img`);
    run.ref = path.resolve(opts.imageDir, `qemu-ref-${process.pid}.img`);
    run.boardDef.services.disk0.path = run.disk;
  }
  const needsBackend = !scenarios.every((s) => s === 'noback');
  const effectivePeer = needsBackend ? peer : peer.startsWith('fake') ? 'fake:absent' : 'none';
  const result = { scenarios: {}, pass: false, dir, arch, consoleLog: run.consoleLog, timings: {} };
  let qemu;
  const benchSeconds = opts.benchSeconds ?? 5;
  const benchRounds = opts.benchRounds ?? 3;
  // bench-iops: per configuration 4 workloads × rounds × 2 disks of (ramp 1 s + benchSeconds), plus restarts
  const timeoutS = opts.timeout ?? (scenarios.includes('crash') ? 900 : 300 + (iopsBench ? benchConfigs.length * 8 * benchRounds * (benchSeconds + 4) + 60 : 0));
  let netPeer = null;
  try {
    if (run.boardDef.services.net0 && effectivePeer === 'native') await stage('network namespace', () => setupNetns(run));
    fs.closeSync(fs.openSync(run.disk, 'w'));
    const diskSize = scenarios.some((s) => s.startsWith('bench')) ? BENCH_DISK_SIZE : DISK_SIZE;
    fs.truncateSync(run.disk, diskSize);
    if (iopsBench) await stage(`images (2 × ${diskSize >> 20} MiB written in ${path.dirname(run.disk)})`, () => { writeImage(run.disk, diskSize); writeImage(run.ref, diskSize); });
    await stage(`backend (${effectivePeer})`, () => startBackend(run, effectivePeer));
    const hvc = effectivePeer === 'native' ? consoleClient(run) : null;
    // the host program the guest's vsock connections to port 5000 reach: <uds>_5000 (Firecracker's convention)
    if (scenarios.some((x) => x.startsWith('vsock')) && effectivePeer === 'native') run.vsockEcho = echoServer(path.join(run.sockDir, `${VSOCK.uds}_${VSOCK.echoPort}`), VSOCK.echoSeed);
    if (run.netns) netPeer = await stage('net-peer', () => startNetPeer(run, timeoutS + 30));

    const devs = effectivePeer.startsWith('fake') ? 1 : run.boardDef.devices.length;
    const netDev = run.boardDef.devices.find((d) => d.type === 'net');
    const netArg = netDev ? ` bh.net=${netDev.mac},${NET.guestIp},${NET.hostIp},${NET.port}` : '';
    const ring = opts.ring ?? 'split';
    if (!['split', 'packed'].includes(ring)) throw new Error(`ring must be split or packed, not ${ring}`);
    const regblock = (opts.transport ?? 'msg') === 'regblock';
    if (regblock && ring === 'packed') throw new Error('--ring packed needs --transport msg: bulkhead_regblock.ko builds split rings only');
    let modparams = [scenarios.includes('noback') ? 'attach_timeout_ms=2000' : 'attach_timeout_ms=5000', ...(regblock ? [] : [`packed_ring=${ring === 'packed' ? 1 : 0}`])].join(',');
    // crash: a killed backend is seen by its silence; a shorter heartbeat keeps 20 rounds short
    if (scenarios.includes('crash')) modparams += ',heartbeat_ms=500';
    if (opts.modparams) modparams += `,${opts.modparams}`;
    const rounds = process.env.BULKHEAD_QEMU_CRASH_ROUNDS ? ` bh.crash_rounds=${Number(process.env.BULKHEAD_QEMU_CRASH_ROUNDS) | 0}` : '';
    const seed = crashSeed(opts);
    if (scenarios.includes('crash')) log(`crash: seed ${seed} (BULKHEAD_QEMU_SEED=${seed} replays its kill points)`);
    result.seed = seed;
    const benchArg = iopsBench ? ` bh.bench=${benchConfigs.join('+')} bh.bench_seconds=${benchSeconds} bh.bench_rounds=${benchRounds}` : '';
    const module = (opts.transport ?? 'msg') === 'regblock' ? ' bh.module=bulkhead_regblock' : '';
    const append = `${module} bh.scenarios=${scenarios.join(',')} bh.devs=${devs} bh.modparams=${modparams} bh.seed=${seed}${rounds} bh.ring=${ring}${netArg}${benchArg}${opts.kernelArgs ? ` ${opts.kernelArgs}` : ''}`;
    const qargs = qemuArgs(run, kit, 512, initrd.initrd, append);
    if (scenarios.some((s) => s.startsWith('bench'))) {
      // the baseline: QEMU's own virtio-blk-pci over the same kind of image file, in the same folder;
      // for bench-iops O_DIRECT on io_uring (cache=none,aio=io_uring), like the async-direct service
      if (!iopsBench) {
        fs.closeSync(fs.openSync(run.ref, 'w'));
        fs.truncateSync(run.ref, diskSize);
      }
      const cache = iopsBench ? ',cache=none,aio=io_uring' : '';
      qargs.push('-drive', `file=${run.ref},if=none,id=ref,format=raw${cache}`, '-device', 'virtio-blk-pci,drive=ref');
    }
    writeCmd(path.join(dir, 'qemu.cmd'), kit, qargs);
    await stage(`guest ${arch} (${scenarios.join(' ')})`, async () => {
      const out = fs.openSync(run.consoleLog, 'w');
      qemu = spawn(kit.m.qemu, qargs, { stdio: ['ignore', 'pipe', 'pipe'] });
      qemu.exited = null;
      qemu.on('exit', (code, sig) => { qemu.exited = { code, sig }; });
      run.procs.push(qemu);
      let text = '';
      const started = {};
      let pending = '';
      let outOpen = true;
      const onData = (d) => {
        if (outOpen) fs.writeSync(out, d);
        text += d.toString('latin1');
        pending += d.toString('latin1');
        const lines = pending.split(/\r?\n/);
        pending = lines.pop();
        for (const line of lines) {
          const h = /BHQ-HOST (\S+)(?: (\S+))?/.exec(line);
          if (h) hostAction(run, h[1], h[2]).catch((e) => log(`  host action ${h[1]} failed: ${e.message}`));
          let m = /BHQ-START (\S+)/.exec(line);
          if (m) { started[m[1]] = Date.now(); log(`  ${m[1]} (${Object.keys(started).length}/${scenarios.length}) ...`); }
          m = /BHQ-RESULT (\S+) (PASS|FAIL) ?(.*)$/.exec(line);
          if (m) log(`  ${m[1]}: ${m[2]} ${m[3]}`);
          if (/BHQ-BOOT/.test(line)) log('  guest booted');
        }
      };
      qemu.stdout.on('data', onData);
      qemu.stderr.on('data', onData);
      // 'close': exited and its output drained (the log fd is closed after the last write)
      const exited = new Promise((r) => qemu.on('close', (code, sig) => r({ code, sig })));
      let th;
      const timer = new Promise((r) => { th = setTimeout(() => r({ timeout: true }), timeoutS * 1000); });
      const how = await Promise.race([exited, timer]);
      clearTimeout(th);
      outOpen = false;
      fs.closeSync(out);
      result.guestExit = how;
      result.console = parseConsole(text);
      if (how.timeout) throw new Error(`guest did not finish within ${timeoutS}s`);
      return { note: `qemu exit ${how.code ?? how.sig}` };
    }).catch((e) => { result.error = e.message; });

    if (scenarios.includes('vsock') && run.vsockEcho) result.scenarios['vsock-host'] = await checkVsockHost(run);
    if (scenarios.includes('vsock-restart') && run.vsockEcho) result.scenarios['vsock-restart-host'] = await checkVsockRestart(run);
    run.vsockEcho?.close();
    if (run.fw && !run.fw.exited) result.backendCpuS = procCpuSeconds(run.fw.pid);
    if (run.collectStats) await fwSnapshot(run);
    result.fwStats = run.fwStats;
    if (result.backendCpuS !== undefined) log(`backend CPU (bulkhead-fw user+system): ${result.backendCpuS.toFixed(2)} s`);
    if (run.vm) await stage('backend VM power off', () => powerOffVm(run));
    const c = result.console || { results: {}, files: {} };
    for (const s of [...scenarios, 'dmesg', 'module']) {
      const r = c.results[s];
      if (r) result.scenarios[s] = r;
      else if (s !== 'module' && s !== 'dmesg') result.scenarios[s] = { pass: false, detail: result.error || 'no verdict on the console' };
      else if (s === 'dmesg' && !c.done) result.scenarios[s] = { pass: false, detail: 'guest did not finish' };
    }
    if (c.oops) result.scenarios.dmesg = { pass: false, detail: `kernel: ${c.oops}` };
    if (scenarios.includes('blk') && result.scenarios.blk?.pass)
      result.scenarios['blk-host'] = verifyImage(run.disk, c.files);
    if (scenarios.includes('crash') && result.scenarios.crash?.pass)
      result.scenarios['crash-host'] = verifyImage(run.disk, c.files);
    if (scenarios.includes('console') && hvc) {
      const ok = hvc.seen.length > 0;
      result.scenarios['console-host'] = { pass: ok, detail: ok ? `host read 'guest-to-host ${hvc.seen[0]}' and answered` : `host read nothing from the console socket (${run.hvcLog})` };
    }
    if (scenarios.includes('net') && netPeer) result.scenarios['net-host'] = checkNetPeer(netPeer, c.netfiles ?? []);
    if (scenarios.includes('i2c') && !run.vm) result.scenarios['i2c-host'] = checkEeprom(path.join(run.dir, 'eeprom.bin'), c.eeprom ?? []);
    if (scenarios.includes('gpio') && !run.vm) result.scenarios['gpio-host'] = checkGpioHost(run.gpioChecks);
    result.pass = !result.error && Object.values(result.scenarios).every((r) => r.pass);
  } catch (e) {
    result.error = e.message;
    result.pass = false;
  } finally {
    run.stopped = true;
    await powerOffVm(run);
    for (const p of run.procs.reverse()) await stopProc(p);
    if (run.netns) ipCmd(['netns', 'del', run.netns], { allowFail: true });
    fs.rmSync(sockDir, { recursive: true, force: true });
    if (opts.imageDir && !opts.keep) for (const f of [run.disk, run.ref]) fs.rmSync(f, { force: true });
  }
  for (const [s, r] of Object.entries(result.scenarios)) log(`${r.pass ? 'PASS' : 'FAIL'} ${s}: ${r.detail}`);
  if (result.pass && !opts.keep) {
    fs.rmSync(dir, { recursive: true, force: true });
  } else {
    log(`run directory kept: ${path.relative(ROOT, dir)}`);
    if (!result.pass) log(`guest console log: ${path.relative(ROOT, run.consoleLog)}; backend log: ${path.relative(ROOT, run.backendLog)}`);
  }
  if (result.error) log(`error: ${result.error}`);
  return result;
}

// ---------------------------------------------------------------- CLI

// `bulkhead qemu …` and `npm run qemu -- …` (scripts/cli/qemu.mjs defines the options): returns the exit code.
export async function runCli(o) {
  const r = await runQemu(o);
  if (o.json) console.log(JSON.stringify({ pass: r.pass, scenarios: r.scenarios, error: r.error, consoleLog: r.pass ? undefined : r.consoleLog }));
  const n = Object.values(r.scenarios);
  console.log(`${n.filter((x) => x.pass).length} passed, ${n.filter((x) => !x.pass).length} failed`);
  return r.pass ? 0 : 1;
}
