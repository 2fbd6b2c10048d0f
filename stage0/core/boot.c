/**
 * @file boot.c
 * stage0's decisions: act on the journal's loader record (install, trial, revert), then verify
 * the loader slot and say what to start; once a loader update is confirmed, refresh the backup
 * slot with the confirmed loader. Every state change is written to the journal before it is
 * acted on; each step restarts from scratch when resumed, so a power cut at any flash
 * operation resumes or rolls back (docs/stage0.md, "Power cuts").
 */
#include <string.h>

#include "stage0.h"
#include "internal.h"

typedef struct boot_ctx {
    const suture_layout_t *lay;
    suture_journal_record_t rec; /**< the journal's current record */
    uint32_t counter;            /**< the anti-rollback counter */
} boot_ctx_t;

static const char *const ERRORS[] = {
    "ok",
    "flash error",
    "no image header",
    "image size exceeds the slot or the staged size",
    "signature does not verify with the provisioned key",
    "image digest mismatch (corrupt or truncated image)",
    "security counter below the device's counter (rollback)",
    "load address is not the loader slot",
    "no provisioned key",
    "staged bytes do not match the journal's digest",
    "copy did not read back identical",
};

const char *suture_strerror(int err)
{
    if (err < 0 || (unsigned)err >= sizeof ERRORS / sizeof ERRORS[0]) {
        return "unknown error";
    }
    return ERRORS[err];
}

static void refused(const char *where, int rc)
{
    suture_log_msg(where, ": refused: ", suture_strerror(rc));
}

/** Append a loader record derived from the current one. */
static int journal_step(boot_ctx_t *c, uint8_t state, uint8_t boot_count, uint32_t progress)
{
    suture_journal_record_t next = c->rec;
    next.component = SUTURE_COMPONENT_LOADER;
    next.state = state;
    next.boot_count = boot_count;
    next.flags = 0;
    next.progress = progress;
    if (suture_journal_append(&next) != 0) {
        suture_log_msg("journal", ": ", "write failed");
        return -1;
    }
    c->rec = next;
    return 0;
}

static int verify_slot(boot_ctx_t *c, suture_flash_dev_t dev, uint32_t off, const char *name,
                       suture_image_header_t *hdr)
{
    int rc = suture_image_verify(dev, off, c->counter, hdr);
    if (rc != SUTURE_OK) {
        refused(name, rc);
    }
    return rc;
}

/** Copy the loader slot's image (len bytes) into the backup slot and verify the copy. */
static int backup_copy(boot_ctx_t *c, uint32_t len)
{
    suture_image_header_t hdr;
    int rc = suture_slot_copy(SUTURE_FLASH_INTERNAL, c->lay->loader_off, SUTURE_FLASH_EXTERNAL,
                              c->lay->backup_off, len);
    if (rc == SUTURE_OK) {
        rc = verify_slot(c, SUTURE_FLASH_EXTERNAL, c->lay->backup_off, "backup slot", &hdr);
    }
    if (rc != SUTURE_OK) {
        refused("backup", rc);
    }
    return rc;
}

/** Copy the backup slot back into the loader slot (REVERTING, then REVERTED). */
static void revert(boot_ctx_t *c)
{
    suture_image_header_t hdr;
    if (verify_slot(c, SUTURE_FLASH_EXTERNAL, c->lay->backup_off, "backup slot", &hdr) !=
        SUTURE_OK) {
        return; /* nothing to restore; the loader slot is checked as it is */
    }
    if (c->rec.state != SUTURE_STATE_REVERTING) {
        suture_log_msg("restoring the backup loader", "", "");
        if (journal_step(c, SUTURE_STATE_REVERTING, 0, 0) != 0) {
            return;
        }
    }
    uint32_t len = SUTURE_IMAGE_HEADER_SIZE + hdr.image_size;
    int rc = suture_slot_copy(SUTURE_FLASH_EXTERNAL, c->lay->backup_off, SUTURE_FLASH_INTERNAL,
                              c->lay->loader_off, len);
    if (rc != SUTURE_OK) {
        refused("restore", rc);
        return;
    }
    (void)journal_step(c, SUTURE_STATE_REVERTED, 0, len);
}

