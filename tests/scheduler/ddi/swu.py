"""SWUpdate images for the tests: a signer certificate, and a CMS-signed ``.swu`` (a cpio
"newc" archive: ``sw-description``, its detached CMS signature ``sw-description.sig``, then the
images) whose one image SWUpdate's ``rawfile`` handler writes to a file the test reads."""

from __future__ import annotations

import datetime
import hashlib
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def signer(directory: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate, Path]:
    """A self-signed P-256 signer certificate for S/MIME signing (SWUpdate's default purpose,
    ``emailProtection``); returns the key, the certificate and its PEM file (``swupdate -k``)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "suture test image signer")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    path = directory / "signer.crt"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert, path


#: The board and revision the test images are for (``swupdate -H``).
BOARD = "suture-test"
HARDWARE_REVISION = "1.0"


def _cpio_entry(name: str, data: bytes, ino: int) -> bytes:
    """One cpio "newc" entry: the header and name padded to 4 bytes, then the data padded."""
    encoded = name.encode() + b"\0"
    fields = [ino, 0o100644, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0]
    header = b"070701" + b"".join(f"{v:08x}".encode() for v in fields)
    head = header + encoded
    head += b"\0" * (-len(head) % 4)
    return head + data + b"\0" * (-len(data) % 4)


def swu(key: ec.EllipticCurvePrivateKey, cert: x509.Certificate, image: bytes, *,
        target: Path, version: str, sha256: str | None = None) -> bytes:
    """A signed ``.swu`` whose image the ``rawfile`` handler writes to ``target``.
    ``sha256`` other than the image's makes an artefact SWUpdate must refuse."""
    digest = sha256 or hashlib.sha256(image).hexdigest()
    description = f"""software =
{{
    version = "{version}";
    description = "suture DDI test image";
    hardware-compatibility: [ "{HARDWARE_REVISION}" ];
    images: (
        {{
            filename = "image.bin";
            type = "rawfile";
            path = "{target}";
            sha256 = "{digest}";
        }}
    );
}}
""".encode()
    signature = (pkcs7.PKCS7SignatureBuilder().set_data(description)
                 .add_signer(cert, key, hashes.SHA256())
                 .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature,
                                                    pkcs7.PKCS7Options.Binary,
                                                    pkcs7.PKCS7Options.NoCapabilities]))
    return (_cpio_entry("sw-description", description, 1)
            + _cpio_entry("sw-description.sig", signature, 2)
            + _cpio_entry("image.bin", image, 3)
            + _cpio_entry("TRAILER!!!", b"", 0))
