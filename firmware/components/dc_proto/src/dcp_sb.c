#include "dcp_sb.h"

void dcp_sb_init(dcp_sb_t *sb, char *buf, size_t size)
{
    sb->buf = buf;
    sb->size = size;
    sb->len = 0;
    sb->overflow = (buf == NULL || size == 0);
    if (!sb->overflow) {
        buf[0] = '\0';
    }
}

void dcp_sb_putc(dcp_sb_t *sb, char c)
{
    if (sb->overflow || sb->len + 1 >= sb->size) {
        sb->overflow = true;
        return;
    }
    sb->buf[sb->len++] = c;
    sb->buf[sb->len] = '\0';
}

void dcp_sb_puts(dcp_sb_t *sb, const char *s)
{
    while (*s != '\0') {
        dcp_sb_putc(sb, *s++);
    }
}

void dcp_sb_put_u32(dcp_sb_t *sb, uint32_t v)
{
    char tmp[10];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + (v % 10u));
        v /= 10u;
    } while (v != 0u);
    while (n > 0) {
        dcp_sb_putc(sb, tmp[--n]);
    }
}

void dcp_sb_put_hex(dcp_sb_t *sb, uint32_t v, unsigned digits)
{
    static const char hex[] = "0123456789abcdef";
    if (digits == 0 || digits > 8) {
        sb->overflow = true;
        return;
    }
    for (unsigned i = digits; i > 0; i--) {
        dcp_sb_putc(sb, hex[(v >> (4u * (i - 1u))) & 0xFu]);
    }
}

void dcp_sb_put_fixed(dcp_sb_t *sb, int64_t v, unsigned decimals)
{
    static const uint32_t scale[] = {1u, 10u, 100u, 1000u};
    if (decimals == 0 || decimals > 3) {
        sb->overflow = true;
        return;
    }
    uint64_t mag = (v < 0) ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    if (v < 0) {
        dcp_sb_putc(sb, '-');
    }
    uint64_t whole = mag / scale[decimals];
    uint32_t frac = (uint32_t)(mag % scale[decimals]);
    if (whole > UINT32_MAX) {
        sb->overflow = true;
        return;
    }
    dcp_sb_put_u32(sb, (uint32_t)whole);
    dcp_sb_putc(sb, '.');
    for (unsigned i = decimals; i > 0; i--) {
        dcp_sb_putc(sb, (char)('0' + (frac / scale[i - 1u]) % 10u));
    }
}

void dcp_sb_put_echo(dcp_sb_t *sb, const uint8_t *s, size_t n, bool upper)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (c < 0x20u || c > 0x7Eu || c == '+') {
            c = '?';
        } else if (upper && c >= 'a' && c <= 'z') {
            c = (uint8_t)(c - 'a' + 'A');
        }
        dcp_sb_putc(sb, (char)c);
    }
}

int dcp_sb_result(const dcp_sb_t *sb)
{
    return sb->overflow ? -1 : (int)sb->len;
}
