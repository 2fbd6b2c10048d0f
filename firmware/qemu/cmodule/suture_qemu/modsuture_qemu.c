/**
 * @file modsuture_qemu.c
 * The `suture_qemu` native module of the QEMU mps2 firmware:
 *  - the power-on entry: the port's main() starts the REPL; the link wraps that call
 *    (-Wl,--wrap=pyexec_friendly_repl) so the frozen `suture_boot` module runs first, once;
 *  - the second CMSDK UART (UART1), the device link to the host's gateway: polled reads and
 *    writes of whole buffers, so Python does not loop per byte;
 *  - mp_hal_time_ns(), which littlefs's VFS links against: the mps2 boards have no RTC, so it
 *    counts from power-on (the loader mounts littlefs with mtime=False; the agent's wall clock
 *    comes from the scheduler's signed resync);
 *  - mp_hal_delay_ms() (-Wl,--wrap): the port busy-waits on its tick counter, so every idle
 *    device would burn a host core; this one sleeps with WFI between the port's 1 ms SysTick
 *    interrupts (ports/qemu/mcu/arm/ticks.c) and polls the console for Ctrl-C while it sleeps;
 *  - NorBlockDev, littlefs's block device on the internal flash, in C (see below).
 */
#include <stdint.h>
#include <string.h>

#include "py/mperrno.h"
#include "py/mphal.h"
#include "py/runtime.h"
#include "py/stream.h"
#include "shared/runtime/pyexec.h"

#define UART1_BASE 0x40005000u
#define UART_DATA (*(volatile uint32_t *)(UART1_BASE + 0x0u))
#define UART_STATE (*(volatile uint32_t *)(UART1_BASE + 0x4u))
#define UART_CTRL (*(volatile uint32_t *)(UART1_BASE + 0x8u))
#define UART_BAUDDIV (*(volatile uint32_t *)(UART1_BASE + 0x10u))
#define STATE_TX_FULL 0x1u
#define STATE_RX_FULL 0x2u

#define SUTURE_WFI() __asm volatile ("wfi" ::: "memory")

uint64_t mp_hal_time_ns(void) {
    return (uint64_t)mp_hal_ticks_ms() * 1000000u;
}

int __real_pyexec_friendly_repl(void);
int __wrap_pyexec_friendly_repl(void);

static int booted;

int __wrap_pyexec_friendly_repl(void) {
    if (!booted) {
        booted = 1;
        int ret = pyexec_frozen_module("suture_boot.py", true);
        if (ret & PYEXEC_FORCED_EXIT) {
            return ret;
        }
    }
    return __real_pyexec_friendly_repl();
}

static void uart1_init(void) {
    if ((UART_CTRL & 3u) != 3u) {
        UART_BAUDDIV = 16;
        UART_CTRL = 3u; /* TX and RX enabled */
    }
}

