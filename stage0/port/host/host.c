/**
 * @file host.c
 * stage0 on the host: both flash devices are files with NOR semantics held in memory, every
 * erase and program is counted, and power can be cut at the N-th one, cleanly (the operation
 * does not happen) or mid-operation (a torn program, a half-finished erase).
 *
 *   stage0-host boot INTERNAL EXTERNAL
 *       boot once; write the flash files back; print "jump 0x..." (exit 0) or "recovery" (exit 3)
 *   stage0-host sweep INTERNAL EXTERNAL EXPECT_DIGEST_HEX EXPECT_STATE [-c] [-b HEX] [-k N]
 *       for every N and both cut kinds: cut power at the N-th flash operation of a boot from
 *       these files, then boot again until stable; check that every boot starts a verified
 *       loader, the last one is the expected image (header digest), the journal is consistent
 *       and ends in EXPECT_STATE; then again with a second cut in the boot that resumes from
 *       the first. Prints "cut points: K" and "double cuts: D". Exit 0 when every check held.
 *       -c: after each boot the started loader confirms a loader trial (appends CONFIRMED, as
 *           the loader's confirm_loader does), and the cuts run over the whole path: every
 *           boot until one writes nothing, the loader's append included, not just the first.
 *       -b HEX: at the end the backup slot must verify and carry this header digest.
 *       -k N: at the end the anti-rollback counter must be N.
 *   stage0-host crypto
 *       answer SHA-256 and P-256 requests from standard input (crypto_check.c)
 */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "suture/counter.h"
#include "suture/journal.h"
#include "../../core/internal.h"
#include "../../core/stage0.h"
#include "../layout_qemu.h"
#include "crypto_check.h"

#define INTERNAL_SIZE SUTURE_QEMU_INTERNAL_SIZE
#define EXTERNAL_SIZE SUTURE_QEMU_EXTERNAL_SIZE

/* The an385 map: images built for mps2-an385 boot here unchanged. */
static const suture_layout_t LAYOUT = SUTURE_QEMU_LAYOUT(0x00020200u);

static uint8_t flash_int[INTERNAL_SIZE], flash_ext[EXTERNAL_SIZE];
static uint8_t init_int[INTERNAL_SIZE], init_ext[EXTERNAL_SIZE];
static unsigned long ops;     /* erase + program operations so far */
static unsigned long cut_at;  /* cut power at this operation (1-based); 0: never */
static int cut_partial;       /* 1: the cut operation is half done */
static jmp_buf power_cut;
static int quiet;
static int confirm;             /* sweep -c: the loader confirms its trial */
static int check_backup;        /* sweep -b: the backup slot's expected header digest */
static uint8_t expect_backup[32];
static long expect_counter = -1; /* sweep -k: the counter at the end */

const suture_layout_t *suture_hal_layout(void) { return &LAYOUT; }

static uint8_t *device(suture_flash_dev_t dev, uint32_t off, uint32_t len)
{
    uint32_t size = dev == SUTURE_FLASH_INTERNAL ? INTERNAL_SIZE : EXTERNAL_SIZE;
    if (off > size || len > size - off) {
        return NULL;
    }
    return (dev == SUTURE_FLASH_INTERNAL ? flash_int : flash_ext) + off;
}

int suture_hal_flash_read(suture_flash_dev_t dev, uint32_t off, void *buf, uint32_t len)
{
    uint8_t *p = device(dev, off, len);
    if (p == NULL) {
        return -1;
    }
    memcpy(buf, p, len);
    return 0;
}

static int cut_now(void)
{
    ops++;
    return cut_at != 0 && ops == cut_at;
}

int suture_hal_flash_erase(suture_flash_dev_t dev, uint32_t off)
{
    uint8_t *p = device(dev, off, LAYOUT.sector_size);
    if (p == NULL || off % LAYOUT.sector_size != 0) {
        return -1;
    }
    if (cut_now()) {
        if (cut_partial) {
            memset(p, 0xFF, LAYOUT.sector_size / 2); /* neither erased nor intact */
        }
        longjmp(power_cut, 1);
    }
    memset(p, 0xFF, LAYOUT.sector_size);
    return 0;
}

int suture_hal_flash_program(suture_flash_dev_t dev, uint32_t off, const void *buf, uint32_t len)
{
    uint8_t *p = device(dev, off, len);
    const uint8_t *src = buf;
    if (p == NULL || len == 0 || off / LAYOUT.page_size != (off + len - 1) / LAYOUT.page_size) {
        return -1;
    }
    uint32_t n = len;
    int cut = cut_now();
    if (cut) {
        n = cut_partial ? len / 2 : 0; /* a torn program */
    }
    for (uint32_t i = 0; i < n; i++) {
        p[i] &= src[i]; /* NOR: programming only clears bits */
    }
    if (cut) {
        longjmp(power_cut, 1);
    }
    return 0;
}

