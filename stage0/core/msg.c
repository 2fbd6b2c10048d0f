/** @file msg.c  Console messages: "stage0: <a><b><c>\r\n". */
#include "internal.h"

void suture_log_msg(const char *a, const char *b, const char *c)
{
    suture_hal_puts("stage0: ");
    suture_hal_puts(a);
    suture_hal_puts(b);
    suture_hal_puts(c);
    suture_hal_puts("\r\n");
}

void suture_u32_to_dec(uint32_t v, char out[11])
{
    char tmp[10];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0);
    for (int i = 0; i < n; i++) {
        out[i] = tmp[n - 1 - i];
    }
    out[n] = '\0';
}