/* uart1_write(buf): send every byte of buf. */
static mp_obj_t suture_uart1_write(mp_obj_t buf_in) {
    mp_buffer_info_t buf;
    mp_get_buffer_raise(buf_in, &buf, MP_BUFFER_READ);
    uart1_init();
    const uint8_t *p = buf.buf;
    for (size_t i = 0; i < buf.len; i++) {
        while (UART_STATE & STATE_TX_FULL) {
        }
        UART_DATA = p[i];
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(suture_uart1_write_obj, suture_uart1_write);

/* Spin this long after the last byte before sleeping between checks: frames come back to
 * back while a response streams, and a sleep costs up to one tick (1 ms) per byte. */
#define QUIET_MS 3u

/* uart1_readinto(buf, timeout_ms) -> n: fill buf; stop early when no byte came for timeout_ms
 * (0 < n < len(buf)), or return 0 when none came at all. */
static mp_obj_t suture_uart1_readinto(mp_obj_t buf_in, mp_obj_t timeout_in) {
    mp_buffer_info_t buf;
    mp_get_buffer_raise(buf_in, &buf, MP_BUFFER_WRITE);
    mp_uint_t timeout = mp_obj_get_int(timeout_in);
    uart1_init();
    uint8_t *p = buf.buf;
    size_t n = 0;
    mp_uint_t last = mp_hal_ticks_ms();
    while (n < buf.len) {
        if (UART_STATE & STATE_RX_FULL) {
            p[n++] = (uint8_t)UART_DATA;
            last = mp_hal_ticks_ms();
        } else {
            mp_uint_t quiet = mp_hal_ticks_ms() - last;
            if (quiet >= timeout) {
                break;
            }
            if (quiet >= QUIET_MS) {
                /* no byte for a while (the gateway waits on the scheduler, or nobody is
                 * there): sleep to the next tick instead of spinning; a byte that comes
                 * meanwhile waits in the UART, the gateway's side holds the rest */
                SUTURE_WFI();
            }
        }
    }
    return MP_OBJ_NEW_SMALL_INT(n);
}
static MP_DEFINE_CONST_FUN_OBJ_2(suture_uart1_readinto_obj, suture_uart1_readinto);

/*
 * NorBlockDev(fallback, mem, offset, size, sector, page, cut_word): littlefs's block device
 * over [offset, offset + size) of the flash memory `mem` (a bytearray_at), with the NOR rules
 * of loader/loader/hal/qemu.py (erase sets a sector to 0xFF, program only clears bits; a
 * program over non-erased bits or outside the region is an I/O error for littlefs).
 *
 * Why in C: littlefs calls its block device in the middle of its operations, with open files
 * and directories linked in its list of open objects. A block device in Python allocates
 * (call frames, slices), an allocation may start a garbage collection, and the collection runs
 * the finalisers of unreachable open files and directory iterators, which close them: littlefs
 * re-entered, unlinking and freeing a node of the very list the interrupted operation walks
 * (a HardFault on the freed node's next pointer, in lfs2_dir_orphaningcommit). Here no
 * operation allocates, so no collection runs inside littlefs.
 *
 * While stage0's power-cut control block is armed (magic "SCUT" at cut_word: the power-cut
 * tests), every operation goes to `fallback`, the Python block device that counts operations
 * and cuts them; the others count nothing, so skipping Python changes no count.
 */
#define CUT_MAGIC 0x54554353u

typedef struct _nor_blockdev_obj_t {
    mp_obj_base_t base;
    mp_obj_t fallback;
    uint8_t *mem;
    uint32_t size;
    uint32_t sector;
    uint32_t page;
    volatile uint32_t *cut;
} nor_blockdev_obj_t;

static bool nor_armed(nor_blockdev_obj_t *self) {
    return self->cut[0] == CUT_MAGIC;
}

static mp_obj_t nor_fallback(nor_blockdev_obj_t *self, qstr method, size_t n_args,
                             const mp_obj_t *args) {
    mp_obj_t call[2 + 3];
    mp_load_method(self->fallback, method, call);
    for (size_t i = 0; i < n_args; i++) {
        call[2 + i] = args[i];
    }
    return mp_call_method_n_kw(n_args, 0, call);
}

static mp_obj_t nor_make_new(const mp_obj_type_t *type, size_t n_args, size_t n_kw,
                             const mp_obj_t *args) {
    mp_arg_check_num(n_args, n_kw, 7, 7, false);
    mp_buffer_info_t mem;
    mp_get_buffer_raise(args[1], &mem, MP_BUFFER_RW);
    mp_uint_t offset = mp_obj_get_int(args[2]);
    mp_uint_t size = mp_obj_get_int(args[3]);
    mp_uint_t sector = mp_obj_get_int(args[4]);
    mp_uint_t page = mp_obj_get_int(args[5]);
    if (sector == 0 || page == 0 || sector % page || offset % sector || size % sector ||
        offset + size > mem.len) {
        mp_raise_ValueError(MP_ERROR_TEXT("region outside the flash or not sector-aligned"));
    }
    nor_blockdev_obj_t *self = mp_obj_malloc(nor_blockdev_obj_t, type);
    self->fallback = args[0];
    self->mem = (uint8_t *)mem.buf + offset;
    self->size = size;
    self->sector = sector;
    self->page = page;
    self->cut = (volatile uint32_t *)(uintptr_t)mp_obj_get_int_truncated(args[6]);
    return MP_OBJ_FROM_PTR(self);
}

static mp_obj_t nor_result(int err) {
    return MP_OBJ_NEW_SMALL_INT(err);
}

/* readblocks(block, buf, off=0) */
static mp_obj_t nor_readblocks(size_t n_args, const mp_obj_t *args) {
    nor_blockdev_obj_t *self = MP_OBJ_TO_PTR(args[0]);
    if (nor_armed(self)) {
        return nor_fallback(self, MP_QSTR_readblocks, n_args - 1, args + 1);
    }
    mp_buffer_info_t buf;
    mp_get_buffer_raise(args[2], &buf, MP_BUFFER_WRITE);
    mp_uint_t addr = mp_obj_get_int(args[1]) * self->sector;
    if (n_args > 3) {
        addr += mp_obj_get_int(args[3]);
    }
    if (addr > self->size || buf.len > self->size - addr) {
        return nor_result(-MP_EIO);
    }
    memcpy(buf.buf, self->mem + addr, buf.len);
    return nor_result(0);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(nor_readblocks_obj, 3, 4, nor_readblocks);

static void nor_erase(nor_blockdev_obj_t *self, mp_uint_t block) {
    memset(self->mem + block * self->sector, 0xff, self->sector);
}

/* writeblocks(block, buf, off=None): without off, erase the block first */
static mp_obj_t nor_writeblocks(size_t n_args, const mp_obj_t *args) {
    nor_blockdev_obj_t *self = MP_OBJ_TO_PTR(args[0]);
    if (nor_armed(self)) {
        return nor_fallback(self, MP_QSTR_writeblocks, n_args - 1, args + 1);
    }
    mp_buffer_info_t buf;
    mp_get_buffer_raise(args[2], &buf, MP_BUFFER_READ);
    mp_uint_t block = mp_obj_get_int(args[1]);
    mp_uint_t addr = block * self->sector;
    if (n_args > 3 && args[3] != mp_const_none) {
        addr += mp_obj_get_int(args[3]);
    } else if (block < self->size / self->sector) {
        nor_erase(self, block);
    }
    if (addr > self->size || buf.len > self->size - addr) {
        return nor_result(-MP_EIO);
    }
    const uint8_t *data = buf.buf;
    uint8_t *flash = self->mem + addr;
    for (size_t i = 0; i < buf.len; i++) {
        if ((flash[i] & data[i]) != data[i]) {
            return nor_result(-MP_EIO); /* programming an erased bit back: not NOR */
        }
    }
    memcpy(flash, data, buf.len);
    return nor_result(0);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(nor_writeblocks_obj, 3, 4, nor_writeblocks);

/* ioctl(op, arg): 4 block count, 5 block size, 6 erase block arg */
static mp_obj_t nor_ioctl(mp_obj_t self_in, mp_obj_t op_in, mp_obj_t arg_in) {
    nor_blockdev_obj_t *self = MP_OBJ_TO_PTR(self_in);
    mp_int_t op = mp_obj_get_int(op_in);
    if (op == 4) {
        return MP_OBJ_NEW_SMALL_INT(self->size / self->sector);
    }
    if (op == 5) {
        return MP_OBJ_NEW_SMALL_INT(self->sector);
    }
    if (op == 6) {
        if (nor_armed(self)) {
            mp_obj_t args[2] = { op_in, arg_in };
            return nor_fallback(self, MP_QSTR_ioctl, 2, args);
        }
        mp_uint_t block = mp_obj_get_int(arg_in);
        if (block >= self->size / self->sector) {
            return nor_result(-MP_EIO);
        }
        nor_erase(self, block);
    }
    return nor_result(0);
}
static MP_DEFINE_CONST_FUN_OBJ_3(nor_ioctl_obj, nor_ioctl);

static const mp_rom_map_elem_t nor_locals_table[] = {
    { MP_ROM_QSTR(MP_QSTR_readblocks), MP_ROM_PTR(&nor_readblocks_obj) },
    { MP_ROM_QSTR(MP_QSTR_writeblocks), MP_ROM_PTR(&nor_writeblocks_obj) },
    { MP_ROM_QSTR(MP_QSTR_ioctl), MP_ROM_PTR(&nor_ioctl_obj) },
};
static MP_DEFINE_CONST_DICT(nor_locals, nor_locals_table);

static MP_DEFINE_CONST_OBJ_TYPE(
    nor_blockdev_type,
    MP_QSTR_NorBlockDev,
    MP_TYPE_FLAG_NONE,
    make_new, nor_make_new,
    locals_dict, &nor_locals
    );

static const mp_rom_map_elem_t suture_qemu_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_suture_qemu) },
    { MP_ROM_QSTR(MP_QSTR_uart1_write), MP_ROM_PTR(&suture_uart1_write_obj) },
    { MP_ROM_QSTR(MP_QSTR_uart1_readinto), MP_ROM_PTR(&suture_uart1_readinto_obj) },
    { MP_ROM_QSTR(MP_QSTR_NorBlockDev), MP_ROM_PTR(&nor_blockdev_type) },
};
static MP_DEFINE_CONST_DICT(suture_qemu_globals, suture_qemu_globals_table);

const mp_obj_module_t suture_qemu_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&suture_qemu_globals,
};

