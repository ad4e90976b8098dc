/* Firmware update receiver (protocol-v1 section 9): every case of vectors/ota.tsv replayed
 * through dcp_ota_command / dcp_ota_data / dcp_ota_conn_closed against a mock flash slot that
 * fails the test when a byte is written twice or outside an erased range, plus the wire format,
 * which commands need a session (with dcp_auth_handle), and flash failures. */
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dcp_auth.h"
#include "dcp_ota.h"
#include "tsv.h"

#define SLOT_MAX 16384u

typedef struct {
    uint8_t bytes[SLOT_MAX];
    uint8_t written[SLOT_MAX];
    uint32_t erased; /* bytes erased by the last begin */
    bool open;
    unsigned begins;
    unsigned aborts;
    unsigned finishes;
    bool fail_write;
    bool fail_begin;
    dcp_ota_finish_t finish_result;
    char version[DCP_OTA_VERSION_MAX];
} flash_t;

static flash_t g_flash;

static bool f_begin(void *ctx, uint32_t size)
{
    flash_t *f = ctx;
    assert_false(f->open);
    if (f->fail_begin) {
        return false;
    }
    f->begins++;
    f->open = true;
    f->erased = size < SLOT_MAX ? size : SLOT_MAX; /* slot sizes above SLOT_MAX: not written here */
    memset(f->bytes, 0xff, sizeof(f->bytes));
    memset(f->written, 0, sizeof(f->written));
    return true;
}

static bool f_write(void *ctx, uint32_t offset, const uint8_t *data, size_t len)
{
    flash_t *f = ctx;
    assert_true(f->open);
    assert_true(len > 0);
    assert_true((uint64_t)offset + len <= f->erased);
    for (size_t i = 0; i < len; i++) {
        assert_int_equal(f->written[offset + i], 0); /* never a byte twice */
        f->written[offset + i] = 1;
        f->bytes[offset + i] = data[i];
    }
    return !f->fail_write;
}

static dcp_ota_finish_t f_finish(void *ctx, const char *version)
{
    flash_t *f = ctx;
    assert_true(f->open);
    f->open = false;
    f->finishes++;
    snprintf(f->version, sizeof(f->version), "%s", version);
    return f->finish_result;
}

static void f_abort(void *ctx)
{
    flash_t *f = ctx;
    assert_true(f->open);
    f->open = false;
    f->aborts++;
}

static const dcp_ota_io_t g_io = {f_begin, f_write, f_finish, f_abort, &g_flash};

/* ---- images of the vector file ------------------------------------------------------------ */

typedef struct {
    char name[4];
    uint32_t size;
    uint32_t a;
    uint32_t b;
    uint8_t sha[32];
    uint8_t bytes[SLOT_MAX];
} image_t;

static image_t g_images[2];
static size_t g_nimages;

static void load_images(void)
{
    tsv_t t;
    g_nimages = 0;
    tsv_open(&t, "ota.tsv");
    while (tsv_next(&t)) {
        if (strcmp(t.section, "image") != 0) {
            continue;
        }
        assert_true(g_nimages < 2);
        image_t *im = &g_images[g_nimages++];
        snprintf(im->name, sizeof(im->name), "%s", t.cols[0]);
        im->size = (uint32_t)strtoul(t.cols[1], NULL, 10);
        im->a = (uint32_t)strtoul(t.cols[2], NULL, 10);
        im->b = (uint32_t)strtoul(t.cols[3], NULL, 10);
        assert_true(im->size <= SLOT_MAX);
        assert_int_equal(tsv_unhex(t.cols[4], 64, im->sha, 32), 32);
        for (uint32_t i = 0; i < im->size; i++) {
            im->bytes[i] = (uint8_t)((im->a * i + im->b) % 256u);
        }
        /* the file's hash is the SHA-256 of these bytes */
        uint8_t h[32];
        size_t hl = 0;
        assert_int_equal(psa_crypto_init(), PSA_SUCCESS);
        assert_int_equal(psa_hash_compute(PSA_ALG_SHA_256, im->bytes, im->size, h, 32, &hl),
                         PSA_SUCCESS);
        assert_memory_equal(h, im->sha, 32);
    }
    tsv_close(&t);
    assert_int_equal(g_nimages, 2);
}

static const image_t *image(const char *name)
{
    for (size_t i = 0; i < g_nimages; i++) {
        if (strcmp(g_images[i].name, name) == 0) {
            return &g_images[i];
        }
    }
    fail_msg("no image %s", name);
    return NULL;
}

