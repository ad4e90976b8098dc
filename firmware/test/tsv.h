/* Reader for the shared vector files in firmware/vectors (format: see chunks.tsv header). */
#ifndef TSV_H
#define TSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define TSV_MAX_COLS 6
#define TSV_LINE_MAX 8192

typedef struct {
    FILE *f;
    unsigned lineno;
    char section[32]; /* name after the last "#@ " marker line, "" before any */
    char line[TSV_LINE_MAX];
    char *cols[TSV_MAX_COLS];
    size_t ncols;
} tsv_t;

/* Opens DCP_VECTORS_DIR/name; fails the test when it cannot. */
void tsv_open(tsv_t *t, const char *name);
/* Next vector line; false at the end of the file. Fails the test on a malformed line. */
bool tsv_next(tsv_t *t);
void tsv_close(tsv_t *t);

/* Decodes \xNN and \\ escapes into out; returns the length. Fails the test on a bad escape
 * or when out is too small. */
size_t tsv_unescape(const char *in, uint8_t *out, size_t cap);
/* Decodes lower-case hex into out; returns the length. */
size_t tsv_unhex(const char *in, size_t n, uint8_t *out, size_t cap);
/* Value of key in a space-separated key=value list, unescaped into out (NUL-terminated);
 * false when the key is absent. */
bool tsv_field(const char *fields, const char *key, char *out, size_t cap);

#endif
