"""The vendor's release repository: releases on disk and the resource server serving them."""

from suture.vendor_services.repository.store import ARTEFACTS, Artefact, ReleaseError, ReleaseStore

__all__ = ["ARTEFACTS", "Artefact", "ReleaseError", "ReleaseStore"]
