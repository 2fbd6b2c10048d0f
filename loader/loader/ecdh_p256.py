# ECDH on P-256 (SEC1 3.3.1) for ECDH-ES+AES-KW: the x coordinate of d*Q for the device's static
# private key d and a sender's ephemeral public key Q (checked to be on the curve). A Montgomery
# ladder with a fixed number of steps over the curve arithmetic of ecdsa_p256; MicroPython's
# integers are not constant time, so the device key's exposure to timing is noted in
# docs/suit.md.
from loader import ecdsa_p256
from loader.errors import SuitError

N = ecdsa_p256.N
P = ecdsa_p256.P


def shared_secret(d, qx, qy):
    """32-byte x(d*Q); SuitError when Q is not a point of P-256 or the result is infinity."""
    if not ecdsa_p256.on_curve(qx, qy):
        raise SuitError("ECDH: the ephemeral key is not on P-256")
    if not 0 < d < N:
        raise SuitError("ECDH: private key out of range")
    r0 = None
    r1 = (qx, qy, 1)
    for i in range(255, -1, -1):
        if (d >> i) & 1:
            r0 = ecdsa_p256.add(r0, r1)
            r1 = ecdsa_p256.double(r1)
        else:
            r1 = ecdsa_p256.add(r0, r1)
            r0 = ecdsa_p256.double(r0)
    if r0 is None:
        raise SuitError("ECDH: the shared point is infinity")
    x, _, z = r0
    zi = pow(z, P - 2, P)
    return (x * zi * zi % P).to_bytes(32, "big")