static size_t make_chunk(uint8_t *w, uint32_t hdr, const uint8_t *data, size_t n)
{
    w[0] = (uint8_t)hdr;
    w[1] = (uint8_t)(hdr >> 8);
    w[2] = (uint8_t)(hdr >> 16);
    w[3] = (uint8_t)(hdr >> 24);
    memcpy(w + 4, data, n);
    return n + 4;
}

/* ---- replay ------------------------------------------------------------------------------- */

typedef struct {
    dcp_ota_t ota;
    char got[4096];
    unsigned dones;
} run_t;

static void collect(run_t *r, const dcp_ota_result_t *res)
{
    if (res->reply_len == 0) {
        return;
    }
    assert_int_equal(strlen(res->reply), res->reply_len);
    /* one notification (no chunking), except OTA:RX:<next>:<size> with big numbers */
    assert_true(res->reply_len <= DCP_NOTIFY_CHUNK_SIZE || strncmp(res->reply, "OTA:RX:", 7) == 0);
    assert_null(strchr(res->reply, '+'));
    if (r->got[0] != '\0') {
        strcat(r->got, " ");
    }
    strcat(r->got, res->reply);
    if (res->reboot) {
        assert_string_equal(res->reply, "OTA:DONE");
        r->dones++;
    }
}

static void chunk_of(run_t *r, dcp_ota_conn_t conn, const char *arg)
{
    uint8_t w[DCP_OTA_WRITE_MAX + 16];
    size_t n;
    dcp_ota_result_t res;
    if (strncmp(arg, "hex:", 4) == 0) {
        n = tsv_unhex(arg + 4, strlen(arg + 4), w, sizeof(w));
    } else {
        char name[4] = {0};
        unsigned long off = 0;
        unsigned long len = 0;
        unsigned long hdr = 0;
        int k = sscanf(arg, "%3[^:]:%lu:%lu:%lu", name, &off, &len, &hdr);
        assert_true(k == 3 || k == 4);
        const image_t *im = image(name);
        assert_true(off + len <= im->size);
        assert_true(len <= DCP_OTA_WRITE_MAX + 12);
        n = make_chunk(w, (uint32_t)(k == 4 ? hdr : off), im->bytes + off, len);
    }
    if (n > DCP_OTA_WRITE_MAX) {
        return; /* refused at the ATT layer (error 0x0d): never reaches the core */
    }
    dcp_ota_data(&r->ota, conn, w, n, &res);
    collect(r, &res);
}

static void run_case(const char *name)
{
    static run_t r;
    tsv_t t;
    bool found = false;
    load_images();
    memset(&r, 0, sizeof(r));
    memset(&g_flash, 0, sizeof(g_flash));
    g_flash.finish_result = DCP_OTA_FINISH_OK;
    tsv_open(&t, "ota.tsv");
    while (tsv_next(&t)) {
        if (strcmp(t.section, name) != 0) {
            continue;
        }
        assert_int_equal(t.ncols, 4);
        const char *op = t.cols[1];
        const char *arg = t.cols[2];
        dcp_ota_conn_t conn = (dcp_ota_conn_t)strtoul(t.cols[0], NULL, 10);
        dcp_ota_result_t res;
        r.got[0] = '\0';
        if (strcmp(op, "node") == 0) {
            char role = 0;
            static char hw[17];
            unsigned long slot = 0;
            assert_int_equal(sscanf(arg, "%c:%16[^:]:%lu", &role, hw, &slot), 3);
            dcp_ota_init(&r.ota, &g_io, (uint32_t)slot, role, hw);
            found = true;
        } else if (strcmp(op, "cmd") == 0) {
            dcp_ota_command(&r.ota, conn, (const uint8_t *)arg, strlen(arg), &res);
            collect(&r, &res);
        } else if (strcmp(op, "data") == 0) {
            chunk_of(&r, conn, arg);
        } else if (strcmp(op, "send") == 0) {
            char nm[4] = {0};
            unsigned long from = 0;
            unsigned long to = 0;
            unsigned long size = 0;
            assert_int_equal(sscanf(arg, "%3[^:]:%lu:%lu:%lu", nm, &from, &to, &size), 4);
            for (unsigned long o = from; o < to; o += size) {
                char one[48];
                snprintf(one, sizeof(one), "%s:%lu:%lu", nm, o, to - o < size ? to - o : size);
                chunk_of(&r, conn, one);
            }
        } else if (strcmp(op, "close") == 0) {
            dcp_ota_conn_closed(&r.ota, conn);
        } else if (strcmp(op, "finish") == 0) {
            g_flash.finish_result = strcmp(arg, "OK") == 0              ? DCP_OTA_FINISH_OK
                                    : strcmp(arg, "INVALID_IMAGE") == 0 ? DCP_OTA_FINISH_INVALID_IMAGE
                                    : strcmp(arg, "VERSION") == 0       ? DCP_OTA_FINISH_VERSION
                                                                        : DCP_OTA_FINISH_FLASH;
        } else if (strcmp(op, "flash") == 0) {
            if (strcmp(arg, "empty") == 0) {
                for (size_t i = 0; i < SLOT_MAX; i++) {
                    assert_int_equal(g_flash.written[i], 0);
                }
            } else {
                const image_t *im = image(arg);
                assert_memory_equal(g_flash.bytes, im->bytes, im->size);
                for (size_t i = 0; i < SLOT_MAX; i++) {
                    assert_int_equal(g_flash.written[i], i < im->size ? 1 : 0);
                }
            }
        } else {
            fail_msg("line %u: unknown op %s", t.lineno, op);
        }
        const char *want = strcmp(t.cols[3], "-") == 0 ? "" : t.cols[3];
        if (strcmp(r.got, want) != 0) {
            fail_msg("ota.tsv line %u (%s %s): got \"%s\", want \"%s\"", t.lineno, op, arg, r.got,
                     want);
        }
    }
    tsv_close(&t);
    assert_true(found);
    if (strcmp(name, "version_mismatch") == 0) {
        assert_string_equal(g_flash.version, "9.9.9"); /* the declared version reaches finish */
    }
}

