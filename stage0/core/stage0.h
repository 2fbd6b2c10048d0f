/**
 * @file stage0.h
 * stage0's portable core: decide which loader to start, installing or restoring it first when
 * the journal says so. The core never jumps: the port does, from the result.
 */
#ifndef SUTURE_STAGE0_H
#define SUTURE_STAGE0_H

#include <stdint.h>

#include "suture/errors.h"
#include "suture/image.h"

/** Trial boots a new loader gets to confirm itself before stage0 restores the backup. */
#define SUTURE_MAX_TRIAL_BOOTS 3u

/** What the core decided. */
typedef struct suture_boot_result {
    int ok;                  /**< 1: start the loader below; 0: recovery */
    uint32_t vector_table;   /**< CPU address of the loader's vector table */
    uint32_t security_counter;
} suture_boot_result_t;

/**
 * Run stage0's decision: act on the journal, verify, return the loader to start.
 * @param out the decision (never NULL)
 */
void suture_stage0_run(suture_boot_result_t *out);

/** @return a short text for an error code. */
const char *suture_strerror(int err);

#endif /* SUTURE_STAGE0_H */
