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

# cryptolib (AES-ECB, CBC and CTR) over mbed TLS's aes.c alone, from Debian's source of mbed TLS
# 2.28.3 (SUTURE_MBEDTLS_DIR, unpacked by suture.firmware.mbedtls), configured by this board's
# mbedtls_config.h: the loader decrypts encrypted releases with it. hashlib keeps MicroPython's
# own SHA-256 (MICROPY_SSL_MBEDTLS is set for cryptolib only).
ifeq ($(SUTURE_MBEDTLS_DIR),)
$(error SUTURE_MBEDTLS_DIR is not set: build with `make firmware` (suture.firmware.build))
endif
SUTURE_MBEDTLS_CFLAGS = -I$(SUTURE_MBEDTLS_DIR)/include \
	-DMBEDTLS_CONFIG_FILE='"$(BOARD_DIR)/mbedtls_config.h"'
CFLAGS += -DMICROPY_PY_CRYPTOLIB=1 -DMICROPY_PY_CRYPTOLIB_CTR=1 -DMICROPY_PY_CRYPTOLIB_CONSTS=1
$(BUILD)/extmod/modcryptolib.o: CFLAGS += -DMICROPY_SSL_MBEDTLS=1 $(SUTURE_MBEDTLS_CFLAGS)
SUTURE_MBEDTLS_O = $(SUTURE_MBEDTLS_DIR)/library/aes.o $(SUTURE_MBEDTLS_DIR)/library/platform_util.o
SRC_BOARD_O += $(SUTURE_MBEDTLS_O)
$(addprefix $(BUILD)/,$(SUTURE_MBEDTLS_O)): CFLAGS += $(SUTURE_MBEDTLS_CFLAGS)
