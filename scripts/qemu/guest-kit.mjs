// What a QEMU guest of one architecture needs, all of it from Debian (docs/qemu.md, "Boards"):
//   - the QEMU machine: binary, machine/cpu options, serial console device;
//   - the kernel: linux-image-<kver>, unpacked with dpkg -x (never installed), depmod run on it;
//   - a kbuild tree to build our modules (frontend/linux, runtime/native/linux) against that kernel;
//   - the userland of the busybox initramfs: busybox, mkfs.ext4 and fsck.ext4 with their libraries.
//
// amd64, the host's own architecture: the installed linux-headers-amd64 (and the matching linux-image
// fetched with the host's apt), the host's /bin/busybox and e2fsprogs.
//
// arm64 (any architecture that is not the host's): Debian's arm64 archive through a private apt
// configuration under .cache/qemu/apt-<arch>/ — the mirror URIs are the machine's own Debian sources,
// read at run time; the system's apt configuration, lists and dpkg database are never touched. The
// headers are unpacked next to linux-kbuild-6.1 *of the build architecture*: Debian's cross arrangement
// (the headers' scripts/ is a symlink into linux-kbuild-6.1, which is Multi-Arch: foreign) gives host
// binaries for Kbuild's helpers (fixdep, modpost, ...), and gcc-<triplet> cross-compiles.
import fs from 'node:fs';
import path from 'node:path';
import { CACHE, sh, hashOf } from './util.mjs';

/** The QEMU machines a guest can run on, by Debian architecture. */
export const ARCHES = {
  amd64: {
    qemu: 'qemu-system-x86_64', qemuDeb: 'qemu-system-x86', machine: [], console: 'ttyS0',
    triplet: 'x86_64-linux-gnu', fw: 'build/bulkhead-fw',
  },
  arm64: {
    // TCG; GICv2 with its v2m frame gives the ivshmem-doorbell device its MSI-X vectors
    qemu: 'qemu-system-aarch64', qemuDeb: 'qemu-system-arm', machine: ['-M', 'virt', '-cpu', 'cortex-a57'],
    console: 'ttyAMA0', triplet: 'aarch64-linux-gnu', fw: 'build/aarch64/bulkhead-fw',
    uring: '.cache/sysroot/aarch64', // liburing-dev:arm64, unpacked by setup:native (the aarch64 firmware links it)
  },
};

// the guest userland of a foreign architecture: busybox (static) and e2fsprogs with the libraries
// mke2fs/e2fsck link (their NEEDED entries are resolved inside the unpacked tree, so a missing one fails
// the stage by name)
const FOREIGN_USERLAND = ['busybox-static', 'e2fsprogs', 'libext2fs2', 'libcom-err2', 'libblkid1', 'libuuid1', 'libc6'];
const DEBIAN_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

let hostArchMemo = null;
/** The host's Debian architecture (dpkg --print-architecture). */
export function hostArch() {
  hostArchMemo ??= sh('dpkg', ['--print-architecture']).stdout.trim();
  return hostArchMemo;
}

/** The cross compiler package and prefix for a foreign architecture, or null for the host's own. */
export function crossCompiler(arch) {
  if (arch === hostArch()) return null;
  const t = ARCHES[arch].triplet;
  return { deb: `gcc-${t.replace(/_/g, '-')}`, prefix: `${t}-` };
}

export function archOf(name) {
  if (!ARCHES[name]) throw new Error(`unknown guest architecture '${name}' (one of: ${Object.keys(ARCHES).join(', ')})`);
  return ARCHES[name];
}

// ---------------------------------------------------------------- apt

/**
 * The Debian archive entries of the machine's own apt sources (deb822 debian.sources and the one-line
 * sources.list): [{ uri, suite, components, signedBy }]. Third-party sources in other files are not read.
 */