MP_REGISTER_MODULE(MP_QSTR_suture_qemu, suture_qemu_module);

/*
 * Ctrl-C on the console while Python code runs. The port reads UART0 only when MicroPython
 * waits for input, so an application that never returns could not be interrupted from the
 * console, as it can on a real board's USB or UART REPL. Every 256th branch of the VM
 * (MICROPY_VM_HOOK_LOOP, set in the board's suture_hooks.h) takes the bytes waiting on UART0:
 * the interrupt character schedules KeyboardInterrupt, any other byte is held for the next read
 * of stdin (the wrapped mp_hal_stdin_rx_chr returns held bytes first, in order).
 */
#define UART0_BASE 0x40004000u
#define UART0_DATA (*(volatile uint32_t *)(UART0_BASE + 0x0u))
#define UART0_STATE (*(volatile uint32_t *)(UART0_BASE + 0x4u))
#define HELD_SIZE 64u

static uint8_t held[HELD_SIZE];
static unsigned held_head;
static unsigned held_tail;
static unsigned branches;

static void poll_console(void) {
    while ((UART0_STATE & STATE_RX_FULL) && held_tail - held_head < HELD_SIZE) {
        int c = (int)(UART0_DATA & 0xffu);
        if (c == mp_interrupt_char) {
            mp_sched_keyboard_interrupt();
        } else {
            held[held_tail++ % HELD_SIZE] = (uint8_t)c;
        }
    }
}

