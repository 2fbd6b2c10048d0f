"""GNAP (RFC 9635, RFC 9767): the vendor's authorization server and the client the scheduler uses.

- :mod:`~suture.vendor_services.gnap.authorization`: the AS's decisions (grants, continuation, token
  management, introspection, discovery), free of any web framework;
- :mod:`~suture.vendor_services.gnap.server`: its HTTP routes;
- :mod:`~suture.vendor_services.gnap.client`: :class:`GnapClient`, a client instance;
- :mod:`~suture.vendor_services.gnap.rights`: access rights for releases and the rollout they carry;
- :mod:`~suture.vendor_services.gnap.clients`: registered clients and resource servers;
- :mod:`~suture.vendor_services.gnap.grants`: grants and tokens held by the AS;
- :mod:`~suture.vendor_services.gnap.errors`: GNAP error codes.
"""