export function debianSources() {
  const out = [];
  const deb822 = '/etc/apt/sources.list.d/debian.sources';
  if (fs.existsSync(deb822)) {
    for (const stanza of fs.readFileSync(deb822, 'utf8').split(/\n\s*\n/)) {
      const f = {};
      for (const line of stanza.split('\n')) {
        const m = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
        if (m) f[m[1].toLowerCase()] = m[2].trim();
      }
      if (!f.uris || !f.suites || !(f.types || '').split(/\s+/).includes('deb') || /^no$/i.test(f.enabled || '')) continue;
      for (const uri of f.uris.split(/\s+/))
        for (const suite of f.suites.split(/\s+/))
          out.push({ uri, suite, components: f.components || 'main', signedBy: f['signed-by'] || DEBIAN_KEYRING });
    }
  }
  const list = '/etc/apt/sources.list';
  if (fs.existsSync(list)) {
    for (const line of fs.readFileSync(list, 'utf8').split('\n')) {
      const m = /^deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s+(.+)$/.exec(line.trim());
      if (!m) continue;
      const signed = /signed-by=(\S+)/.exec(m[1] || '');
      out.push({ uri: m[2], suite: m[3], components: m[4].trim(), signedBy: signed ? signed[1] : DEBIAN_KEYRING });
    }
  }
  if (!out.length) throw new Error('no Debian archive in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list');
  return out;
}

/**
 * apt for `arch` (packages of the build architecture too, as `name:<host arch>`), configured privately
 * under .cache/qemu/apt-<arch>/: its own sources (the machine's Debian entries), lists, cache and an
 * empty dpkg status. Only `apt-get download` and `apt-cache show` are used with it.
 */
export function privateApt(arch) {
  const dir = path.join(CACHE, `apt-${arch}`);
  const archs = [...new Set([arch, hostArch()])];
  const opts = [
    '-o', `Dir::Etc::SourceList=${path.join(dir, 'sources.list')}`, '-o', 'Dir::Etc::SourceParts=/dev/null',
    '-o', 'Dir::Etc::Preferences=/dev/null', '-o', 'Dir::Etc::PreferencesParts=/dev/null',
    '-o', `Dir::State::Lists=${path.join(dir, 'lists')}`, '-o', `Dir::Cache=${path.join(dir, 'cache')}`,
    '-o', `Dir::State::status=${path.join(dir, 'status')}`,
    '-o', `APT::Architecture=${arch}`, ...archs.flatMap((a) => ['-o', `APT::Architectures::=${a}`]),
    '-o', 'Acquire::Languages=none', '-o', 'APT::Sandbox::User=root',
  ];
  const apt = {
    arch, opts, dir,
    ready: () => fs.existsSync(path.join(dir, 'lists', '.done')),
    update() {
      for (const d of ['lists/partial', 'cache/archives/partial']) fs.mkdirSync(path.join(dir, d), { recursive: true });
      fs.writeFileSync(path.join(dir, 'status'), '');
      const lines = debianSources().map((s) => `deb [arch=${archs.join(',')} signed-by=${s.signedBy}] ${s.uri} ${s.suite} ${s.components}`);
      fs.writeFileSync(path.join(dir, 'sources.list'), lines.join('\n') + '\n');
      fs.rmSync(path.join(dir, 'lists', '.done'), { force: true });
      fs.rmSync(path.join(dir, 'kernel.json'), { force: true });
      sh('apt-get', [...opts, '-q', 'update']);
      fs.writeFileSync(path.join(dir, 'lists', '.done'), `${new Date().toISOString()}\n${lines.join('\n')}\n`);
      return { note: `${lines.length} Debian sources of this machine, ${archs.join('+')}` };
    },
    /** The control fields of a package's candidate version ({} when apt does not know it). */
    show(name) {
      const r = sh('apt-cache', [...opts, 'show', '--no-all-versions', name], { allowFail: true });
      const f = {};
      if (r.status === 0) for (const m of r.stdout.matchAll(/^([A-Za-z-]+): (.*)$/gm)) f[m[1]] ??= m[2];
      return f;
    },
  };
  return apt;
}

