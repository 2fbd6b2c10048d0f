# A tiny example application: what a medical device's own code gives the update agent.
#   VERSION   the release it belongs to (release.py is written when the bundle is built)
#   busy()    True while the device is in clinical use (a patient is connected): no install
#   health()  True when the application works; checked after the reboot into a new release
# On the simulator "a patient is connected" is a file named `patient-connected` in the
# device's folder; a real device would ask its sensors.
import os

try:
    from release import FAULT, VERSION
except ImportError:
    VERSION = 0
    FAULT = ""


def busy():
    try:
        os.stat("patient-connected")
        return True
    except OSError:
        return False


def health():
    # A release built with FAULT = "unhealthy" stands for one whose application fails its
    # self-checks on the device (the ward simulator's --bad-release).
    return FAULT != "unhealthy"


def start():
    print("APP version %d running" % VERSION)
