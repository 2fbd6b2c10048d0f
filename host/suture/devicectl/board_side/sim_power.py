# The simulated board's supply (loader/hal/simflash.py): arm a power cut that strikes after n
# more flash operations, in the middle of whatever the board does next.
from loader.hal.simflash import supply


def arm_power_cut(n):
    supply.cut_after = supply.ops + n
    return {"cut_after": supply.cut_after}
