"""The one exception family of ``suture.vendor_services``: the vendor's release repository, its
GNAP authorization server and client, HTTP message signatures and biscuits."""

from __future__ import annotations

from suture.errors import SutureError


class VendorServicesError(SutureError):
    """Anything the vendor's services refuse or cannot do; the message says why."""
