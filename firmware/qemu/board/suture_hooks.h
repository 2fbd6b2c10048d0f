// Included before every C file of the firmware (mpconfigboard.mk): the VM's periodic hook
// polls the console for Ctrl-C (firmware/qemu/cmodule/suture_qemu/modsuture_qemu.c).
#ifndef SUTURE_HOOKS_H
#define SUTURE_HOOKS_H
void suture_qemu_poll_console(void);
#define MICROPY_VM_HOOK_LOOP suture_qemu_poll_console();
#endif
