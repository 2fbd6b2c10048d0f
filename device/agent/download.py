# Downloads: the SUIT envelope (small, bounded, checked against the schedule's digest) and the
# payload, streamed through one preallocated buffer into the loader's Stager with HTTP Range,
# resuming where the staging slot stopped after a dropped connection or a reset.
import hashlib

from micropython import const

from agent.errors import DownloadError, HttpError, TransportError

MAX_ENVELOPE = const(16384)
MAX_ATTEMPTS = const(6)


def fetch_envelope(client, art, clock):
    if art.envelope_size > MAX_ENVELOPE:
        raise DownloadError("envelope of %d bytes (limit %d)" % (art.envelope_size, MAX_ENVELOPE))
    attempts = 0
    while True:
        try:
            r = client.get(art.envelope_uri)
            try:
                data = r.read_all(art.envelope_size)
            finally:
                r.close()
            break
        except TransportError as e:
            attempts += 1
            if attempts >= MAX_ATTEMPTS or (isinstance(e, HttpError) and e.status < 500):
                raise
            clock.sleep(attempts)
    if len(data) != art.envelope_size or hashlib.sha256(data).digest() != art.envelope_digest:
        raise DownloadError("envelope does not match the schedule's digest")
    client.bytes_in += len(data)
    return data


def stream_payload(client, stager, art, buf, clock, progress=None):
    """Write the payload from stager.offset to its end. Raises TransportError after
    MAX_ATTEMPTS failed connections in a row (the journal keeps the resume point)."""
    mv = memoryview(buf)
    etag = '"%s"' % "".join("%02x" % b for b in art.payload_digest)
    attempts = 0
    while stager.offset < stager.size:
        try:
            r = client.get(art.payload_uri, stager.offset, etag)
            try:
                skip = 0
                if r.status == 200:
                    skip = stager.offset  # the server ignored the range: drop what we have
                else:
                    cr = r.headers.get("content-range", "")
                    if not cr.startswith("bytes %d-" % stager.offset):
                        raise DownloadError("unexpected Content-Range %r" % cr)
                while stager.offset < stager.size:
                    want = len(mv)
                    if skip and skip < want:
                        want = skip
                    n = r.readinto(mv[:want])
                    if not n:
                        break
                    client.bytes_in += n
                    if skip:
                        skip -= n
                        continue
                    stager.write(mv[:n])
                    attempts = 0
                    if progress is not None:
                        progress(stager.offset, stager.size)
            finally:
                r.close()
        except TransportError as e:
            attempts += 1
            if attempts >= MAX_ATTEMPTS or (isinstance(e, HttpError) and e.status < 500):
                raise
            clock.sleep(attempts)