void suture_qemu_poll_console(void) {
    if (++branches & 0xffu) {
        return;
    }
    poll_console();
}

/* MICROPY_INTERNAL_EVENT_HOOK: before MicroPython's event wait sleeps (MICROPY_INTERNAL_WFE,
 * WFI in suture_hooks.h), the console's bytes are taken in, so Ctrl-C ends a select.poll. */
void suture_qemu_event_hook(void) {
    poll_console();
}

/*
 * time.sleep and friends. The port's SysTick interrupt (1 ms, ports/qemu/mcu/arm/ticks.c)
 * advances the tick counter and ends each WFI, so a sleeping device costs the host almost
 * nothing; under -icount with sleep=off QEMU jumps its virtual clock to the next tick instead,
 * so instruction counts and virtual time stay as with the busy wait. Ctrl-C on the console
 * interrupts the sleep (KeyboardInterrupt), as the VM hook does for running code.
 */
void __real_mp_hal_delay_ms(mp_uint_t ms);
void __wrap_mp_hal_delay_ms(mp_uint_t ms);

void __wrap_mp_hal_delay_ms(mp_uint_t ms) {
    mp_uint_t start = mp_hal_ticks_ms();
    for (;;) {
        poll_console();
        mp_handle_pending(true);
        if (mp_hal_ticks_ms() - start >= ms) {
            return;
        }
        SUTURE_WFI();
    }
}

int __real_mp_hal_stdin_rx_chr(void);
int __wrap_mp_hal_stdin_rx_chr(void);

int __wrap_mp_hal_stdin_rx_chr(void) {
    if (held_head != held_tail) {
        return held[held_head++ % HELD_SIZE];
    }
    return __real_mp_hal_stdin_rx_chr();
}

// sys.stdin's poll must see the held bytes too (select.poll on stdin, the status protocol).
uintptr_t __real_mp_hal_stdio_poll(uintptr_t poll_flags);
uintptr_t __wrap_mp_hal_stdio_poll(uintptr_t poll_flags);

uintptr_t __wrap_mp_hal_stdio_poll(uintptr_t poll_flags) {
    if (poll_flags & MP_STREAM_POLL_RD) {
        /* Ctrl-C is an interrupt, never input, as a real board's UART interrupt makes it: the
         * console's bytes are taken in first, the rest is held for stdin */
        poll_console();
        return (held_head != held_tail ? MP_STREAM_POLL_RD : 0u) |
               (__real_mp_hal_stdio_poll(poll_flags & ~MP_STREAM_POLL_RD));
    }
    return __real_mp_hal_stdio_poll(poll_flags);
}
