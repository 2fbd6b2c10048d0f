#!/usr/bin/env bash
# Fetch the crypto library stage0 is built with, from a PyPI source distribution pinned by
# version and SHA-256, into stage0/third_party/ (git-ignored, never committed):
#   HACL* (formally verified: ECDSA P-256 verification and SHA-256) from the pyhacl sdist.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
dest="$here/third_party"
pip=("${SUTURE_PIP:-$here/../.venv/bin/pip}")  # an array: the path may hold spaces
[ -x "${pip[0]}" ] || pip=(python3 -m pip)

HACL_SDIST=pyhacl==1.0.1
HACL_FILE=pyhacl-1.0.1.tar.gz
HACL_SHA256=2c7653b79fca0a00540602baeb2ab9774e4736de79561e67f755bcddf9ec7598

# The marker names what was fetched: a change of pin fetches again.
stamp="$HACL_FILE $HACL_SHA256"
if [ -f "$dest/.complete" ] && [ "$(cat "$dest/.complete")" = "$stamp" ]; then
    touch "$dest/.complete"
    exit 0
fi
rm -rf "$dest"
mkdir -p "$dest/dl"
fetch() { # spec file sha256
    if [ ! -f "$dest/dl/$2" ]; then
        # Only the named package comes from source; its build requirements come as wheels
        # (pip prepares the sdist's metadata in an isolated environment: a few seconds).
        "${pip[@]}" download --quiet --disable-pip-version-check --no-deps --no-binary "${1%%==*}" \
            "$1" -d "$dest/dl" 2>&1 | grep -v "^WARNING: Location" >&2 || true
    fi
    [ -f "$dest/dl/$2" ] || { echo "fetch-crypto: could not download $1 from PyPI" >&2; exit 1; }
    echo "$3  $dest/dl/$2" | sha256sum --check --quiet - \
        || { echo "fetch-crypto: SHA-256 mismatch for $2" >&2; exit 1; }
}
fetch "$HACL_SDIST" "$HACL_FILE" "$HACL_SHA256"

tar -xzf "$dest/dl/$HACL_FILE" -C "$dest" \
    pyhacl-1.0.1/hacl-star/dist/gcc-compatible pyhacl-1.0.1/hacl-star/dist/karamel \
    pyhacl-1.0.1/hacl-star/LICENSE 2>/dev/null \
 || tar -xzf "$dest/dl/$HACL_FILE" -C "$dest" \
    pyhacl-1.0.1/hacl-star/dist/gcc-compatible pyhacl-1.0.1/hacl-star/dist/karamel
mv "$dest/pyhacl-1.0.1/hacl-star" "$dest/hacl"
rmdir "$dest/pyhacl-1.0.1" 2>/dev/null || rm -rf "$dest/pyhacl-1.0.1"

echo "$stamp" > "$dest/.complete"
