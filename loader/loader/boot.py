# The boot sequence: mount littlefs, let the journal finish or undo what was in flight, then
# start the application (`<mount>/app/main.py`, function main()). power_on() is the firmware's
# entry (frozen `suture_boot`); the simulator drives boot() and run_app() through simcli.
import sys

from loader import journal as J


def boot(board):
    from loader import api

    board.mount()
    ld = api.loader()
    rec = ld.recover()
    return ld, rec


def run_app(ld):
    """Import the application's main.py and call its main(). Returns False when there is no
    main.py; anything the application raises (while importing or running) propagates: the
    caller decides (power_on catches it, see app_failed)."""
    sys.path.insert(0, ld.app_dir)
    try:
        try:
            import main
        except ImportError:
            if _has_main(ld.app_dir):  # main.py exists: an import inside it failed
                raise
            return False
    finally:
        sys.path.pop(0)
    entry = getattr(main, "main", None)
    if entry is not None:
        entry()
    return True


def _has_main(app_dir):
    import os

    try:
        names = os.listdir(app_dir)
    except OSError:
        return False
    return "main.py" in names or "main.mpy" in names


def app_failed(ld, exc):
    """The application (code the loader did not write) raised exc. Say so on one line; the
    boot goes on as if the application had stopped. An application on trial that fails is not
    confirmed: True asks the caller to reset, so the failure ends this boot like a watchdog
    would, and the trial's boot count reaches max_trial_boots and reverts it (the simulated
    board counts a crashing application the same way: its process ends, the next boot
    counts). A confirmed application that fails is left stopped (no reset loop)."""
    print("suture: application failed: %s: %s" % (type(exc).__name__, exc))
    try:
        r = ld.journal.current
        trial = r.component == J.COMPONENT_APP and r.state == J.TRIAL
    except Exception:
        trial = False
    if trial:
        print("suture: the trial is not confirmed; resetting (boot %d of %d)"
              % (r.boot_count, ld.board.max_trial_boots))
    return trial


def loader_healthy(ld):
    """The checks a new loader passes before it confirms itself: it got this far (the journal
    read and settled, littlefs mounted), and it reads back the installed application exactly
    as it was signed (flash, littlefs and SHA-256 work). Returns None, or what failed."""
    inst = ld.installed()
    if inst.version and ld.app_digest()[1] != inst.digest:
        return "the installed application does not match its digest"
    return None


def settle_loader(ld, rec):
    """A loader trial (stage0 just installed this firmware): confirm it when healthy, else ask
    stage0 for the previous loader and reset."""
    problem = loader_healthy(ld)
    if problem is None:
        ld.confirm_loader()
        print("suture: loader confirmed (release %d)" % rec.version)
        return
    print("suture: loader unhealthy: %s; reverting" % problem)
    ld.request_loader_revert()
    ld.board.reset()


def power_on():
    """Power-on of the firmware: boot, settle a loader trial, run the application. Prints a
    `suture: boot ...` line for people and one `SUTURE-BOOT <journal state>` line (or BLANK,
    POWERCUT, RESET, ERROR) that the harness and the HIL suite read, as the simulator does."""
    from loader.errors import LoaderError, PowerCut, Reset
    from loader.hal import board as get_board

    b = None
    try:
        b = get_board()
        try:
            ld, rec = boot(b)
        except OSError as e:
            # littlefs does not mount: for a loader on trial that is a failed health check.
            from loader import api

            ld = api.loader()
            rec = ld.journal.current
            print("suture: littlefs does not mount (%s)" % e)
            if rec.component == J.COMPONENT_LOADER and rec.state == J.TRIAL:
                ld.request_loader_revert()
                b.reset()
            print("SUTURE-BOOT BLANK", e)
            return
        print("suture: boot %s %s seq %d version %d" % (
            J.COMPONENT_NAMES.get(rec.component, "?"), rec.name(), rec.seq, rec.version))
        print("SUTURE-BOOT", rec.name())
        if rec.component == J.COMPONENT_LOADER and rec.state == J.TRIAL:
            settle_loader(ld, rec)
        try:
            ran = run_app(ld)
        except (PowerCut, Reset, KeyboardInterrupt):
            raise
        except BaseException as e:  # whatever the application raises, SystemExit too
            if app_failed(ld, e):
                b.reset()
        else:
            print("suture: application %s" % ("returned" if ran else "missing"))
    except PowerCut:
        # Injected by the harness: every later flash operation fails too, so the REPL that
        # follows changes nothing; the harness pulls the plug.
        print("suture: POWER CUT (injected)")
        print("SUTURE-BOOT POWERCUT")
    except Reset:
        print("suture: reset")
        print("SUTURE-BOOT RESET")
        _stop(b)
    except LoaderError as e:
        print("suture: error %s %d %s" % (type(e).__name__, e.code, e))
        print("SUTURE-BOOT ERROR", type(e).__name__, e)


def _stop(board):
    """End this run: the harness (or the hardware) starts the next boot."""
    import machine

    reset = getattr(machine, "reset", None)
    if reset is None:  # the unix port: a reset ends the process (exit 98, as simcli's)
        sys.exit(98)
    reset()
