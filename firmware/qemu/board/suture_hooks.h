// Included before every C file of the firmware (mpconfigboard.mk): the VM's periodic hook
// polls the console for Ctrl-C, and MicroPython's event wait (select.poll with a timeout, the
// agent's idle wait on its console) polls it too and then sleeps with WFI until the next
// interrupt (the 1 ms SysTick) instead of spinning
// (firmware/qemu/cmodule/suture_qemu/modsuture_qemu.c).
#ifndef SUTURE_HOOKS_H
#define SUTURE_HOOKS_H
void suture_qemu_poll_console(void);
void suture_qemu_event_hook(void);
#define MICROPY_VM_HOOK_LOOP suture_qemu_poll_console();
#define MICROPY_INTERNAL_EVENT_HOOK suture_qemu_event_hook()
#define MICROPY_INTERNAL_WFE(TIMEOUT_MS) __asm volatile ("wfi" ::: "memory")
#endif