/** Verify the staged image and the journal record's claims about it (size, digest). */
static int check_staged(boot_ctx_t *c)
{
    suture_image_header_t hdr;
    uint8_t digest[32];
    int rc = SUTURE_ESTAGED;
    if (c->rec.size < SUTURE_IMAGE_HEADER_SIZE || c->rec.size > c->lay->slot_size) {
        rc = SUTURE_ESIZE;
    } else if (suture_flash_sha256(SUTURE_FLASH_EXTERNAL, c->lay->staging_off, c->rec.size,
                                   digest) != 0) {
        rc = SUTURE_EFLASH;
    } else if (memcmp(digest, c->rec.digest, sizeof digest) != 0) {
        rc = SUTURE_ESTAGED;
    } else {
        rc = verify_slot(c, SUTURE_FLASH_EXTERNAL, c->lay->staging_off, "staging slot", &hdr);
        if (rc == SUTURE_OK && SUTURE_IMAGE_HEADER_SIZE + hdr.image_size != c->rec.size) {
            rc = SUTURE_ESIZE;
        }
    }
    if (rc != SUTURE_OK) {
        refused("staged loader", rc);
    }
    return rc;
}

/** Install the staged loader: BACKUP, INSTALLING, then TRIAL; resumes at any of them. */
static void install(boot_ctx_t *c)
{
    suture_image_header_t hdr;
    int rc;
    if (c->rec.state == SUTURE_STATE_STAGED) {
        rc = check_staged(c);
        if (rc != SUTURE_OK) {
            (void)journal_step(c, SUTURE_STATE_FAILED, 0, (uint32_t)rc);
            return;
        }
        suture_log_msg("installing the staged loader", "", "");
        if (journal_step(c, SUTURE_STATE_BACKUP, 0, 0) != 0) {
            return;
        }
    }
    if (c->rec.state == SUTURE_STATE_BACKUP) {
        if (suture_image_verify(SUTURE_FLASH_INTERNAL, c->lay->loader_off, c->counter, &hdr) ==
            SUTURE_OK) {
            rc = backup_copy(c, SUTURE_IMAGE_HEADER_SIZE + hdr.image_size);
            if (rc != SUTURE_OK) {
                (void)journal_step(c, SUTURE_STATE_FAILED, 0, (uint32_t)rc);
                return;
            }
        } else if (suture_hal_flash_erase(SUTURE_FLASH_EXTERNAL, c->lay->backup_off) != 0) {
            return; /* no valid loader to keep: the backup slot holds none */
        }
        if (journal_step(c, SUTURE_STATE_INSTALLING, 0, 0) != 0) {
            return;
        }
    }
    if (c->rec.state == SUTURE_STATE_INSTALLING) {
        /* Check the source again before every copy: never overwrite with what does not verify. */
        rc = check_staged(c);
        if (rc != SUTURE_OK) {
            revert(c);
            return;
        }
        rc = suture_slot_copy(SUTURE_FLASH_EXTERNAL, c->lay->staging_off, SUTURE_FLASH_INTERNAL,
                              c->lay->loader_off, c->rec.size);
        if (rc == SUTURE_OK) {
            rc = verify_slot(c, SUTURE_FLASH_INTERNAL, c->lay->loader_off, "installed loader",
                             &hdr);
        }
        if (rc != SUTURE_OK) {
            revert(c);
            return;
        }
        (void)journal_step(c, SUTURE_STATE_TRIAL, 1, c->rec.size);
    }
}

/** A trial boot: count it, or restore the backup once the trial is used up. */
static void trial(boot_ctx_t *c)
{
    suture_image_header_t hdr;
    if ((c->rec.flags & SUTURE_FLAG_REVERT_REQUESTED) != 0 ||
        c->rec.boot_count >= SUTURE_MAX_TRIAL_BOOTS) {
        suture_log_msg("the new loader did not confirm", "", "");
        revert(c);
        return;
    }
    if (verify_slot(c, SUTURE_FLASH_INTERNAL, c->lay->loader_off, "trial loader", &hdr) !=
        SUTURE_OK) {
        revert(c);
        return;
    }
    (void)journal_step(c, SUTURE_STATE_TRIAL, (uint8_t)(c->rec.boot_count + 1u), c->rec.progress);
}

/**
 * Does the backup slot already hold the loader slot's image (len bytes)? A copy writes the
 * destination's first sector last, after every other sector has been read back identical, so
 * a first sector that matches means the whole copy finished: comparing it is enough.
 */
