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
 *    interrupts (ports/qemu/mcu/arm/ticks.c) and polls the console for Ctrl-C while it sleeps.
 */
#include <stdint.h>

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

static const mp_rom_map_elem_t suture_qemu_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_suture_qemu) },
    { MP_ROM_QSTR(MP_QSTR_uart1_write), MP_ROM_PTR(&suture_uart1_write_obj) },
    { MP_ROM_QSTR(MP_QSTR_uart1_readinto), MP_ROM_PTR(&suture_uart1_readinto_obj) },
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
