/**
 * @file errors.h
 * stage0's error codes: the C copy of stage0's table in host/suture/formats/error_codes.toml,
 * the one table of the device's error codes (docs/formats/error-codes.md explains them).
 * Written by hand and checked against the table both ways by
 * tests/formats/test_error_code_copies.py: a code changed, missing or added here fails that
 * test.
 *
 * stage0 writes them into the journal's `progress` of a loader FAILED record. stage0's range is
 * 1..19; the loader's (20..99) and the agent's (100..199) never overlap it, so a code alone
 * says which layer wrote it.
 */
#ifndef SUTURE_ERRORS_H
#define SUTURE_ERRORS_H

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

#endif /* SUTURE_ERRORS_H */
