"""The Adafruit nRF52 bootloader's serial DFU through adafruit-nrfutil's Python library
(``nordicsemi.dfu``): the package ``dfu genpkg`` builds, and ``dfu serial``'s transfer.

The package is a zip of ``manifest.json``, the application binary and its init packet (DFU
version 0.5: device type, device revision, application version, the SoftDevices it accepts and
the CRC-16 of the binary). :func:`read_package` reads one back; :func:`build_package` refuses a
package whose read-back does not describe the image it was built from.
"""

from __future__ import annotations

import json
import shutil
import struct
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from suture.boardops.flashing import (
    DfuPackageBuild,
    FlashPlanError,
    FlashToolError,
    FlashUnreachableError,
    SerialDfu,
)
from suture.boardops.toolio import StepProgress, captured_logs
from suture.boards.tools import ToolMissingError, nrfutil_dev_type

# Any SoftDevice, or none: the Adafruit bootloader's application area (genpkg's default).
SD_REQ_ANY = 0xFFFE
DEV_REV_ANY = 0xFFFF
APP_VERSION_ANY = 0xFFFFFFFF
DFU_VERSION = 0.5
# The 1200-baud touch that resets a running Feather into its bootloader.
TOUCH_BAUD = 1200


class DfuPackageError(FlashPlanError):
    """A DFU package that cannot be built or read, or does not describe its image."""


def _nordicsemi() -> Any:
    try:
        import nordicsemi.dfu.package
    except ImportError:
        raise ToolMissingError("adafruit-nrfutil") from None
    return nordicsemi.dfu.package


@dataclass(frozen=True)
class DfuPackage:
    """A serial-DFU package, as read back."""

    path: Path
    dfu_version: float
    dev_type: int
    dev_revision: int
    app_version: int
    sd_req: tuple[int, ...]
    crc16: int
    binary: bytes


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """The CRC-16 the init packet carries (CRC-16/CCITT-FALSE: polynomial 0x1021, from 0xFFFF)."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def read_package(path: Path) -> DfuPackage:
    """The application of the DFU package ``path``: its manifest, init packet and binary."""
    try:
        with zipfile.ZipFile(path) as archive:
            manifest = json.loads(archive.read("manifest.json"))["manifest"]
            app = manifest["application"]
            binary = archive.read(app["bin_file"])
            init = archive.read(app["dat_file"])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise DfuPackageError(f"{path} is not a DFU package with an application: {exc}") from None
    # Version 0.5's init packet: <H dev_type, H dev_rev, I app_version, H n, n*H sd_req, H crc16
    try:
        dev_type, dev_rev, app_version, count = struct.unpack_from("<HHIH", init)
        sd_req = struct.unpack_from(f"<{count}H", init, 10)
        (crc,) = struct.unpack_from("<H", init, 10 + 2 * count)
    except struct.error as exc:
        raise DfuPackageError(f"{path}: the init packet is cut short: {exc}") from None
    if len(init) != 12 + 2 * count:
        raise DfuPackageError(f"{path}: the init packet has {len(init)} bytes, not the "
                              f"{12 + 2 * count} of DFU version 0.5")
    return DfuPackage(path, float(manifest.get("dfu_version", 0)), dev_type, dev_rev,
                      app_version, tuple(sd_req), crc, binary)


def build_package(dev_type: str, image: Path, out: Path) -> DfuPackage:
    """Build the serial-DFU package of ``image`` with adafruit-nrfutil (``dfu genpkg``'s
    defaults: any SoftDevice, any device revision and application version) and read it back.

    ``image`` is a raw binary, whatever its name (the tool reads a name not ending in ``.bin``
    as Intel HEX).
    """
    package_module = _nordicsemi()
    try:
        device_type = nrfutil_dev_type(dev_type)
    except ValueError as exc:
        raise DfuPackageError(f"--dev-type {dev_type!r}: {exc}") from None
    try:
        data = image.read_bytes()
    except OSError as exc:
        raise DfuPackageError(f"{image}: {exc.strerror or exc}") from None
    if not data:
        raise DfuPackageError(f"{image} is empty")
    with tempfile.TemporaryDirectory(prefix="suture-dfu-") as tmp:
        binary = Path(tmp) / f"{image.stem or 'image'}.bin"
        shutil.copyfile(image, binary)
        from nordicsemi.exceptions import NordicSemiException

        package = package_module.Package(dev_type=device_type, dev_rev=DEV_REV_ANY,
                                         app_version=APP_VERSION_ANY, sd_req=[SD_REQ_ANY],
                                         app_fw=str(binary), dfu_ver=DFU_VERSION)
        with captured_logs("nordicsemi"):
            try:
                package.generate_package(str(out))
            except (NordicSemiException, OSError) as exc:
                raise DfuPackageError(f"adafruit-nrfutil cannot package {image}: {exc}") from None
    built = read_package(out)
    # The tool pads the binary to whole 32-bit words with 0xFF.
    padded = data + b"\xff" * (-len(data) % 4)
    if built.binary != padded or built.crc16 != crc16(padded) or built.dev_type != device_type:
        raise DfuPackageError(f"{out} does not describe {image}: binary, CRC-16 or device type "
                              "differ")
    return built


def run_package_build(step: DfuPackageBuild) -> DfuPackage:
    """Run a :class:`DfuPackageBuild` step."""
    return build_package(step.dev_type, step.image, step.package)


def serial_dfu(step: SerialDfu, progress: StepProgress | None = None) -> None:
    """Run ``step``: reset the board into its bootloader with the 1200-baud touch, then send
    the package (single bank), its progress passed to ``progress``."""
    _nordicsemi()
    from nordicsemi.dfu.dfu import Dfu
    from nordicsemi.dfu.dfu_transport import DfuEvent
    from nordicsemi.dfu.dfu_transport_serial import DfuTransportSerial
    from nordicsemi.exceptions import NordicSemiException
    from serial import SerialException

    report = progress
    total = len(read_package(step.package).binary)
    sent = [0]

    def on_progress(progress: int = 0, done: bool = False, log_message: str = "") -> None:
        # The serial transport reports the index of the frame it sent (then 100 once done).
        del done, log_message
        sent[0] = max(sent[0], min(total, (progress + 1) * DfuTransportSerial.DFU_PACKET_MAX_SIZE))
        if report is not None:
            report(step.description, sent[0], total)

    transport = DfuTransportSerial(step.port, step.baud, False, True, TOUCH_BAUD)
    transport.register_events_callback(DfuEvent.PROGRESS_EVENT, on_progress)
    with captured_logs("nordicsemi") as log:
        try:
            dfu = Dfu(str(step.package), dfu_transport=transport)
        except NordicSemiException as exc:
            raise DfuPackageError(f"{step.package}: {exc}") from None
        try:
            dfu.dfu_send_images()
            if report is not None:
                report(step.description, total, total)
        except (NordicSemiException, SerialException) as exc:
            text = str(exc)
            if "could not be opened" in text or "No data received" in text:
                raise FlashUnreachableError(
                    f"no Adafruit bootloader answers on {step.port}: {text} (double-tap reset to "
                    "start it)") from None
            raise FlashToolError(f"adafruit-nrfutil failed to {step.description}: {text}"
                                 f"{'; ' + log.tail() if log.lines else ''}") from None
        except Exception as exc:  # the library raises bare Exception for a failed transfer
            raise FlashToolError(f"adafruit-nrfutil failed to {step.description}: {exc}"
                                 f"{'; ' + log.tail() if log.lines else ''}") from None
        finally:
            if transport.is_open():
                transport.close()
