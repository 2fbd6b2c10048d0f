"""stage0 loader images: the header format, signing, verification, provisioning records.

The format is defined once in C (``stage0/include/suture/image.h``) and documented in
``docs/formats/loader-image.md``; :mod:`suture.image.header` mirrors it.
"""

from suture.image.errors import ImageError
from suture.image.header import (
    HEADER_SIZE,
    IMAGE_MAGIC,
    SIGNED_SIZE,
    ImageFormatError,
    LoaderImageHeader,
    parse_header,
)
from suture.image.provision import provision_record
from suture.image.sign import ImageVerifyError, sign_image, verify_image

__all__ = [
    "HEADER_SIZE",
    "IMAGE_MAGIC",
    "SIGNED_SIZE",
    "ImageError",
    "ImageFormatError",
    "ImageVerifyError",
    "LoaderImageHeader",
    "parse_header",
    "provision_record",
    "sign_image",
    "verify_image",
]
