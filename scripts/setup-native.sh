#!/bin/bash
# Installs what the native runtime and its tests need (liburing-dev among them: asynchronous storage),
# fetches Debian's QuickJS source package (trixie) and the arm64 liburing-dev package (for the aarch64
# firmware) into .cache/ without touching the system's apt configuration, and builds:
#   .cache/quickjs/{x86_64,aarch64}/libquickjs.a   QuickJS at -O2 (the packaged .a is ~2x slower)
#   build/bulkhead-fw, build/aarch64/bulkhead-fw   the partition firmware (runtime/native)
#   build/bulkhead-ivshmem-server                  the ivshmem server (Debian ships none)
#   build/bulkhead_port.node                       the Node addon behind runtime/native/port.mjs
# and unpacks Debian's arm64 liburing-dev and libmbedtls-dev into .cache/sysroot/aarch64 for the cross build.
# Idempotent: a second run checks and returns in seconds. Runs as root on Debian 12 (CI).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE="$ROOT/.cache"
QJS_PKG=quickjs
QJS_SUITE=trixie
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo

# Progress: every line says how long setup has run; each stage says when it starts and how long it took.
log() { echo "setup-native [${SECONDS}s]: $*" >&2; }
stage() { local name=$1 t=$SECONDS; shift; log "$name ..."; "$@"; log "$name done in $((SECONDS - t))s"; }

# --- 1. Debian packages ---------------------------------------------------------------------------
PKGS=(gcc g++ make libc6-dev liburing-dev libmbedtls-dev gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static dpkg-dev xz-utils iproute2)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- 2. QuickJS source from Debian trixie, through a private apt configuration ---------------------
# The mirror is whatever this machine's apt already uses: taken from its sources at run time, so no
# host name is written into the repository.
mirror_uri() {
  local uri=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    # deb822: the first URIs line of a stanza whose suites are not -security
    uri=$(awk '/^URIs:/{u=$2} /^Suites:/{ if ($0 !~ /-security/ && u != "" && !done) {print u; done=1} }' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1=="deb" && $0 !~ /security/ { for (i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit} }' /etc/apt/sources.list)
  fi
  [ -n "$uri" ] || { log "cannot find a Debian mirror URI in /etc/apt/sources*"; exit 1; }
  echo "$uri"
}
QJS_SRC="$CACHE/quickjs/src"
if [ ! -f "$QJS_SRC/quickjs.c" ]; then
  APTDIR="$CACHE/apt"
  mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial" "$APTDIR/src"
  uri=$(mirror_uri)
  echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $QJS_SUITE main" > "$APTDIR/sources.list"
  APT_OPTS=(-o "Dir::Etc::SourceList=$APTDIR/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
            -o "Dir::State::Lists=$APTDIR/lists" -o "Dir::Cache=$APTDIR/cache" -o "APT::Sandbox::User=root")
  log "fetching $QJS_PKG source from $QJS_SUITE"
  apt-get "${APT_OPTS[@]}" -qq update
  rm -rf "$APTDIR/src"/* && mkdir -p "$APTDIR/src"
  (cd "$APTDIR/src" && apt-get "${APT_OPTS[@]}" -qq source --download-only "$QJS_PKG" >/dev/null)
  dsc=$(ls "$APTDIR/src"/${QJS_PKG}_*.dsc | head -1)
  rm -rf "$QJS_SRC.tmp"
  mkdir -p "$CACHE/quickjs"
  # apt verified the .dsc and tarballs against the signed Sources index; dpkg-source applies Debian's
  # patches (it copies the tarballs next to the target, so they are removed afterwards).
  dpkg-source --no-check -x "$dsc" "$QJS_SRC.tmp" >/dev/null
  rm -f "$CACHE/quickjs"/${QJS_PKG}_*
  rm -rf "$QJS_SRC" && mv "$QJS_SRC.tmp" "$QJS_SRC"
fi

# --- 3. The aarch64 firmware's static libraries: Debian's arm64 liburing-dev and libmbedtls-dev -----
# (this machine's suite), unpacked into .cache/sysroot/aarch64, never installed: a private apt
# configuration with arm64 as its architecture and an empty dpkg status, so the host's apt and dpkg
# are not touched. The x86-64 build links the same libraries from the packages installed above.
ARM_SYSROOT="$CACHE/sysroot/aarch64"
ARM_DEBS=(liburing-dev libmbedtls-dev)
if [ ! -f "$ARM_SYSROOT/usr/lib/aarch64-linux-gnu/liburing.a" ] || [ ! -f "$ARM_SYSROOT/usr/lib/aarch64-linux-gnu/libmbedcrypto.a" ]; then
  APTDIR="$CACHE/apt-arm64"
  mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial" "$APTDIR/deb"
  suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
  echo "deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $(mirror_uri) $suite main" > "$APTDIR/sources.list"
  APT_OPTS=(-o "Dir::Etc::SourceList=$APTDIR/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
            -o "Dir::State::Lists=$APTDIR/lists" -o "Dir::Cache=$APTDIR/cache" -o "APT::Sandbox::User=root"
            -o "APT::Architecture=arm64" -o "APT::Architectures::=arm64" -o "Dir::State::status=/dev/null")
  log "fetching ${ARM_DEBS[*]} (arm64) from $suite"
  apt-get "${APT_OPTS[@]}" -qq update
  rm -f "$APTDIR/deb"/*.deb
  (cd "$APTDIR/deb" && apt-get "${APT_OPTS[@]}" -qq download "${ARM_DEBS[@]/%/:arm64}" >/dev/null)
  rm -rf "$ARM_SYSROOT.tmp" && mkdir -p "$ARM_SYSROOT.tmp"
  for d in "${ARM_DEBS[@]}"; do dpkg-deb -x "$APTDIR/deb"/${d}_*_arm64.deb "$ARM_SYSROOT.tmp"; done
  rm -rf "$ARM_SYSROOT" && mv "$ARM_SYSROOT.tmp" "$ARM_SYSROOT"
fi

# --- 4. Build -------------------------------------------------------------------------------------------
JOBS=$(nproc 2>/dev/null || echo 2)
# make decides what is stale; a build from scratch compiles QuickJS twice (about a minute each on 2 cores)
stage "build x86_64 (QuickJS, firmware, ivshmem server, node addon, loadgen)" make -s -C "$ROOT/runtime/native" -j"$JOBS" ARCH=x86_64 all
stage "build aarch64 firmware (cross)" make -s -C "$ROOT/runtime/native" -j"$JOBS" ARCH=aarch64 fw
log "ok: $(cd "$ROOT" && ls build/bulkhead-fw build/aarch64/bulkhead-fw build/bulkhead-ivshmem-server build/bulkhead_port.node | tr '\n' ' ')"