void suture_hal_puts(const char *s)
{
    if (!quiet) {
        fputs(s, stdout);
    }
}

static int load(const char *path, uint8_t *buf, size_t size)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    size_t n = fread(buf, 1, size, f);
    fclose(f);
    memset(buf + n, 0xFF, size - n);
    return 0;
}

static int save(const char *path, const uint8_t *buf, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(buf, 1, size, f) != size) {
        perror(path);
        if (f != NULL) {
            fclose(f);
        }
        return -1;
    }
    return fclose(f);
}

static int cmd_boot(const char *int_path, const char *ext_path)
{
    suture_boot_result_t res;
    if (load(int_path, flash_int, INTERNAL_SIZE) != 0 ||
        load(ext_path, flash_ext, EXTERNAL_SIZE) != 0) {
        return 2;
    }
    suture_stage0_run(&res);
    if (save(int_path, flash_int, INTERNAL_SIZE) != 0 ||
        save(ext_path, flash_ext, EXTERNAL_SIZE) != 0) {
        return 2;
    }
    if (!res.ok) {
        printf("recovery\n");
        return 3;
    }
    printf("jump 0x%08lx counter %lu ops %lu\n", (unsigned long)res.vector_table,
           (unsigned long)res.security_counter, ops);
    return 0;
}

/* ---- the sweep ---- */

static const uint8_t *header_digest(const uint8_t *slot) { return slot + 36; }

/** Journal consistency: per sector, valid records rise with the slot; no seq twice. */
static int journal_consistent(uint8_t *last_state)
{
    uint32_t best = 0;
    uint32_t slots = LAYOUT.sector_size / SUTURE_JOURNAL_RECORD_SIZE;
    for (uint32_t s = 0; s < 2; s++) {
        uint32_t prev = 0;
        for (uint32_t i = 0; i < slots; i++) {
            suture_journal_record_t r;
            memcpy(&r, flash_ext + LAYOUT.journal_off + s * LAYOUT.sector_size +
                           i * SUTURE_JOURNAL_RECORD_SIZE, sizeof r);
            if (r.magic != SUTURE_JOURNAL_MAGIC ||
                suture_crc32(&r, SUTURE_JOURNAL_CRC_SPAN) != r.crc32) {
                continue;
            }
            if (r.seq <= prev || r.seq == best) {
                return 0;
            }
            prev = r.seq;
            if (r.seq > best) {
                best = r.seq;
                *last_state = r.state;
            }
        }
    }
    return best != 0;
}

static int matches_known(const uint8_t *digest)
{
    return memcmp(digest, header_digest(init_int + LAYOUT.loader_off), 32) == 0 ||
           memcmp(digest, header_digest(init_ext + LAYOUT.staging_off), 32) == 0 ||
           memcmp(digest, header_digest(init_ext + LAYOUT.backup_off), 32) == 0;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    return -1;
}

