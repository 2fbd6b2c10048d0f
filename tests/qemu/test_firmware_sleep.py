"""time.sleep on the real firmware: WFI between SysTick interrupts (modsuture_qemu.c wraps
mp_hal_delay_ms), so an idle device costs the host little CPU; the sleep still lasts as long,
Ctrl-C on the console still interrupts it, and under -icount virtual time stays right."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from suture.boards import load_board
from suture.qemu import QemuDevice

from .conftest import BOARD, Firmware

pytestmark = [pytest.mark.qemu, pytest.mark.slow]


def _fresh(firmware: Firmware, folder: Path, *, icount: bool = False) -> QemuDevice:
    dev = QemuDevice(load_board(BOARD), firmware.stage0_elf, folder, icount=icount)
    dev.factory_flash(firmware.build.loader_image.read_bytes(),
                      firmware.loader_key.public_key())
    dev.power_on()
    return dev


def test_sleeping_device_leaves_the_host_cpu_alone(firmware: Firmware, tmp_path: Path) -> None:
    dev = _fresh(firmware, tmp_path / "dev")
    try:
        t0 = time.monotonic()
        out = dev.exec("import time\n_a = time.ticks_ms()\ntime.sleep(1.5)\n"
                       "print(time.ticks_diff(time.ticks_ms(), _a))")
        wall = time.monotonic() - t0
        assert 1500 <= int(out.strip()) <= 1600
        assert wall >= 1.4
        fraction = dev.idle_cpu(3.0)
        assert fraction < 0.35, fraction  # the port's busy wait costs a whole core (~1.0)
        waiting = dev.idle_cpu(3.0, console=True)  # the agent's wait: select.poll on stdin
        assert waiting < 0.35, waiting
    finally:
        dev.power_off()


def test_ctrl_c_interrupts_a_sleep(firmware: Firmware, tmp_path: Path) -> None:
    dev = _fresh(firmware, tmp_path / "dev")
    try:
        assert dev.proc is not None
        assert dev.proc.stdin is not None
        dev.proc.stdin.write(b"import time; time.sleep(60)\r")
        dev.proc.stdin.flush()
        time.sleep(1.0)
        t0 = time.monotonic()
        dev.proc.stdin.write(b"\x03")
        dev.proc.stdin.flush()
        boot = dev.watch(b"KeyboardInterrupt", timeout_s=10)
        assert not boot.stopped
        assert time.monotonic() - t0 < 5
        assert dev.exec("print(6 * 7)").strip() == "42"  # the REPL still answers
    finally:
        dev.power_off()


def test_ctrl_c_interrupts_a_console_poll(firmware: Firmware, tmp_path: Path) -> None:
    dev = _fresh(firmware, tmp_path / "dev")
    try:
        assert dev.proc is not None
        assert dev.proc.stdin is not None
        dev.proc.stdin.write(b"import select, sys; p = select.poll(); "
                             b"p.register(sys.stdin, select.POLLIN); p.poll(60000)\r")
        dev.proc.stdin.flush()
        time.sleep(1.0)
        t0 = time.monotonic()
        dev.interrupt()
        boot = dev.watch(b"KeyboardInterrupt", timeout_s=10)
        assert not boot.stopped
        assert time.monotonic() - t0 < 5
        assert dev.exec("print(6 * 7)").strip() == "42"
    finally:
        dev.power_off()


def test_sleep_under_icount_ends_and_keeps_ticks(firmware: Firmware, tmp_path: Path) -> None:
    """-icount shift=0,sleep=off (bench/firmware.py): the sleep ends at once in host time and
    lasts its ticks. QEMU 7.2 jumps its virtual clock to each SysTick deadline while the CPU
    waits; measured by the FPGA's 25 MHz counter (0x40028018) a WFI sleep takes up to twice the
    virtual time of a busy wait on ticks_ms (nothing the benchmark measures sleeps)."""
    dev = _fresh(firmware, tmp_path / "dev", icount=True)
    measure = ("import time, machine\n_t = time.ticks_ms()\n_a = machine.mem32[0x40028018]\n"
               "{}\nprint(machine.mem32[0x40028018] - _a, time.ticks_diff(time.ticks_ms(), _t))")
    busy = "_s = time.ticks_ms()\nwhile time.ticks_diff(time.ticks_ms(), _s) < 500:\n    pass"
    try:
        t0 = time.monotonic()
        slept, slept_ms = map(int, dev.exec(measure.format("time.sleep_ms(500)")).split())
        assert time.monotonic() - t0 < 5
        spun, spun_ms = map(int, dev.exec(measure.format(busy)).split())
        assert 500 <= slept_ms <= 505
        assert 500 <= spun_ms <= 505
        assert spun <= slept <= spun * 21 // 10, (slept, spun)
    finally:
        dev.power_off()
