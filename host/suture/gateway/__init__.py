"""The gateway for devices without IP: it speaks the device link (docs/formats/device-link.md)
with devices over byte streams (a QEMU board's second UART over TCP, serial ports) and makes the
HTTP requests they ask for, to one scheduler only."""

from suture.gateway.frames import (
    FrameError,
    FrameReader,
    GatewayError,
    LinkFrame,
    cobs_decode,
    cobs_encode,
    decode_frame,
    encode_frame,
)
from suture.gateway.server import (
    GatewayStats,
    LinkGateway,
    LinkSession,
    RequestRecord,
    SerialGateway,
    Upstream,
)

__all__ = ["FrameError", "FrameReader", "GatewayError", "GatewayStats", "LinkFrame",
           "LinkGateway", "LinkSession", "RequestRecord", "SerialGateway", "Upstream",
           "cobs_decode", "cobs_encode", "decode_frame", "encode_frame"]
