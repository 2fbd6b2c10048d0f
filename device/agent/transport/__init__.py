# The transport: one method, request(method, url, headers, body) -> Response. HTTP/1.1 over a
# socket (transport/http.py) where the board has IP; the device link (transport/link.py: frames
# over a UART to the host's gateway) where it has not. default() picks one for the board. A Response gives status, a few headers (lower-case
# names) and readinto(buf) for the body; close() it when done.


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


def default():
    """The transport of this board: the device link on the QEMU boards' second UART, HTTP
    elsewhere."""
    import sys

    if sys.platform == "qemu":
        from agent.transport.link import LinkTransport, QemuUart1

        return LinkTransport(QemuUart1())
    from agent.transport.http import HttpTransport

    return HttpTransport()
