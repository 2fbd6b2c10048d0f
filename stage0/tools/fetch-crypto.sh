#!/usr/bin/env bash
# Fetch the crypto libraries stage0 is built with, from PyPI source distributions pinned by
# version and SHA-256, into stage0/third_party/ (git-ignored, never committed):
#   HACL* (formally verified; ECDSA P-256 verify) from the pyhacl sdist,
#   libsodium (audited; SHA-256) from the PyNaCl sdist.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
dest="$here/third_party"
pip="${SUTURE_PIP:-$here/../.venv/bin/pip}"
[ -x "$pip" ] || pip="python3 -m pip"

HACL_SDIST=pyhacl==1.0.1
HACL_FILE=pyhacl-1.0.1.tar.gz
HACL_SHA256=2c7653b79fca0a00540602baeb2ab9774e4736de79561e67f755bcddf9ec7598
SODIUM_SDIST=pynacl==1.6.2
SODIUM_FILE=pynacl-1.6.2.tar.gz
SODIUM_SHA256=018494d6d696ae03c7e656e5e74cdfd8ea1326962cc401bcf018f1ed8436811c

if [ -f "$dest/.complete" ]; then exit 0; fi
rm -rf "$dest"
mkdir -p "$dest/dl"
fetch() { # spec file sha256
    if [ ! -f "$dest/dl/$2" ]; then
        # Only the named package comes from source; its build requirements come as wheels
        # (pip prepares the sdist's metadata in an isolated environment: a few seconds).
        $pip download --quiet --disable-pip-version-check --no-deps --no-binary "${1%%==*}" \
            "$1" -d "$dest/dl" 2>&1 | grep -v "^WARNING: Location" >&2 || true
    fi
    [ -f "$dest/dl/$2" ] || { echo "fetch-crypto: could not download $1 from PyPI" >&2; exit 1; }
    echo "$3  $dest/dl/$2" | sha256sum --check --quiet - \
        || { echo "fetch-crypto: SHA-256 mismatch for $2" >&2; exit 1; }
}
fetch "$HACL_SDIST" "$HACL_FILE" "$HACL_SHA256"
fetch "$SODIUM_SDIST" "$SODIUM_FILE" "$SODIUM_SHA256"

tar -xzf "$dest/dl/$HACL_FILE" -C "$dest" \
    pyhacl-1.0.1/hacl-star/dist/gcc-compatible pyhacl-1.0.1/hacl-star/dist/karamel \
    pyhacl-1.0.1/hacl-star/LICENSE 2>/dev/null \
 || tar -xzf "$dest/dl/$HACL_FILE" -C "$dest" \
    pyhacl-1.0.1/hacl-star/dist/gcc-compatible pyhacl-1.0.1/hacl-star/dist/karamel
mv "$dest/pyhacl-1.0.1/hacl-star" "$dest/hacl"
rmdir "$dest/pyhacl-1.0.1" 2>/dev/null || rm -rf "$dest/pyhacl-1.0.1"

s=pynacl-1.6.2/src/libsodium
tar -xzf "$dest/dl/$SODIUM_FILE" -C "$dest" "$s/src/libsodium/include" \
    "$s/src/libsodium/crypto_hash/sha256" "$s/LICENSE"
mv "$dest/$s" "$dest/libsodium"
rm -rf "$dest/pynacl-1.6.2"
inc="$dest/libsodium/src/libsodium/include/sodium"
sed -e 's/@VERSION@/1.0.20/' -e 's/@SODIUM_LIBRARY_VERSION_MAJOR@/26/' \
    -e 's/@SODIUM_LIBRARY_VERSION_MINOR@/2/' -e 's/@SODIUM_LIBRARY_MINIMAL_DEF@//' \
    "$inc/version.h.in" > "$inc/version.h"
touch "$dest/.complete"
