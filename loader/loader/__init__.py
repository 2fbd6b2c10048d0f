# suture's loader: the lowest MicroPython layer of the device. It owns the journal, SUIT
# verification, install / trial / confirm / revert of the application bundle, and the versioned
# NVM store. The update agent and the application use it through loader.api; it never imports
# them. Submodules are imported lazily, so `import loader` costs almost nothing.
__version__ = "0.1.0"
