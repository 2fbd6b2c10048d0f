# The transport: one method, request(method, url, headers, body) -> Response. HTTP/1.1 over a
# socket (transport/http.py) where the board has IP; the device link (transport/link.py: frames
# over a UART to the host's gateway) where it has not. default() picks one for the board. A
# Response gives status, a few headers (lower-case names) and readinto(buf) for the body;
# close() it when done.


class Transport:
    def request(self, method, url, headers=None, body=None):
        raise NotImplementedError


def split_url(url):
    """'http://host:port/path?q' -> (scheme, host, port, '/path?q')."""
    from agent.errors import TransportError

    i = url.find("://")
    if i < 0:
        raise TransportError("not an absolute URL")
    scheme = url[:i]
    rest = url[i + 3 :]
    j = rest.find("/")
    hostport = rest if j < 0 else rest[:j]
    path = "/" if j < 0 else rest[j:]
    port = 443 if scheme == "https" else 80
    k = hostport.rfind(":")
    if k >= 0:
        port = int(hostport[k + 1 :])
        hostport = hostport[:k]
    if scheme not in ("http", "https") or not hostport:
        raise TransportError("unsupported URL")
    return scheme, hostport, port, path


def default(nvm=None):
    """The transport of this board: the device link when provisioning named one (NVM record
    net.link: "qemu", "tty:/dev/path" or "uart:ID:BAUD"; docs/formats/device-link.md), HTTP
    when it says "http"; without the record, the link on the QEMU boards' second UART and
    HTTP elsewhere. HTTP pins the scheduler's TLS CA of NVM record net.ca (https URLs)."""
    import sys

    spec = None
    if nvm is not None:
        r = nvm.get("net.link")
        if r is not None:
            spec = bytes(r[1]).decode()
    if not spec and sys.platform == "qemu":
        spec = "qemu"
    if spec and spec != "http":
        from agent.transport.link import LinkTransport, from_spec

        return LinkTransport(from_spec(spec))
    from agent.transport.http import HttpTransport

    ca = nvm.get("net.ca") if nvm is not None else None
    return HttpTransport(ca=bytes(ca[1]) if ca is not None else None)
