"""The vendor side: the GNAP authorization server, the protected release repository (the
resource server), HTTP Message Signatures and biscuit tokens for direct download.

- :mod:`suture.vendor_services.httpsig`: sign and verify requests (RFC 9421, RFC 9530) as GNAP asks.
- :mod:`suture.vendor_services.gnap`: the authorization server (RFC 9635, RFC 9767) and its client.
- :mod:`suture.vendor_services.repository`: releases on disk and the resource server
  that serves them.
- :mod:`suture.vendor_services.biscuits`: device biscuits for direct download.
- :func:`suture.vendor_services.app.create_app`: one ASGI app with the AS and the RS.
"""