static int parse_hex32(const char *s, uint8_t out[32])
{
    if (strlen(s) != 64) return -1;
    for (int i = 0; i < 32; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0) return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/**
 * The loader's part of a boot (sweep -c): a loader on trial confirms itself the way
 * loader/core.py's confirm_loader does: the TRIAL record again, state CONFIRMED, flags and
 * progress 0. Its journal append is a flash operation like stage0's, so it is cut too.
 */
static void loader_confirms(void)
{
    suture_journal_record_t r;
    if (suture_journal_read(&r) != 0 || r.component != SUTURE_COMPONENT_LOADER ||
        r.state != SUTURE_STATE_TRIAL || (r.flags & SUTURE_FLAG_REVERT_REQUESTED) != 0) {
        return;
    }
    r.state = SUTURE_STATE_CONFIRMED;
    r.flags = 0;
    r.progress = 0;
    (void)suture_journal_append(&r);
}

/** One boot: stage0, then (with -c) the loader it started. */
static void boot_once(suture_boot_result_t *res)
{
    suture_stage0_run(res);
    if (confirm && res->ok) {
        loader_confirms();
    }
}

/** The end state's extra checks (-b, -k). @return a failure's description, or NULL. */
static const char *end_state_problem(void)
{
    uint32_t counter;
    suture_image_header_t hdr;
    if (suture_counter_read(&counter) != 0) {
        return "counter unreadable";
    }
    if (expect_counter >= 0 && counter != (uint32_t)expect_counter) {
        return "counter not the expected value";
    }
    if (check_backup &&
        (suture_image_verify(SUTURE_FLASH_EXTERNAL, LAYOUT.backup_off, counter, &hdr) !=
             SUTURE_OK ||
         memcmp(hdr.digest, expect_backup, 32) != 0)) {
        return "backup slot does not hold the expected verified loader";
    }
    return NULL;
}

/** One cut at operation n, then boots until stable. @return 1: cut happened and all held. */
static int sweep_one(unsigned long n, int partial, unsigned long second,
                     const uint8_t expect[32], int expect_state, int *failed)
{
    suture_boot_result_t res;
    memcpy(flash_int, init_int, INTERNAL_SIZE);
    memcpy(flash_ext, init_ext, EXTERNAL_SIZE);
    ops = 0;
    cut_at = n;
    cut_partial = partial;
    if (setjmp(power_cut) == 0) {
        /* The path: one boot; with -c every boot until one writes nothing. */
        for (int boot = 0; boot < (confirm ? 16 : 1); boot++) {
            unsigned long before = ops;
            boot_once(&res);
            if (ops == before) {
                break;
            }
        }
        return 0; /* the path finished before operation n: the sweep is done */
    }
    if (second != 0) {
        /* A second cut during the boot that resumes from the first. */
        cut_at = ops + second;
        cut_partial = !partial;
        if (setjmp(power_cut) == 0) {
            boot_once(&res);
        }
    }
    cut_at = 0;
    for (int boot = 0; boot < 16; boot++) {
        unsigned long before = ops;
        boot_once(&res);
        const uint8_t *slot = flash_int + LAYOUT.loader_off;
        if (!res.ok || !matches_known(header_digest(slot))) {
            printf("FAIL cut %lu %s: boot %d %s\n", n, partial ? "partial" : "clean", boot,
                   res.ok ? "started an unknown loader" : "found no valid loader");
            *failed = 1;
            return 1;
        }
        if (ops == before) {
            uint8_t state = 0;
            const char *problem = end_state_problem();
            if (memcmp(header_digest(slot), expect, 32) != 0 || !journal_consistent(&state) ||
                (expect_state != 0 && state != expect_state)) {
                printf("FAIL cut %lu %s: stable on the wrong loader or journal (state %u)\n", n,
                       partial ? "partial" : "clean", state);
                *failed = 1;
            } else if (problem != NULL) {
                printf("FAIL cut %lu %s: %s\n", n, partial ? "partial" : "clean", problem);
                *failed = 1;
            }
            return 1;
        }
    }
    printf("FAIL cut %lu %s: never stable\n", n, partial ? "partial" : "clean");
    *failed = 1;
    return 1;
}

static int cmd_sweep(const char *int_path, const char *ext_path, const char *hex, int state)
{
    uint8_t expect[32];
    int failed = 0;
    unsigned long points = 0;
    if (parse_hex32(hex, expect) != 0) {
        fprintf(stderr, "expected digest must be 64 hex digits\n");
        return 2;
    }
    if (load(int_path, init_int, INTERNAL_SIZE) != 0 ||
        load(ext_path, init_ext, EXTERNAL_SIZE) != 0) {
        return 2;
    }
    quiet = 1;
    for (int partial = 0; partial < 2; partial++) {
        for (unsigned long n = 1; sweep_one(n, partial, 0, expect, state, &failed); n++) {
            points++;
        }
    }
    /* Double cuts: after each first cut, cut again 1..37 operations into the resuming boot. */
    unsigned long doubles = 0;
    for (int partial = 0; partial < 2; partial++) {
        for (unsigned long n = 1;
             sweep_one(n, partial, 1 + (n * 7919u) % 37u, expect, state, &failed); n++) {
            doubles++;
        }
    }
    printf("cut points: %lu\ndouble cuts: %lu\n", points, doubles);
    return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "boot") == 0) {
        return cmd_boot(argv[2], argv[3]);
    }
    if (argc >= 6 && strcmp(argv[1], "sweep") == 0) {
        for (int i = 6; i < argc; i++) {
            if (strcmp(argv[i], "-c") == 0) {
                confirm = 1;
            } else if (strcmp(argv[i], "-b") == 0 && i + 1 < argc &&
                       parse_hex32(argv[i + 1], expect_backup) == 0) {
                check_backup = 1;
                i++;
            } else if (strcmp(argv[i], "-k") == 0 && i + 1 < argc) {
                expect_counter = atol(argv[++i]);
            } else {
                fprintf(stderr, "sweep: bad option %s\n", argv[i]);
                return 2;
            }
        }
        return cmd_sweep(argv[2], argv[3], argv[4], atoi(argv[5]));
    }
    if (argc == 2 && strcmp(argv[1], "crypto") == 0) {
        return suture_host_crypto_check();
    }
    fprintf(stderr, "usage: stage0-host boot INTERNAL EXTERNAL\n"
                    "       stage0-host sweep INTERNAL EXTERNAL EXPECT_DIGEST_HEX STATE"
                    " [-c] [-b BACKUP_DIGEST_HEX] [-k COUNTER]\n"
                    "       stage0-host crypto   (requests on standard input)\n");
    return 2;
}
