"""What `suture board …` does to a board: flash its images (:mod:`~suture.boardops.flashing`,
:mod:`~suture.boardops.flash_runner`, through the pinned tools' APIs: esptool in
:mod:`~suture.boardops.esp`, adafruit-nrfutil in :mod:`~suture.boardops.nrf_dfu`, pyocd in
:mod:`~suture.boardops.probe`, their output kept off the terminal by
:mod:`~suture.boardops.toolio`), provision it
(:mod:`~suture.boardops.provision`, enrolling it with :mod:`~suture.boardops.scheduler_client`)
and decommission it (:mod:`~suture.boardops.decommission`),
deploy an application and update it locally over USB (:mod:`~suture.boardops.deploy`) or a debug
probe (:mod:`~suture.boardops.swd`), through one open board (:mod:`~suture.boardops.session`)."""
