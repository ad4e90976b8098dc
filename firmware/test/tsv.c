#include "tsv.h"

#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdarg.h>
#include <string.h>

#include <cmocka.h>

void tsv_open(tsv_t *t, const char *name)
{
    char path[512];
    int n = snprintf(path, sizeof(path), "%s/%s", DCP_VECTORS_DIR, name);
    assert_true(n > 0 && (size_t)n < sizeof(path));
    memset(t, 0, sizeof(*t));
    t->f = fopen(path, "r");
    if (t->f == NULL) {
        fail_msg("cannot open %s", path);
    }
}

void tsv_close(tsv_t *t)
{
    fclose(t->f);
    t->f = NULL;
}

bool tsv_next(tsv_t *t)
{
    while (fgets(t->line, sizeof(t->line), t->f) != NULL) {
        t->lineno++;
        size_t len = strlen(t->line);
        if (len > 0 && t->line[len - 1] == '\n') {
            t->line[--len] = '\0';
        } else if (!feof(t->f)) {
            fail_msg("line %u longer than %d bytes", t->lineno, TSV_LINE_MAX);
        }
        if (strncmp(t->line, "#@ ", 3) == 0) {
            snprintf(t->section, sizeof(t->section), "%s", t->line + 3);
            continue;
        }
        if (len == 0 || t->line[0] == '#') {
            continue;
        }
        t->ncols = 0;
        char *p = t->line;
        for (;;) {
            if (t->ncols == TSV_MAX_COLS) {
                fail_msg("line %u: too many columns", t->lineno);
            }
            t->cols[t->ncols++] = p;
            char *tab = strchr(p, '\t');
            if (tab == NULL) {
                break;
            }
            *tab = '\0';
            p = tab + 1;
        }
        return true;
    }
    return false;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

size_t tsv_unescape(const char *in, uint8_t *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; in[i] != '\0'; i++) {
        uint8_t b = (uint8_t)in[i];
        if (b == '\\') {
            if (in[i + 1] == '\\') {
                i++;
            } else if (in[i + 1] == 'x' && hexval(in[i + 2]) >= 0 && hexval(in[i + 3]) >= 0) {
                b = (uint8_t)(hexval(in[i + 2]) * 16 + hexval(in[i + 3]));
                i += 3;
            } else {
                fail_msg("bad escape in \"%s\"", in);
            }
        }
        if (n >= cap) {
            fail_msg("value too long: \"%.40s\"", in);
        }
        out[n++] = b;
    }
    return n;
}

size_t tsv_unhex(const char *in, size_t n, uint8_t *out, size_t cap)
{
    if (n % 2 != 0 || n / 2 > cap) {
        fail_msg("bad hex \"%.*s\"", (int)n, in);
    }
    for (size_t i = 0; i < n; i += 2) {
        int hi = hexval(in[i]);
        int lo = hexval(in[i + 1]);
        if (hi < 0 || lo < 0) {
            fail_msg("bad hex \"%.*s\"", (int)n, in);
        }
        out[i / 2] = (uint8_t)(hi * 16 + lo);
    }
    return n / 2;
}

bool tsv_field(const char *fields, const char *key, char *out, size_t cap)
{
    size_t klen = strlen(key);
    const char *p = fields;
    while (*p != '\0') {
        const char *end = strchr(p, ' ');
        size_t tlen = (end != NULL) ? (size_t)(end - p) : strlen(p);
        if (tlen > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
            char raw[TSV_LINE_MAX];
            size_t vlen = tlen - klen - 1;
            memcpy(raw, p + klen + 1, vlen);
            raw[vlen] = '\0';
            size_t n = tsv_unescape(raw, (uint8_t *)out, cap - 1);
            out[n] = '\0';
            return true;
        }
        if (end == NULL) {
            break;
        }
        p = end + 1;
    }
    return false;
}