// the host's own apt, for packages of the host's architecture (the amd64 guest kernel)
const HOST_APT = { opts: [], ready: () => true, update: () => sh('apt-get', ['update', '-q'], { allowFail: true }) };

let say = () => {};
/** Where guest-kit says what it downloads (the runner's log). */
export function setLog(fn) {
  say = fn;
}

/**
 * The .deb files of `names` (`pkg`, `pkg:arch`, `pkg=version`, `pkg:arch=version`) in .cache/qemu/deb/,
 * downloaded with `apt` when missing (after an apt update when the lists have moved on).
 */
export function downloadDebs(apt, names) {
  const dl = path.join(CACHE, 'deb');
  fs.mkdirSync(dl, { recursive: true });
  const find = (spec) => {
    const m = /^([^:=]+)(?::([^=]+))?(?:=(.+))?$/.exec(spec);
    const [, name, arch = apt.arch, version] = m;
    const ver = version ? version.replace(/:/g, '%3a') : null; // apt-get download's file name of an epoch
    return fs.readdirSync(dl).find((f) => f.startsWith(`${name}_`) && f.endsWith('.deb') &&
      (!ver || f.startsWith(`${name}_${ver}_`)) && (!arch || f.endsWith(`_${arch}.deb`) || f.endsWith('_all.deb')));
  };
  const missing = names.filter((n) => !find(n));
  if (missing.length) {
    say(`  downloading ${missing.join(' ')} from Debian (once; cached in .cache/qemu/deb)`);
    let r = sh('apt-get', [...apt.opts, '-q', 'download', ...missing], { cwd: dl, allowFail: true });
    if (r.status !== 0) {
      apt.update();
      r = sh('apt-get', [...apt.opts, '-q', 'download', ...missing], { cwd: dl });
    }
  }
  return names.map((n) => {
    const f = find(n);
    if (!f) throw new Error(`apt-get download ${n} produced no .deb in ${dl}`);
    return path.join(dl, f);
  });
}

// ---------------------------------------------------------------- kernel, headers, userland

/** The newest installed /usr/src/linux-headers-*-amd64 version (the host kit's kernel), or null. */
export function headersVersion() {
  if (!fs.existsSync('/usr/src')) return null;
  const vs = fs.readdirSync('/usr/src').map((d) => /^linux-headers-(.+-amd64)$/.exec(d)?.[1]).filter(Boolean);
  vs.sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  return vs.at(-1) ?? null;
}

/** The guest kernel: the linux-image package of `kver`, unpacked (never installed), depmod run on it. */
export function ensureKernel(kver, apt = HOST_APT) {
  const dir = path.join(CACHE, 'kernel', kver);
  const vmlinuz = path.join(dir, 'boot', `vmlinuz-${kver}`);
  if (fs.existsSync(path.join(dir, '.done'))) return { vmlinuz, kroot: dir, note: 'cached' };
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const [deb] = downloadDebs(apt, [`linux-image-${kver}`]);
  sh('dpkg', ['-x', deb, dir]);
  if (!fs.existsSync(vmlinuz)) throw new Error(`${path.basename(deb)} has no boot/vmlinuz-${kver}`);
  sh('depmod', ['-b', dir, kver]);
  fs.writeFileSync(path.join(dir, '.done'), path.basename(deb) + '\n');
  return { vmlinuz, kroot: dir, note: path.basename(deb) };
}

// Depends entries of a control field: [{ name, op, version }]
function depends(field = '') {
  return field.split(',').map((d) => {
    const m = /^\s*(\S+)(?:\s*\(([<>=]+)\s*([^)]+)\))?/.exec(d.split('|')[0]);
    return m ? { name: m[1], op: m[2], version: m[3]?.trim() } : null;
  }).filter(Boolean);
}

