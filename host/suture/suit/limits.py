"""Ceilings on untrusted input: every envelope decoded by suture stays within these."""

from __future__ import annotations

from typing import Final

# Whole envelope, integrated payloads included.
MAX_ENVELOPE_BYTES: Final = 8 * 1024 * 1024
# The encoded manifest, each command sequence, the text map and each authentication block.
MAX_MANIFEST_BYTES: Final = 256 * 1024
MAX_AUTH_BLOCK_BYTES: Final = 16 * 1024
# CBOR nesting inside any one encoded item (arrays, maps and tags count one level each).
MAX_DEPTH: Final = 16
# Command sequences nested in sequences (try-each, run-sequence).
MAX_SEQUENCE_DEPTH: Final = 8
MAX_COMPONENTS: Final = 256
MAX_COMPONENT_ID_ELEMENTS: Final = 16
MAX_AUTH_BLOCKS: Final = 8
# The manifest's sequence number: devices keep it as u32 (docs/formats/journal.md, `version`),
# so one that does not fit is refused when an envelope is built and when it is decoded.
MAX_SEQUENCE_NUMBER: Final = 2**32 - 1
# Dependency manifests (trust-domains): per manifest, and nesting of dependencies in
# dependencies (a root, the manifest it depends on, and one more level).
MAX_DEPENDENCIES: Final = 8
MAX_DEPENDENCY_DEPTH: Final = 3
