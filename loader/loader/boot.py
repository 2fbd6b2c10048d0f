# The boot sequence: mount littlefs, let the journal finish or undo what was in flight, then
# start the application (`<mount>/app/main.py`, function main()).
import sys


def boot(board):
    from loader import api

    board.mount()
    ld = api.loader()
    rec = ld.recover()
    return ld, rec


def run_app(ld):
    sys.path.insert(0, ld.app_dir)
    try:
        import main
    except ImportError:
        return False
    finally:
        sys.path.pop(0)
    entry = getattr(main, "main", None)
    if entry is not None:
        entry()
    return True
