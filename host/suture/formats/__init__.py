"""Machine-readable descriptions of suture's on-flash formats, and the checks that hold every
hand-written copy of a format (C header, MicroPython module, host module, doc page) to them.

- ``journal.toml``: the update journal record (docs/formats/journal.md);
  :mod:`suture.formats.journal` reads it, :mod:`suture.formats.journal_check` checks the copies.
- ``error_codes.toml``: the device's error codes, one table per layer in disjoint ranges
  (docs/formats/error-codes.md); :mod:`suture.formats.error_codes` reads it and names a code,
  :mod:`suture.formats.error_codes_check` checks the copies.
"""
