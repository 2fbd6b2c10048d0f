"""Delta updates: a patch from one exact source image to a target (docs/formats/delta.md).

- :mod:`suture.delta.format`: the patch format, described once;
- :func:`build`: the patch (detools finds the matches; segments of independent zlib streams);
- :func:`apply`: the host's applier, the reference for the device's (``loader/loader/delta.py``);
- :func:`make_delta`: a patch and the SUIT component description that fetches it.
"""

from suture.delta.apply import apply
from suture.delta.builder import build
from suture.delta.errors import DeltaError
from suture.delta.release import DeltaRelease, make_delta

__all__ = ["DeltaError", "DeltaRelease", "apply", "build", "make_delta"]