static int backup_matches(const suture_layout_t *lay, uint32_t len)
{
    uint8_t a[256], b[256];
    uint32_t n = len < lay->sector_size ? len : lay->sector_size;
    for (uint32_t done = 0; done < n; done += sizeof a) {
        uint32_t k = n - done < sizeof a ? n - done : (uint32_t)sizeof a;
        if (suture_hal_flash_read(SUTURE_FLASH_INTERNAL, lay->loader_off + done, a, k) != 0 ||
            suture_hal_flash_read(SUTURE_FLASH_EXTERNAL, lay->backup_off + done, b, k) != 0 ||
            memcmp(a, b, k) != 0) {
            return 0;
        }
    }
    return 1;
}

/**
 * After a confirmed loader update, make the backup slot a copy of the (verified) loader slot,
 * so that a later restore brings back the confirmed loader, not the one it replaced (which
 * may be below the raised counter). Announced by the CONFIRMED record itself: it runs while
 * the journal's latest loader record is CONFIRMED and the backup differs from the loader
 * slot, restarts from scratch when cut, and once done a boot writes nothing.
 */
static void refresh_backup(boot_ctx_t *c, uint32_t len)
{
    suture_journal_record_t last = c->rec;
    if (backup_matches(c->lay, len)) {
        return;
    }
    /* Other components' records may follow the confirm (an application update staged before
     * the next reset): look back to the latest loader record. */
    if (last.component != SUTURE_COMPONENT_LOADER && suture_journal_read_loader(&last) != 0) {
        return;
    }
    if (last.component == SUTURE_COMPONENT_LOADER && last.state == SUTURE_STATE_CONFIRMED) {
        suture_log_msg("refreshing the backup with the confirmed loader", "", "");
        (void)backup_copy(c, len);
    }
}

static int loader_in_flight(const suture_journal_record_t *rec)
{
    return rec->component == SUTURE_COMPONENT_LOADER &&
           (rec->state == SUTURE_STATE_BACKUP || rec->state == SUTURE_STATE_INSTALLING ||
            rec->state == SUTURE_STATE_TRIAL || rec->state == SUTURE_STATE_REVERTING);
}

static int update_closed(const suture_journal_record_t *rec)
{
    return rec->seq == 0 || rec->state == SUTURE_STATE_IDLE ||
           rec->state == SUTURE_STATE_CONFIRMED || rec->state == SUTURE_STATE_REVERTED ||
           rec->state == SUTURE_STATE_FAILED;
}

void suture_stage0_run(suture_boot_result_t *out)
{
    boot_ctx_t c;
    suture_image_header_t hdr;
    c.lay = suture_hal_layout();
    out->ok = 0;
    out->vector_table = 0;
    out->security_counter = 0;

    if (suture_counter_read(&c.counter) != 0 || suture_journal_read(&c.rec) != 0) {
        suture_log_msg("flash", ": ", "read failed");
        return;
    }
    if (c.rec.component == SUTURE_COMPONENT_LOADER) {
        switch (c.rec.state) {
        case SUTURE_STATE_STAGED:
            if ((c.rec.flags & SUTURE_FLAG_INSTALL_REQUESTED) != 0) {
                install(&c);
            }
            break;
        case SUTURE_STATE_BACKUP:
        case SUTURE_STATE_INSTALLING:
            install(&c);
            break;
        case SUTURE_STATE_TRIAL:
            trial(&c);
            break;
        case SUTURE_STATE_REVERTING:
            revert(&c);
            break;
        default:
            break;
        }
    }
    int rc = verify_slot(&c, SUTURE_FLASH_INTERNAL, c.lay->loader_off, "loader slot", &hdr);
    if (rc != SUTURE_OK && (c.rec.component == SUTURE_COMPONENT_LOADER || update_closed(&c.rec))) {
        revert(&c); /* a damaged loader slot with a good backup: restore it */
        rc = verify_slot(&c, SUTURE_FLASH_INTERNAL, c.lay->loader_off, "loader slot", &hdr);
    }
    if (rc != SUTURE_OK) {
        return;
    }
    if (!loader_in_flight(&c.rec) && hdr.security_counter > c.counter) {
        /* Outside a trial the loader slot holds a confirmed loader: never go below it. */
        if (suture_counter_raise(hdr.security_counter) != 0) {
            suture_log_msg("counter", ": ", "write failed");
        }
    }
    refresh_backup(&c, SUTURE_IMAGE_HEADER_SIZE + hdr.image_size);
    out->ok = 1;
    out->vector_table = hdr.load_address;
    out->security_counter = hdr.security_counter;
}
