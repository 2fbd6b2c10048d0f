# The power-on entry of the firmware (frozen; MicroPython runs it before the REPL): mount
# littlefs, let the journal finish or undo what was in flight, confirm a new loader that proved
# healthy, then start the application (the agent) from littlefs. A reset or an injected power
# cut stops the machine here; a loader error is printed and the REPL stays available for a
# local update.
from loader.boot import power_on

power_on()
