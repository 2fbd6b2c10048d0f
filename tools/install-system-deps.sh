#!/usr/bin/env bash
# Installs the Debian packages suture's builds and tests need, when any is missing:
# the Arm cross compiler and newlib (stage0), qemu-system-arm (stage0 boots), PostgreSQL
# (tests marked `postgres`), valgrind (instruction counts in `make bench`), wrk (the HTTP load
# generator `make bench` holds its own client to: bench/scheduler.py, bench/peers.py), chromium
# (the operator UI's browser tests drive it headless through Playwright, tests/ui/) and SWUpdate
# (the DDI client the scheduler's hawkBit DDI API is tested against, tests/scheduler/ddi/); and
# apt's deb-src entry for Debian's source of mbed TLS (the QEMU firmware's AES).
set -euo pipefail

missing=()
command -v arm-none-eabi-gcc >/dev/null || missing+=(gcc-arm-none-eabi)
[ -d /usr/lib/arm-none-eabi/newlib ] || [ -d /usr/lib/arm-none-eabi/lib ] || missing+=(libnewlib-arm-none-eabi)
command -v qemu-system-arm >/dev/null || missing+=(qemu-system-arm)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing+=(postgresql)
command -v valgrind >/dev/null || missing+=(valgrind)
command -v wrk >/dev/null || missing+=(wrk)
command -v swupdate >/dev/null || missing+=(swupdate)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v npm >/dev/null || missing+=(npm)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "suture needs these Debian packages: ${missing[*]}" >&2
    echo "run: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian's source of mbed TLS: the QEMU firmware's cryptolib (AES) is built from it
# (suture.firmware.mbedtls runs `apt-get source mbedtls=2.28.3-1`), so apt needs a deb-src entry
if ! apt-get source --print-uris -qq mbedtls=2.28.3-1 >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "the firmware build needs Debian's source packages: add a deb-src entry for bookworm main" >&2
    echo "to /etc/apt/sources.list.d/ (see tools/install-system-deps.sh) and run apt-get update" >&2
    exit 1
  fi
  echo "adding Debian's source packages (deb-src, bookworm main) to apt"
  cat > /etc/apt/sources.list.d/suture-deb-src.sources <<'SOURCES'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
  apt-get update -qq
fi

# axe-core, the accessibility engine the UI's browser tests inject (npm, pinned by
# tests/ui/axe/package-lock.json)
axe="$(dirname "$0")/../tests/ui/axe"
if [ ! -f "$axe/node_modules/axe-core/axe.min.js" ]; then
  echo "installing axe-core for tests/ui (npm ci)"
  npm ci --prefix "$axe" --ignore-scripts --no-audit --no-fund >/dev/null
fi
