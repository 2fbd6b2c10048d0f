"""The ward simulator: a real scheduler on SQLite and N simulated devices running the update
agent, taken through a staged rollout (docs/ward-simulator.md).

- :mod:`suture.ward.release` builds signed releases of the example application (agent included);
- :mod:`suture.ward.server` runs the scheduler on a free loopback port;
- :mod:`suture.ward.fleet` provisions devices and runs their MicroPython processes;
- :mod:`suture.ward.proxy` injects network faults; :mod:`suture.ward.run` ties it together.
"""
