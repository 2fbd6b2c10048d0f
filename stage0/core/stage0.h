/**
 * @file stage0.h
 * stage0's portable core: decide which loader to start, installing or restoring it first when
 * the journal says so. The core never jumps: the port does, from the result.
 */
#ifndef SUTURE_STAGE0_H
#define SUTURE_STAGE0_H

#include <stdint.h>

#include "suture/image.h"

/** Trial boots a new loader gets to confirm itself before stage0 restores the backup. */
#define SUTURE_MAX_TRIAL_BOOTS 3u

/** Error codes (also written to the journal's `progress` of a FAILED record). */
enum {
    SUTURE_OK = 0,
    SUTURE_EFLASH = 1,      /**< a flash operation failed */
    SUTURE_EMAGIC = 2,      /**< no image header (bad magic or header version/size) */
    SUTURE_ESIZE = 3,       /**< image larger than its slot, or staged size mismatch */
    SUTURE_ESIGNATURE = 4,  /**< signature does not verify with the provisioned key */
    SUTURE_EDIGEST = 5,     /**< body digest mismatch: corrupt or truncated image */
    SUTURE_EROLLBACK = 6,   /**< security counter below the device's counter */
    SUTURE_EADDRESS = 7,    /**< load address is not the loader slot's */
    SUTURE_EKEY = 8,        /**< no provisioned key */
    SUTURE_ESTAGED = 9,     /**< staged bytes do not match the journal's digest */
    SUTURE_ECOPY = 10,      /**< a copy did not read back identical */
};

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
