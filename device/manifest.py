# Freeze manifest (MicroPython's build: FROZEN_MANIFEST) for a firmware image that carries the
# agent frozen beside the loader. On the simulator and in signed application bundles the agent
# ships as .mpy files in littlefs instead (suture.ward.release builds them).
metadata(version="0.1.0", description="suture update agent and example application")
package("agent", base_path=".")
module("application.py", base_path="app")
module("release.py", base_path="app")
