"""The one exception family of ``suture.image``: stage0 loader images."""

from __future__ import annotations

from suture.errors import SutureError


class ImageError(SutureError, ValueError):
    """A loader image that cannot be made, read or trusted; the message says why."""
