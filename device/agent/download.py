# Downloads: the SUIT envelope (small, bounded, checked against the schedule's digest) and the
# payload, streamed through one preallocated buffer into the loader's staging (loader.api
# begin_staging) with HTTP Range, resuming where the staging slot stopped after a dropped
# connection or a reset.
import hashlib

from loader import api
from micropython import const

from agent.errors import DownloadError, HttpError, TransportError
from agent.events import emit

MAX_ENVELOPE = const(16384)
MAX_ATTEMPTS = const(6)


def _open(client, art, url, start=0, etag=None):
    """A download from the scheduler (the device credential) or, when the schedule carries a
    biscuit, from the vendor's /direct/ path (Authorization: Bearer)."""
    if art.bearer is None:
        return client.get(url, start, etag)
    h = {"Authorization": "Bearer " + art.bearer}
    if start:
        h["Range"] = "bytes=%d-" % start
        if etag:
            h["If-Range"] = etag
    r = client.t.request("GET", url, h, None)
    if r.status not in (200, 206):
        r.close()
        raise HttpError(r.status, "on a direct download")
    return r


def fetch_envelope(client, art, clock):
    if art.envelope_size > MAX_ENVELOPE:
        raise DownloadError("envelope of %d bytes (limit %d)" % (art.envelope_size, MAX_ENVELOPE))
    attempts = 0
    while True:
        try:
            r = _open(client, art, art.envelope_uri)
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
            r = _open(client, art, art.payload_uri, stager.offset, etag)
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


class _Progress:
    """Progress of one download: an event and a live report about every quarter."""

    def __init__(self, reports, done, size):
        self.reports = reports
        self.last = done
        self.every = size // 4 or 1

    def update(self, done, size):
        if done - self.last >= self.every or done == size:
            self.last = done
            emit("progress", done=done, size=size)
            self.reports.progress(done)


def download(agent, s):
    """Stage the release of schedule s: fetch its envelope, let the loader verify it and open
    (or resume) its staging, check that the signed manifest is the release the schedule
    announced, stream the payload and finish. Returns True once it is STAGED; a refusal or a
    mismatch is reported (and, once staging began, the journal records FAILED)."""
    art = s.artifact
    reports = agent.reports
    env = fetch_envelope(agent.client, art, agent.clock)
    try:
        st = api.begin_staging(env, agent.clock.now())
    except api.LoaderError as e:
        if reports.sync():  # the refusal left a FAILED record (a heap that ran out): its report
            emit("error", where="envelope refused", code=e.code, message=str(e))
            reports.flush()
        else:
            reports.failed(e, "envelope refused")
        return False
    env = None
    if st.digest != art.payload_digest or st.size != art.payload_size \
            or st.version != art.sequence_number or st.component != api.component(art.component):
        api.abandon(DownloadError.code)
        reports.sync()
        emit("error", where="download", code=DownloadError.code,
             message="manifest and schedule disagree")
        return False
    agent.phase = "downloading"
    emit("download", offset=st.offset, size=st.size, version=st.version)
    reports.sync()
    reports.flush()
    progress = _Progress(reports, st.offset, st.size)
    try:
        # a delta is applied as its patch arrives: a corrupt one fails here (FAILED), and
        # the report lets the scheduler serve the full payload at the next poll
        stream_payload(agent.client, st, art, agent.buf, agent.clock, progress.update)
        st.finish(install=False)
    except api.LoaderError as e:
        emit("error", where="staging", code=e.code, message=str(e))
        reports.sync()
        reports.flush()
        return False
    agent.phase = "staged"
    emit("staged", version=st.version, size=st.size)
    reports.sync()
    reports.flush()
    return True
