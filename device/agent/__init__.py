# suture's update agent: polls the hospital scheduler for this device's signed schedule,
# downloads and stages updates through the loader (verifying while it writes), installs them
# inside the window when the application is not busy, confirms after a health check, and
# reports every step. It sits above the loader (loader.api) and below the application, which
# gives it two hooks: busy() and health(). Modules are imported lazily where they are large.
__version__ = "0.1.0"