/**
 * Debian's current kernel for the private apt's architecture: { kver, version, common, kbuild } from the
 * linux-image-<arch> metapackage and its headers' Depends (-common, linux-kbuild-*), resolved once per
 * apt update (apt-cache takes seconds on the full lists) and kept in kernel.json next to them.
 */
export function foreignKernel(apt) {
  const file = path.join(apt.dir, 'kernel.json');
  if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, 'utf8'));
  const meta = `linux-image-${apt.arch}`;
  const image = depends(apt.show(meta).Depends).find((d) => d.name.startsWith('linux-image-'));
  if (!image) throw new Error(`${meta} is not in Debian's ${apt.arch} lists (${path.join(apt.dir, 'lists')})`);
  const kver = image.name.slice('linux-image-'.length);
  const f = apt.show(`linux-headers-${kver}`);
  const deps = depends(f.Depends);
  const common = deps.find((d) => d.name.endsWith('-common'));
  const kbuild = deps.find((d) => d.name.startsWith('linux-kbuild-'));
  if (!f.Version || !common || !kbuild) throw new Error(`linux-headers-${kver} ${f.Version ?? '(not in the lists)'}: no -common or linux-kbuild dependency in '${f.Depends}'`);
  const k = { kver, version: f.Version, common: `${common.name}=${common.version ?? f.Version}`, kbuild: kbuild.name };
  fs.writeFileSync(file, JSON.stringify(k) + '\n');
  return k;
}

/**
 * linux-headers-<kver> (and its -common) of the foreign architecture unpacked with linux-kbuild of the
 * host's, so its scripts/ symlink lands on host binaries; the headers' Makefile include is pointed
 * into the unpacked tree. Returns the kbuild directory (KDIR).
 */
