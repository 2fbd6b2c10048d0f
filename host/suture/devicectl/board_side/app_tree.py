# The developer's loop (suture board deploy): the digests of the application's files on the
# board, and the record that lets the loader run the tree deploy copied (kept NVM `dev.tree`).
import binascii
import hashlib

from loader import api


def _sha256_hex(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            chunk = f.read(512)
            if not chunk:
                break
            h.update(chunk)
    return binascii.hexlify(h.digest()).decode()


def app_digests(paths):
    """SHA-256 (hex) of each of `paths` under the application folder; None when absent."""
    root = api.loader().app_dir
    out = {}
    for path in paths:
        try:
            out[path] = _sha256_hex(root + "/" + path)
        except OSError:
            out[path] = None
    return {"root": root, "digests": out}


def accept_developer_tree():
    return {"dev_tree": binascii.hexlify(api.loader().accept_developer_tree()).decode()}
