# The factory's steps: install a first application, write the identity records (their undoing
# is decommission.py).
import binascii

import micropython

from loader import api
from loader.hal import board


def provision_app(stream, size, version, blank):
    """Install the bundle read from `stream` as the confirmed `version`; on a `blank` board
    (booted without a filesystem) format littlefs first."""
    if blank:
        board().mount(format_if_blank=True)
    micropython.kbd_intr(-1)
    try:
        api.loader().provision(stream, size, version)
    finally:
        micropython.kbd_intr(3)
    return {"installed_version": api.loader().installed().version}


def put_nvm(records):
    """Write (key, hex value) records in the NVM store, schema 1."""
    nvm = api.nvm()
    for key, value in records:
        nvm.put(key, binascii.unhexlify(value), 1)
    return {"written": len(records)}