export function ensureHeaders(k, apt) {
  const { kver } = k;
  const dir = path.join(CACHE, 'headers', kver);
  const kdir = path.join(dir, 'usr/src', `linux-headers-${kver}`);
  if (fs.existsSync(path.join(dir, '.done'))) return { kdir, note: 'cached' };
  // the kbuild of the build architecture (Multi-Arch: foreign): the headers' own version satisfies '>='
  const debs = downloadDebs(apt, [`linux-headers-${kver}=${k.version}`, k.common, `${k.kbuild}:${hostArch()}=${k.version}`]);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  for (const d of debs) sh('dpkg', ['-x', d, dir]);
  const mk = path.join(kdir, 'Makefile');
  fs.writeFileSync(mk, fs.readFileSync(mk, 'utf8').replace(/^include \/usr\/src\//m, `include ${path.join(dir, 'usr/src')}/`));
  // the one thing that must hold for a cross build: Kbuild's helpers run here
  const fixdep = path.join(kdir, 'scripts/basic/fixdep');
  let out;
  try { const r = sh(fixdep, [], { allowFail: true }); out = `${r.stdout}${r.stderr}`; } catch (e) { out = e.message; }
  if (!/Usage: fixdep/.test(out))
    throw new Error(`${fixdep} does not run on this host (${out.trim().slice(0, 200)}): Kbuild's helpers must be ${hostArch()} binaries`);
  fs.writeFileSync(path.join(dir, '.done'), debs.map((d) => path.basename(d)).join('\n') + '\n');
  return { kdir, note: debs.map((d) => path.basename(d)).join(' ') };
}

/** busybox-static, e2fsprogs and its libraries of the foreign architecture, unpacked into one root. */
export function ensureUserland(apt) {
  const debs = downloadDebs(apt, FOREIGN_USERLAND);
  const key = hashOf(debs.map((d) => path.basename(d)));
  const dir = path.join(CACHE, `userland-${apt.arch}-${key}`);
  if (fs.existsSync(path.join(dir, '.done'))) return { sysroot: dir, key, note: 'cached' };
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  for (const d of debs) sh('dpkg', ['-x', d, dir]);
  fs.writeFileSync(path.join(dir, '.done'), debs.map((d) => path.basename(d)).join('\n') + '\n');
  return { sysroot: dir, key, note: `${debs.length} packages` };
}

/**
 * Everything a guest of `arch` needs, each step a stage of the caller's: { arch, m (ARCHES entry), kver,
 * vmlinuz, kroot, kdir, make (extra make arguments), sysroot, key }.
 */
export async function guestKit(arch, stage) {
  const m = archOf(arch);
  if (arch === hostArch()) {
    const kver = headersVersion();
    if (!kver) throw new Error('no /usr/src/linux-headers-*-amd64: install linux-headers-amd64');
    const kern = await stage(`kernel ${kver}`, () => ensureKernel(kver));
    return { arch, m, kver, ...kern, kdir: `/usr/src/linux-headers-${kver}`, make: [], sysroot: '/', key: 'host' };
  }
  const apt = privateApt(arch);
  if (!apt.ready()) await stage(`apt lists (${arch}, private)`, () => apt.update());
  const k = foreignKernel(apt);
  const { kver } = k;
  const kern = await stage(`kernel ${kver}`, () => ensureKernel(kver, apt));
  const hdr = await stage(`headers ${kver} + ${k.kbuild}:${hostArch()}`, () => ensureHeaders(k, apt));
  const user = await stage(`userland (${arch})`, () => ensureUserland(apt));
  return { arch, m, kver, ...kern, kdir: hdr.kdir, make: [`CROSS_COMPILE=${crossCompiler(arch).prefix}`], sysroot: user.sysroot, key: user.key };
}

// ---------------------------------------------------------------- ELF

// the program interpreter and NEEDED libraries of an ELF file (readelf reads any architecture)
function elfDeps(file) {
  const r = sh('readelf', ['-W', '-d', '-l', file]);
  const interp = /Requesting program interpreter: ([^\]]+)\]/.exec(r.stdout)?.[1] ?? null;
  const needed = [...r.stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
  return { interp, needed };
}

// a path inside `sysroot` with symlinks resolved inside it (an absolute link target is sysroot-relative)
function realIn(sysroot, p) {
  for (let i = 0; i < 40; i++) {
    const full = path.join(sysroot, p);
    let st;
    try { st = fs.lstatSync(full); } catch { return null; }
    if (!st.isSymbolicLink()) return p;
    const t = fs.readlinkSync(full);
    p = t.startsWith('/') ? t : path.join(path.dirname(p), t);
  }
  return null;
}

/**
 * Copies `bin` (a path inside kit.sysroot) to `root`/sbin/ and its interpreter and libraries, found in
 * the sysroot's library directories, to the same paths under `root`.
 */
export function copyWithLibs(kit, bin, root) {
  const t = kit.m.triplet;
  const libDirs = [`/lib/${t}`, `/usr/lib/${t}`, '/lib64', '/usr/lib64', '/lib', '/usr/lib'];
  const put = (rel, dst) => {
    const real = realIn(kit.sysroot, rel);
    if (!real) throw new Error(`${rel} is missing in ${kit.sysroot}`);
    fs.mkdirSync(path.dirname(dst), { recursive: true });
    fs.copyFileSync(path.join(kit.sysroot, real), dst);
    return path.join(kit.sysroot, real);
  };
  const queue = [put(bin, path.join(root, 'sbin', path.basename(bin)))];
  fs.chmodSync(path.join(root, 'sbin', path.basename(bin)), 0o755);
  while (queue.length) {
    const { interp, needed } = elfDeps(queue.shift());
    const wanted = interp ? [interp] : [];
    for (const n of needed) {
      const dir = libDirs.find((d) => realIn(kit.sysroot, path.join(d, n)));
      if (!dir) throw new Error(`${bin} needs ${n}, not in ${libDirs.join(' ')} of ${kit.sysroot}`);
      wanted.push(path.join(dir, n));
    }
    for (const w of wanted) {
      const dst = path.join(root, w);
      if (fs.existsSync(dst)) continue;
      queue.push(put(w, dst));
      fs.chmodSync(dst, 0o755);
    }
  }
}
