# The boot script of the simulated board (suture.devicectl.sim_target writes it into the device
# folder; the unix port runs it with -i). It does what stage0 and the frozen loader do on a real
# board: mount littlefs, let the journal finish or undo what was in flight, print
# "SUTURE-BOOT <journal state>", run the application, print "SUTURE-APP-END" once it has
# returned (the host interrupts only a running application), then the REPL.
from loader.errors import LoaderError, PowerCut
from loader.hal import board as _board
from loader.hal.sim import Reset

try:
    from loader.boot import boot as _boot

    _ld, _rec = _boot(_board())
    print("SUTURE-BOOT", _rec.name())
    from loader.boot import run_app as _run_app

    _run_app(_ld)
except Reset:
    print("SUTURE-BOOT RESET")
except PowerCut:
    print("SUTURE-BOOT POWERCUT")
except LoaderError as _e:
    print("SUTURE-BOOT ERROR", type(_e).__name__, _e)
except OSError as _e:
    print("SUTURE-BOOT BLANK", _e)
finally:
    print("SUTURE-APP-END")
