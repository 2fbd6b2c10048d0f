"""hawkBit's Direct Device Integration (DDI) API under the scheduler, so that update clients
that speak it (SWUpdate's suricatta, rauc-hawkbit-updater, Zephyr's hawkbit subsystem) are
scheduled by suture's rollouts like suture's own devices (docs/ddi.md).

``schemas`` holds the DDI documents, ``tokens`` the target and gateway tokens, ``service`` what
each DDI request does to the registry and the rollouts, ``routes`` the HTTP routes.
"""
