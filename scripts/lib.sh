# shellcheck shell=bash
# Shared by the scripts in this folder: where the Python 3.14 environment lives and how to run
# a command inside it. Sourced, not executed.
#
# Current Home Assistant needs Python >= 3.14.2. We use, in this order:
#   1. a python3.14 (>= 3.14.2) on PATH, with a virtualenv in the cache;
#   2. on Debian as root: a cached Debian sid chroot with python3.14, the checkout bind-mounted at the
#      same path inside a private mount namespace (the mounts vanish with the process, on every exit
#      path, even SIGKILL);
#   3. otherwise: fail with a message saying what to install.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_DIR="${DC_MESH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dc-mesh}"
CHROOT_DIR="$CACHE_DIR/sid-root"
CHROOT_VENV="/opt/dc-mesh/venv"          # path inside the chroot
NATIVE_VENV="$CACHE_DIR/venv-native"
DEBIAN_MIRROR="${DC_MESH_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# Packages of the chroot: Python 3.14 with headers and a C++ compiler (HA builds some wheels at run
# time), and the firmware toolchain (host tests with cmocka, the ESP32-C6 RISC-V cross build).
# Real components of the tests: Debian's Chromium, its WebDriver and a font (tests/browser), and
# the mosquitto MQTT broker (tests of MQTT publishing).
TEST_PACKAGES="chromium chromium-driver fonts-dejavu-core mosquitto"
CHROOT_PACKAGES="python3,python3-venv,python3-dev,g++,make,cmake,git,ca-certificates,libcmocka-dev,gcc-riscv64-unknown-elf,picolibc-riscv64-unknown-elf,clang,llvm,libclang-rt-dev"

log() { printf '\033[1m[dc-mesh]\033[0m %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

native_python() {
  local py
  py="$(command -v python3.14 2>/dev/null)" || return 1
  "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 14, 2) else 1)' || return 1
  printf '%s\n' "$py"
}

# Which runtime this machine uses: "native" or "chroot" (or dies explaining what to install).
runtime_kind() {
  if [ -n "${DC_MESH_IN_ENV:-}" ] || native_python >/dev/null; then
    echo native
  elif [ "$(id -u)" = 0 ] && [ -f /etc/debian_version ]; then
    echo chroot
  else
    die "Python >= 3.14.2 is required (current Home Assistant needs it) and none is on PATH.
Install python3.14 (with venv and headers, e.g. from Debian testing/sid or pyenv) and re-run,
or run this script as root on Debian so it can build a Debian sid chroot with it."
  fi
}

# Run a command in the project environment (venv activated, cwd = repo root).
in_env() {
  if [ -n "${DC_MESH_IN_ENV:-}" ] || [ "$(runtime_kind)" = native ]; then
    (exec_in_env "$@")
  else
    _chroot run "$@"
  fi
}

# Like in_env, but the command *replaces* the calling shell: no shell, unshare or chroot process
# stays in between, so the command keeps this script's PID and every signal sent to the script
# (Ctrl-C, SIGTERM from a supervisor or an IDE) reaches it directly. For a script's last command.
exec_in_env() {
  cd "$REPO_ROOT" || die "cannot enter $REPO_ROOT"
  if [ -n "${DC_MESH_IN_ENV:-}" ]; then
    exec "$@"
  elif [ "$(runtime_kind)" = native ]; then
    local venv="${DC_MESH_VENV:-$NATIVE_VENV}"
    PATH="$venv/bin:$PATH" VIRTUAL_ENV="$venv" DC_MESH_IN_ENV=1 exec "$@"
  else
    _chroot exec "$@"
  fi
}

in_chroot() { _chroot run "$@"; }

# _chroot run|exec CMD...: CMD in the chroot, in a private mount namespace. unshare (no --fork)
# becomes the bash below, which execs chroot, env, bash and finally CMD: one process all along,
# so with "exec" CMD takes over the caller's PID and receives its signals.
_chroot() {
  local how=$1
  shift
  [ -x "$CHROOT_DIR/usr/bin/python3" ] || die "the chroot is missing: run scripts/bootstrap"
  local cmd=(unshare --mount --propagation private -- /bin/bash -c '
    set -e
    root=$1 repo=$2 venv=$3; shift 3
    mkdir -p "$root$repo" "$root/proc" "$root/dev" "$root/sys" "$root/tmp"
    mount --bind "$repo" "$root$repo"
    mount -t proc proc "$root/proc"
    mount --rbind /dev "$root/dev"
    mount --rbind /sys "$root/sys"
    cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
    cp -L /etc/hosts "$root/etc/hosts" 2>/dev/null || true
    exec chroot "$root" /usr/bin/env -i \
      HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" CI="${CI:-}" \
      PATH="$venv/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin" VIRTUAL_ENV="$venv" \
      SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt PIP_DISABLE_PIP_VERSION_CHECK=1 \
      UV_NATIVE_TLS=1 DC_MESH_IN_ENV=1 PYTHONDONTWRITEBYTECODE= \
      /bin/bash -c "cd \"\$0\" && exec \"\$@\"" "$repo" "$@"
  ' dc-mesh-chroot "$CHROOT_DIR" "$REPO_ROOT" "$CHROOT_VENV" "$@")
  if [ "$how" = exec ]; then
    exec "${cmd[@]}"
  fi
  "${cmd[@]}"
}
