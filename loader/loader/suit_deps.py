# Authentication of SUIT envelopes beyond COSE_Sign1, and their dependency manifests
# (draft-ietf-suit-trust-domains), for the device: a COSE_Sign1 (ES256/ESP256) with a trusted
# public key or a COSE_Mac0 (HMAC 256/256) with a provisioned symmetric key; then, for each
# dependency the manifest names, its envelope (integrated under its URI, or fetched), its size
# and manifest digest as the dependent sets them, and its own authentication under the
# dependency trust anchors (the vendor's, under the hospital's manifest). Pure: bytes in.
#
# params_by_index() reads what a manifest's sequences set per component index (the parameters
# a copy/write needs: encryption info, content, source component), like the host's
# suture.suit.components.
import hashlib

from loader import cbor, cose, mac0
from loader.errors import SignatureError, SizeError, SuitError, UnsignedError

MAX_ENVELOPE = 16384
MAX_DEPTH = 3
TAG_ENVELOPE = 107
TAG_SIGN1 = 18
TAG_MAC0 = 17
# sequences in processing order: shared (common 4), dependency-resolution, payload-fetch,
# candidate-verification, install, validate, load, invoke
_SECTIONS = (15, 16, 18, 20, 7, 8, 9)
_SET_INDEX = 12
_TRY_EACH = 15
_SET_PARAMS = 19
_OVERRIDE = 20
_RUN_SEQUENCE = 32


def _eq(a, b):
    acc = len(a) ^ len(b)
    for i in range(min(len(a), len(b))):
        acc |= a[i] ^ b[i]
    return acc == 0


def _digest_of(obj):
    if not isinstance(obj, list) or len(obj) != 2 or obj[0] != -16 or \
            not isinstance(obj[1], bytes) or len(obj[1]) != 32:
        raise SuitError("SUIT_Digest is not a SHA-256 [alg, bstr]")
    return obj[1]


def authenticate(envelope_bytes, keys=(), mac_keys=()):
    """(envelope map, manifest map, encoded digest) once a block verifies; keys: 65-byte P-256
    points (COSE_Sign1), mac_keys: byte strings (COSE_Mac0)."""
    if len(envelope_bytes) > MAX_ENVELOPE:
        raise SizeError("envelope larger than %d bytes" % MAX_ENVELOPE)
    env = cbor.decode(envelope_bytes)
    if isinstance(env, cbor.Tag):
        if env.tag != TAG_ENVELOPE:
            raise SuitError("CBOR tag %d is not a SUIT envelope" % env.tag)
        env = env.value
    if not isinstance(env, dict):
        raise SuitError("envelope is not a map")
    auth_b, man_b = env.get(2), env.get(3)
    if not isinstance(auth_b, bytes) or not isinstance(man_b, bytes):
        raise SuitError("envelope lacks the authentication wrapper or the manifest")
    auth = cbor.decode(auth_b)
    if not isinstance(auth, list) or not auth or not isinstance(auth[0], bytes):
        raise SuitError("authentication wrapper malformed")
    if len(auth) < 2:
        raise UnsignedError("authentication wrapper holds no signature")
    expected = _digest_of(cbor.decode(auth[0]))
    h = hashlib.sha256()
    h.update(cbor.head(2, len(man_b)))
    h.update(man_b)
    if not _eq(h.digest(), expected):
        raise SignatureError("manifest digest does not match the authentication wrapper")
    for block in auth[1:]:
        if not isinstance(block, bytes):
            raise SuitError("authentication block is not a byte string")
        obj = cbor.decode(block)
        tag = obj.tag if isinstance(obj, cbor.Tag) else TAG_SIGN1
        try:
            if tag == TAG_MAC0 and mac_keys:
                mac0.verify_mac0(block, auth[0], mac_keys)
            elif tag == TAG_SIGN1 and keys:
                cose.verify_sign1(block, auth[0], keys)
            else:
                continue
        except SignatureError:
            continue
        manifest = cbor.decode(man_b)
        if not isinstance(manifest, dict):
            raise SuitError("manifest is not a map")
        return env, manifest, expected
    raise SignatureError("no authentication block verifies with a trusted key")


