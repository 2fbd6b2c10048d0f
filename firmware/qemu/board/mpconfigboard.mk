# MicroPython board definition for the QEMU mps2 Cortex-M boards under stage0: MicroPython's
# ports/qemu (v1.28.0) built as a loader image. Passed as BOARD_DIR by `make firmware`
# (suture.firmware.build); SUTURE_CPU, SUTURE_MACHINE and SUTURE_LOAD_ADDRESS come from there.
QEMU_ARCH = arm
QEMU_MACHINE = $(SUTURE_MACHINE)

CFLAGS += -mthumb -mcpu=$(SUTURE_CPU) -mfloat-abi=soft
CFLAGS += -DQEMU_SOC_MPS2
CFLAGS += -DMICROPY_HW_MCU_NAME='"$(SUTURE_CPU)"'

# Linked to run from the loader slot: stage0 verifies the image and jumps to its vector table.
LDSCRIPT = $(BOARD_DIR)/loader-slot.ld
LDFLAGS += -Wl,--defsym=SUTURE_LOAD_ADDRESS=$(SUTURE_LOAD_ADDRESS)
# The frozen boot entry runs before the REPL (cmodule/suture_qemu/modsuture_qemu.c).
LDFLAGS += -Wl,--wrap=pyexec_friendly_repl
# Ctrl-C interrupts running Python code (the VM's loop hook polls UART0; stdin gets the rest).
CFLAGS += -include $(BOARD_DIR)/suture_hooks.h
LDFLAGS += -Wl,--wrap=mp_hal_stdin_rx_chr -Wl,--wrap=mp_hal_stdio_poll
# time.sleep sleeps with WFI between SysTick interrupts instead of busy-waiting (an idle device
# costs the host almost no CPU).
LDFLAGS += -Wl,--wrap=mp_hal_delay_ms

SRC_BOARD_O = shared/runtime/gchelper_native.o shared/runtime/gchelper_thumb2.o
MPY_CROSS_FLAGS += -march=armv7m

# A heap the size of a mid-range MCU's (an RP2040 gives MicroPython about 190 KiB): the update
# agent and the application load from littlefs as bytecode.
MICROPY_HEAP_SIZE = 196608

# littlefs on the internal flash, as on the real boards.
MICROPY_VFS_LFS2 = 1