#define CASE(n)                                                                                    \
    static void test_case_##n(void **state)                                                        \
    {                                                                                              \
        (void)state;                                                                               \
        run_case(#n);                                                                              \
    }
CASE(full)
CASE(small_chunks)
CASE(declaration)
CASE(refused)
CASE(duplicates_and_gaps)
CASE(resume_after_disconnect)
CASE(resume_after_gap)
CASE(restart_with_other_image)
CASE(second_connection)
CASE(bad_hash)
CASE(abort)
CASE(invalid_image)
CASE(version_mismatch)

static void test_chunk_format(void **state)
{
    (void)state;
    tsv_t t;
    unsigned rows = 0;
    tsv_open(&t, "ota.tsv");
    while (tsv_next(&t)) {
        if (strcmp(t.section, "chunk") != 0) {
            continue;
        }
        uint8_t data[32];
        uint8_t want[40];
        uint8_t w[40];
        size_t n = tsv_unhex(t.cols[1], strlen(t.cols[1]), data, sizeof(data));
        size_t wn = tsv_unhex(t.cols[2], strlen(t.cols[2]), want, sizeof(want));
        assert_int_equal(make_chunk(w, (uint32_t)strtoul(t.cols[0], NULL, 10), data, n), wn);
        assert_memory_equal(w, want, wn);
        rows++;
    }
    tsv_close(&t);
    assert_int_equal(rows, 4);
}

static void test_needs_session(void **state)
{
    (void)state;
    tsv_t t;
    unsigned rows = 0;
    tsv_open(&t, "ota.tsv");
    while (tsv_next(&t)) {
        if (strcmp(t.section, "needs_session") != 0) {
            continue;
        }
        bool want = strcmp(t.cols[1], "yes") == 0;
        const uint8_t *c = (const uint8_t *)t.cols[0];
        assert_int_equal(dcp_auth_needs_session(c, strlen(t.cols[0])), want);
        if (dcp_ota_is_command(c, strlen(t.cols[0]))) {
            assert_int_equal(dcp_ota_needs_session(c, strlen(t.cols[0])), want);
        }
        rows++;
    }
    tsv_close(&t);
    assert_true(rows >= 10);
}

static bool no_nonce(void *ctx, uint8_t n[DCP_AUTH_NONCE_LEN])
{
    (void)ctx;
    (void)n;
    return false;
}

/* A node holding a mesh key: a plain OTA:BEGIN is refused before it reaches the receiver; a
 * wrapped one runs; OTA:STATUS stays open. */
static void test_with_mesh_key(void **state)
{
    (void)state;
    static const uint8_t key[16] = {0x93, 0x27, 0x04, 0x8f};
    dcp_auth_node_t node;
    dcp_auth_session_t s;
    dcp_auth_result_t res;
    dcp_auth_node_init(&node, no_nonce, NULL, 0);
    dcp_auth_node_set_key(&node, key);
    dcp_auth_session_reset(&s);
    dcp_auth_handle(&node, &s, 1, (const uint8_t *)"OTA:BEGIN:10:U:ESP32-C6", 23, &res);
    assert_int_equal(res.verdict, DCP_AUTH_REPLY);
    assert_string_equal(res.reply, "ERROR:AUTH:REQUIRED");
    dcp_auth_handle(&node, &s, 1, (const uint8_t *)"OTA:ABORT", 9, &res);
    assert_string_equal(res.reply, "ERROR:AUTH:REQUIRED");
    dcp_auth_handle(&node, &s, 1, (const uint8_t *)"OTA:STATUS", 10, &res);
    assert_int_equal(res.verdict, DCP_AUTH_RUN);
    /* the longest OTA command fits the S: wrapper (section 7.4: 36 bytes of command) */
    static const char *longest[] = {"OTA:SHA:0:000000000000000000000000",
                                    "OTA:BEGIN:1966080:U:ABCDEFGHIJKLMNOP",
                                    "OTA:VER:255.255.255"};
    uint8_t sk[16] = {0};
    char buf[DCP_MAX_COMMAND_LEN + 1];
    for (size_t i = 0; i < 3; i++) {
        assert_true(dcp_auth_wrap(buf, sizeof(buf), sk, 1, (const uint8_t *)longest[i],
                                  strlen(longest[i])) > 0);
    }
}

static void test_flash_failures(void **state)
{
    (void)state;
    static dcp_ota_t ota;
    dcp_ota_result_t r;
    load_images();
    const image_t *a = image("A");
    memset(&g_flash, 0, sizeof(g_flash));
    dcp_ota_init(&ota, &g_io, 1966080, 'U', "ESP32-C6");
    char cmd[64];
    for (int i = 0; i < 3; i++) {
        static const int off[] = {0, 12, 24};
        static const int len[] = {12, 12, 8};
        int n = snprintf(cmd, sizeof(cmd), "OTA:SHA:%d:", i);
        for (int k = 0; k < len[i]; k++) {
            n += snprintf(cmd + n, sizeof(cmd) - (size_t)n, "%02X", a->sha[off[i] + k]);
        }
        dcp_ota_command(&ota, 1, (const uint8_t *)cmd, strlen(cmd), &r);
        assert_string_equal(r.reply, "OTA:OK"); /* upper-case hex is taken too */
    }
    dcp_ota_command(&ota, 1, (const uint8_t *)"OTA:VER:1.0.0", 13, &r);
    g_flash.fail_begin = true;
    dcp_ota_command(&ota, 1, (const uint8_t *)"OTA:BEGIN:10000:U:ESP32-C6", 26, &r);
    assert_string_equal(r.reply, "ERROR:OTA:FLASH");
    g_flash.fail_begin = false;
    dcp_ota_command(&ota, 1, (const uint8_t *)"OTA:BEGIN:10000:U:ESP32-C6", 26, &r);
    assert_string_equal(r.reply, "OTA:ACK:0");
    uint8_t w[DCP_OTA_WRITE_MAX];
    g_flash.fail_write = true;
    dcp_ota_data(&ota, 1, w, make_chunk(w, 0, a->bytes, 100), &r);
    assert_string_equal(r.reply, "ERROR:OTA:FLASH");
    assert_int_equal(g_flash.aborts, 1);
    assert_false(g_flash.open);
    dcp_ota_command(&ota, 1, (const uint8_t *)"OTA:STATUS", 10, &r);
    assert_string_equal(r.reply, "OTA:IDLE");
    /* closing an unrelated or the zero connection changes nothing */
    dcp_ota_conn_closed(&ota, 0);
    dcp_ota_conn_closed(&ota, 7);
    dcp_ota_command(&ota, 1, (const uint8_t *)"READ", 4, &r);
    assert_int_equal(r.reply_len, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_case_full),
        cmocka_unit_test(test_case_small_chunks),
        cmocka_unit_test(test_case_declaration),
        cmocka_unit_test(test_case_refused),
        cmocka_unit_test(test_case_duplicates_and_gaps),
        cmocka_unit_test(test_case_resume_after_disconnect),
        cmocka_unit_test(test_case_resume_after_gap),
        cmocka_unit_test(test_case_restart_with_other_image),
        cmocka_unit_test(test_case_second_connection),
        cmocka_unit_test(test_case_bad_hash),
        cmocka_unit_test(test_case_abort),
        cmocka_unit_test(test_case_invalid_image),
        cmocka_unit_test(test_case_version_mismatch),
        cmocka_unit_test(test_chunk_format),
        cmocka_unit_test(test_needs_session),
        cmocka_unit_test(test_with_mesh_key),
        cmocka_unit_test(test_flash_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
