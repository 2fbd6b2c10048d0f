# Freeze manifest for MicroPython's build: the loader package with the real-board and QEMU HALs
# only, and `suture_boot`, the power-on entry. The simulator's modules (hal/sim.py,
# hal/simflash.py, simcli.py) are never frozen: suture.sim compiles the whole package to .mpy
# with mpy-cross for the unix port instead. A board's manifest (`suture board firmware-config`)
# includes this one and adds the board's `board_config`.
metadata(
    version="0.2.0",
    description="suture loader: journal, SUIT/ES256 verification, install, trial, revert, NVM",
)

package(
    "loader",
    files=(
        "__init__.py",
        "aeskw.py",
        "aesstream.py",
        "api.py",
        "boot.py",
        "bundle.py",
        "console.py",
        "cbor.py",
        "core.py",
        "cose.py",
        "delta.py",
        "ecdh_p256.py",
        "ecdsa_p256.py",
        "encrypted.py",
        "errors.py",
        "flash.py",
        "installed.py",
        "journal.py",
        "loader_image.py",
        "localink.py",
        "mac0.py",
        "nvm.py",
        "staging.py",
        "suit.py",
        "suit_encryption.py",
        "suit_hospital.py",
        "suit_report.py",
        "trust.py",
        "hal/__init__.py",
        "hal/mcu.py",
        "hal/qemu.py",
    ),
    opt=3,
)
module("suture_boot.py", opt=3)
