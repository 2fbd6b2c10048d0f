# A CBOR (RFC 8949) decoder sized for a microcontroller: definite lengths only, integers,
# byte/text strings, arrays, maps, tags and the simple values false/true/null. Every input has a
# ceiling (nesting depth, items per container, total items, string length <= the bytes left);
# anything else raises CborError. Floats and indefinite lengths are refused: SUIT does not use
# them. Also the few encoders COSE needs to build its Sig_structure.
from micropython import const

from loader.errors import CborError

MAX_DEPTH = const(16)
MAX_ITEMS = const(4096)
MAX_CONTAINER = const(1024)


class Tag:
    def __init__(self, tag, value):
        self.tag = tag
        self.value = value


class _Decoder:
    def __init__(self, data):
        self.mv = memoryview(data)
        self.n = len(data)
        self.pos = 0
        self.items = 0

    def _byte(self):
        if self.pos >= self.n:
            raise CborError("truncated CBOR")
        b = self.mv[self.pos]
        self.pos += 1
        return b

    def _uint(self, info):
        if info < 24:
            return info
        if info > 27:
            raise CborError("indefinite length or reserved additional info %d" % info)
        k = 1 << (info - 24)
        if self.pos + k > self.n:
            raise CborError("truncated CBOR")
        v = int.from_bytes(self.mv[self.pos : self.pos + k], "big")
        self.pos += k
        return v

    def item(self, depth):
        if depth > MAX_DEPTH:
            raise CborError("CBOR nested deeper than %d" % MAX_DEPTH)
        self.items += 1
        if self.items > MAX_ITEMS:
            raise CborError("more than %d CBOR items" % MAX_ITEMS)
        ib = self._byte()
        major = ib >> 5
        info = ib & 0x1F
        if major == 7:
            if info == 20:
                return False
            if info == 21:
                return True
            if info == 22:
                return None
            raise CborError("unsupported simple value or float (%d)" % info)
        v = self._uint(info)
        if major == 0:
            return v
        if major == 1:
            return -1 - v
        if major == 2 or major == 3:
            if v > self.n - self.pos:
                raise CborError("string longer than the input")
            s = bytes(self.mv[self.pos : self.pos + v])
            self.pos += v
            if major == 3:
                try:
                    return s.decode()
                except UnicodeError:
                    raise CborError("text string is not UTF-8")
            return s
        if major == 6:
            return Tag(v, self.item(depth + 1))
        if v > MAX_CONTAINER or v > self.n - self.pos:
            raise CborError("container of %d items is too large" % v)
        if major == 4:
            return [self.item(depth + 1) for _ in range(v)]
        if major == 5:
            d = {}
            for _ in range(v):
                k = self.item(depth + 1)
                if not isinstance(k, (int, str)):
                    raise CborError("map key is not an integer or a text string")
                if k in d:
                    raise CborError("duplicate map key")
                d[k] = self.item(depth + 1)
            return d
        raise CborError("unreachable major type")

    def array_offsets(self):
        """The array this decoder holds: its items and the offset of each; the whole input."""
        ib = self._byte()
        if ib >> 5 != 4:
            raise CborError("not a CBOR array")
        n = self._uint(ib & 0x1F)
        if n > MAX_CONTAINER or n > self.n - self.pos:
            raise CborError("container of %d items is too large" % n)
        items = []
        offsets = []
        for _ in range(n):
            offsets.append(self.pos)
            items.append(self.item(1))
        if self.pos != self.n:
            raise CborError("trailing bytes after the CBOR item")
        return items, offsets


def decode(data):
    """The single CBOR item in data (trailing bytes are an error)."""
    d = _Decoder(data)
    v = d.item(0)
    if d.pos != d.n:
        raise CborError("trailing bytes after the CBOR item")
    return v


def decode_offsets(data):
    """The items of the CBOR array in data and the byte offset of each in data (a SUIT command
    sequence: where each command starts, for the records of a SUIT report)."""
    return _Decoder(data).array_offsets()


def head(major, n):
    if n < 24:
        return bytes((major << 5 | n,))
    if n < 0x100:
        return bytes((major << 5 | 24, n))
    if n < 0x10000:
        return bytes((major << 5 | 25,)) + n.to_bytes(2, "big")
    if n < 0x100000000:
        return bytes((major << 5 | 26,)) + n.to_bytes(4, "big")
    return bytes((major << 5 | 27,)) + n.to_bytes(8, "big")


def enc_bstr(b):
    return head(2, len(b)) + b


def enc_tstr(s):
    b = s.encode()
    return head(3, len(b)) + b
