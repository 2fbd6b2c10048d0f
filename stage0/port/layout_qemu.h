/**
 * @file layout_qemu.h
 * The flash map of the QEMU mps2 boards (boards/qemu-mps2-an385, -an386, -an505), shared by the mps2
 * port and the host build so that the same flash images serve both.
 */
#ifndef SUTURE_LAYOUT_QEMU_H
#define SUTURE_LAYOUT_QEMU_H

#define SUTURE_QEMU_INTERNAL_SIZE 0x100000u
#define SUTURE_QEMU_EXTERNAL_SIZE 0x200000u

/** A suture_layout_t initialiser; run_addr is the CPU address of the loader slot + 512. */
#define SUTURE_QEMU_LAYOUT(run_addr)                                                          \
    {                                                                                         \
        .sector_size = 4096, .page_size = 256, .provision_off = 0xF000,                       \
        .counter_off = 0x10000, .loader_off = 0x20000, .slot_size = 0xE0000,                  \
        .loader_run_addr = (run_addr), .journal_off = 0x0, .staging_off = 0x10000,            \
        .backup_off = 0x100000,                                                               \
    }

#endif
