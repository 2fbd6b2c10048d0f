# What the agent and the application call: one Loader per boot, on the board the HAL selects.
_loader = None


def loader():
    global _loader
    if _loader is None:
        from loader.core import Loader
        from loader.hal import board

        _loader = Loader(board())
    return _loader


def status():
    """The journal's current record (loader.journal.Record)."""
    return loader().journal.current


def stage(envelope, stream, install=True):
    """Verify a SUIT envelope and copy its payload from stream into the staging slot."""
    return loader().stage(envelope, stream, install)


def request_install():
    loader().request_install()


def confirm():
    """The application is healthy: make the trial version permanent."""
    loader().confirm()


def request_revert():
    """Ask for the previous version back; it is restored at the next boot."""
    loader().request_revert()


def nvm():
    """The versioned NVM store (loader.nvm.Nvm) as the running application sees it."""
    return loader().nvm()