def _walk(seq_bytes, params, current, depth):
    if depth > 4:
        raise SuitError("command sequences nested too deeply")
    seq = cbor.decode(seq_bytes)
    if not isinstance(seq, list) or len(seq) % 2:
        raise SuitError("command sequence is not [code, argument, ...]")
    for i in range(0, len(seq), 2):
        code, arg = seq[i], seq[i + 1]
        if code == _SET_INDEX:
            if arg is True:
                current = list(range(len(params)))
            elif isinstance(arg, list):
                current = arg
            else:
                current = [arg]
            for c in current:
                if not isinstance(c, int) or isinstance(c, bool) or not 0 <= c < len(params):
                    raise SuitError("component index %r out of range" % (c,))
        elif code in (_OVERRIDE, _SET_PARAMS):
            if not isinstance(arg, dict):
                raise SuitError("parameters are not a map")
            for c in current:
                for k in arg:
                    if code == _OVERRIDE or k not in params[c]:
                        params[c][k] = arg[k]
        elif code == _RUN_SEQUENCE and isinstance(arg, bytes):
            _walk(arg, params, list(current), depth + 1)
        elif code == _TRY_EACH and isinstance(arg, list) and arg and isinstance(arg[0], bytes):
            _walk(arg[0], params, list(current), depth + 1)
    return current


def _member(env, manifest, key):
    v = manifest.get(key)
    if v is None or isinstance(v, bytes):
        return v
    want = _digest_of(v)
    b = env.get(key)
    if b is None:
        return None
    h = hashlib.sha256()
    h.update(cbor.head(2, len(b)))
    h.update(b)
    if not _eq(h.digest(), want):
        raise SignatureError("severable member %d does not match its digest" % key)
    return b


def params_by_index(env, manifest):
    """(components, dependencies {index: prefix}, [parameters per component index])."""
    common = cbor.decode(manifest.get(3) or b"\xa0")
    if not isinstance(common, dict):
        raise SuitError("suit-common is not a map")
    comps = common.get(2)
    if not isinstance(comps, list) or not comps or len(comps) > 16:
        raise SuitError("suit-components missing, empty or longer than 16")
    deps = common.get(1) or {}
    if not isinstance(deps, dict) or len(deps) > 8:
        raise SuitError("suit-dependencies is not a map of at most 8")
    extra = [i for i in deps if isinstance(i, int) and i >= len(comps)]
    extra.sort()
    if extra != list(range(len(comps), len(comps) + len(extra))):
        raise SuitError("dependency indices leave a gap after the components")
    params = [{} for _ in range(len(comps) + len(extra))]
    sequences = [common.get(4)] + [_member(env, manifest, k) for k in _SECTIONS]
    for s in sequences:
        if s is not None:
            if not isinstance(s, bytes):
                raise SuitError("command sequence is not a byte string")
            _walk(s, params, [0], 0)
    return comps, deps, params


def verify_tree(envelope_bytes, keys=(), mac_keys=(), dep_keys=None, dep_mac_keys=None,
                fetched=None, depth=0):
    """Authenticate an envelope and, recursively, every dependency it names under the
    dependency anchors (by default the same). Returns (env, manifest, params,
    [(index, uri, source, child result)])."""
    env, manifest, _ = authenticate(envelope_bytes, keys, mac_keys)
    dk = keys if dep_keys is None else dep_keys
    dmk = mac_keys if dep_mac_keys is None else dep_mac_keys
    _, deps, params = params_by_index(env, manifest)
    out = []
    for index in sorted(deps):
        if depth + 1 > MAX_DEPTH:
            raise SuitError("dependencies nested deeper than %d" % MAX_DEPTH)
        p = params[index]
        uri, size, digest = p.get(21), p.get(14), p.get(3)
        if not isinstance(uri, str) or not isinstance(digest, bytes):
            raise SuitError("dependency %d has no uri or digest" % index)
        want = _digest_of(cbor.decode(digest))
        if uri in env and isinstance(env[uri], bytes):
            data, source = env[uri], "integrated"
        elif fetched and uri in fetched:
            data, source = fetched[uri], "fetched"
        else:
            raise SuitError("dependency %d (%s) is neither integrated nor fetched" % (index, uri))
        if size is not None and size != len(data):
            raise SizeError("dependency %d is %d bytes, the manifest says %r"
                            % (index, len(data), size))
        inner = cbor.decode(data)
        inner = inner.value if isinstance(inner, cbor.Tag) else inner
        if not isinstance(inner, dict) or not isinstance(inner.get(2), bytes):
            raise SuitError("dependency %d is not an envelope" % index)
        wrapper = cbor.decode(inner[2])
        if not isinstance(wrapper, list) or not wrapper or not isinstance(wrapper[0], bytes):
            raise SuitError("dependency %d: authentication wrapper malformed" % index)
        if not _eq(_digest_of(cbor.decode(wrapper[0])), want):
            raise SignatureError("dependency %d is not the manifest the dependent names" % index)
        child = verify_tree(data, dk, dmk, dk, dmk, fetched, depth + 1)
        out.append((index, uri, source, child))
    return env, manifest, params, out
