"""Machine-readable descriptions of suture's on-flash formats, and the checks that hold every
hand-written copy of a format (C header, MicroPython module, host module, doc page) to them.

- ``journal.toml``: the update journal record (docs/formats/journal.md);
  :mod:`suture.formats.journal` reads it, :mod:`suture.formats.journal_check` checks the copies.
"""
