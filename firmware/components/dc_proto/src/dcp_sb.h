/* Bounded string builder (internal). Always NUL-terminated; overflow is sticky. */
#ifndef DCP_SB_H
#define DCP_SB_H

#include "dcp_common.h"

typedef struct {
    char *buf;
    size_t size;
    size_t len;
    bool overflow;
} dcp_sb_t;

void dcp_sb_init(dcp_sb_t *sb, char *buf, size_t size);
void dcp_sb_putc(dcp_sb_t *sb, char c);
void dcp_sb_puts(dcp_sb_t *sb, const char *s);
void dcp_sb_put_u32(dcp_sb_t *sb, uint32_t v);
/* v in lower-case hex, exactly digits digits (1..8). */
void dcp_sb_put_hex(dcp_sb_t *sb, uint32_t v, unsigned digits);
/* v / 10^decimals with exactly decimals digits after the point (decimals 1..3). */
void dcp_sb_put_fixed(dcp_sb_t *sb, int64_t v, unsigned decimals);
/* Echo of untrusted bytes: outside 0x20..0x7e and '+' become '?'; optionally upper-cased. */
void dcp_sb_put_echo(dcp_sb_t *sb, const uint8_t *s, size_t n, bool upper);
/* Length, or -1 after an overflow. */
int dcp_sb_result(const dcp_sb_t *sb);

#endif
