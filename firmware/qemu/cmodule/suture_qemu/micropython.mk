# The `suture_qemu` native module: NOR flash semantics on the memory-mapped flash of the QEMU
# boards, the second UART (the device link), and the frozen boot entry.
SUTURE_QEMU_DIR := $(USERMOD_DIR)
SRC_USERMOD_C += $(SUTURE_QEMU_DIR)/modsuture_qemu.c
