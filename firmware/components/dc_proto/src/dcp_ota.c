#include "dcp_ota.h"

#include <string.h>

#include "dcp_sb.h"

#define DECL_SHA0 0x01u
#define DECL_SHA1 0x02u
#define DECL_SHA2 0x04u
#define DECL_VER 0x08u
#define DECL_ALL 0x0Fu
#define NO_GAP 0xFFFFFFFFu

/* Bytes of each OTA:SHA:<i> piece: 12, 12, 8. */
static const uint8_t s_piece_off[3] = {0, 12, 24};
static const uint8_t s_piece_len[3] = {12, 12, 8};

static uint8_t up(uint8_t c)
{
    return (c >= 'a' && c <= 'z') ? (uint8_t)(c - 'a' + 'A') : c;
}

/* Field i (0-based) of a ':'-separated command; false when there is none. */
static bool field(const uint8_t *s, size_t len, unsigned i, const uint8_t **f, size_t *n)
{
    size_t start = 0;
    for (unsigned k = 0; k < i; k++) {
        while (start < len && s[start] != ':') {
            start++;
        }
        if (start == len) {
            return false;
        }
        start++;
    }
    size_t end = start;
    while (end < len && s[end] != ':') {
        end++;
    }
    *f = s + start;
    *n = end - start;
    return true;
}

static bool field_is(const uint8_t *s, size_t len, unsigned i, const char *word)
{
    const uint8_t *f;
    size_t n;
    size_t wn = strlen(word);
    if (!field(s, len, i, &f, &n) || n != wn) {
        return false;
    }
    for (size_t k = 0; k < n; k++) {
        if (up(f[k]) != (uint8_t)word[k]) {
            return false;
        }
    }
    return true;
}

static unsigned field_count(const uint8_t *s, size_t len)
{
    unsigned n = 1;
    for (size_t i = 0; i < len; i++) {
        n += s[i] == ':';
    }
    return n;
}

bool dcp_ota_is_command(const uint8_t *cmd, size_t len)
{
    return cmd != NULL && field_is(cmd, len, 0, "OTA");
}

bool dcp_ota_needs_session(const uint8_t *cmd, size_t len)
{
    return dcp_ota_is_command(cmd, len) && !field_is(cmd, len, 1, "STATUS");
}

static int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = up(c);
    return (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
}

/* Decimal 1..7 digits, no sign, no leading '+'. */
static bool parse_u32(const uint8_t *f, size_t n, uint32_t *out)
{
    uint32_t v = 0;
    if (n == 0 || n > 7) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (f[i] < '0' || f[i] > '9') {
            return false;
        }
        v = v * 10u + (uint32_t)(f[i] - '0');
    }
    *out = v;
    return true;
}

/* x.y.z, each part 1..3 digits. */
static bool valid_version(const uint8_t *f, size_t n)
{
    unsigned parts = 0;
    size_t digits = 0;
    for (size_t i = 0; i < n; i++) {
        if (f[i] >= '0' && f[i] <= '9') {
            if (++digits > 3) {
                return false;
            }
        } else if (f[i] == '.' && digits > 0 && parts < 2) {
            parts++;
            digits = 0;
        } else {
            return false;
        }
    }
    return parts == 2 && digits > 0;
}

static void say(dcp_ota_result_t *r, const char *a, const char *b)
{
    dcp_sb_t sb;
    dcp_sb_init(&sb, r->reply, sizeof(r->reply));
    dcp_sb_puts(&sb, a);
    dcp_sb_puts(&sb, b);
    r->reply_len = (size_t)dcp_sb_result(&sb);
}

static void say_error(dcp_ota_result_t *r, const char *kind)
{
    say(r, "ERROR:OTA:", kind);
}

static void say_ack(dcp_ota_result_t *r, uint32_t next)
{
    dcp_sb_t sb;
    dcp_sb_init(&sb, r->reply, sizeof(r->reply));
    dcp_sb_puts(&sb, "OTA:ACK:");
    dcp_sb_put_u32(&sb, next);
    r->reply_len = (size_t)dcp_sb_result(&sb);
}

static void clear_decl(dcp_ota_t *ota)
{
    ota->decl_conn = 0;
    ota->decl_mask = 0;
    memset(ota->decl_sha, 0, sizeof(ota->decl_sha));
    memset(ota->decl_version, 0, sizeof(ota->decl_version));
}

/* Ends the current transfer (flash slot dropped unless done) and returns to IDLE. */
static void stop(dcp_ota_t *ota, bool abort_slot)
{
    if (ota->state == DCP_OTA_RECEIVING) {
        psa_hash_abort(&ota->hash);
        if (abort_slot && ota->io->abort != NULL) {
            ota->io->abort(ota->io->ctx);
        }
    }
    ota->state = DCP_OTA_IDLE;
    ota->owner = 0;
    ota->size = 0;
    ota->next = 0;
    ota->gap_acked = NO_GAP;
}

void dcp_ota_init(dcp_ota_t *ota, const dcp_ota_io_t *io, uint32_t slot_size, char role,
                  const char *hardware)
{
    memset(ota, 0, sizeof(*ota));
    ota->io = io;
    ota->slot_size = slot_size;
    ota->role = role;
    ota->hardware = hardware;
    ota->hash = psa_hash_operation_init();
    ota->state = DCP_OTA_IDLE;
    ota->gap_acked = NO_GAP;
}

/* The declaration of conn (a new one when another connection held it). */
static void decl_for(dcp_ota_t *ota, dcp_ota_conn_t conn)
{
    if (ota->decl_conn != conn) {
        clear_decl(ota);
        ota->decl_conn = conn;
    }
}

static void cmd_sha(dcp_ota_t *ota, dcp_ota_conn_t conn, const uint8_t *cmd, size_t len,
                    dcp_ota_result_t *r)
{
    const uint8_t *f;
    size_t n;
    const uint8_t *h;
    size_t hn;
    if (field_count(cmd, len) != 4 || !field(cmd, len, 2, &f, &n) || n != 1 || f[0] < '0' ||
        f[0] > '2' || !field(cmd, len, 3, &h, &hn)) {
        say_error(r, "MALFORMED");
        return;
    }
    unsigned i = (unsigned)(f[0] - '0');
    uint8_t piece[12];
    if (hn != 2u * s_piece_len[i]) {
        say_error(r, "MALFORMED");
        return;
    }
    for (size_t k = 0; k < s_piece_len[i]; k++) {
        int hi = hexval(h[2 * k]);
        int lo = hexval(h[2 * k + 1u]);
        if (hi < 0 || lo < 0) {
            say_error(r, "MALFORMED");
            return;
        }
        piece[k] = (uint8_t)(hi << 4 | lo);
    }
    decl_for(ota, conn);
    memcpy(ota->decl_sha + s_piece_off[i], piece, s_piece_len[i]);
    ota->decl_mask |= (uint8_t)(DECL_SHA0 << i);
    say(r, "OTA:OK", "");
}

static void cmd_ver(dcp_ota_t *ota, dcp_ota_conn_t conn, const uint8_t *cmd, size_t len,
                    dcp_ota_result_t *r)
{
    const uint8_t *f;
    size_t n;
    if (field_count(cmd, len) != 3 || !field(cmd, len, 2, &f, &n) || !valid_version(f, n)) {
        say_error(r, "MALFORMED");
        return;
    }
    decl_for(ota, conn);
    memcpy(ota->decl_version, f, n);
    ota->decl_version[n] = '\0';
    ota->decl_mask |= DECL_VER;
    say(r, "OTA:OK", "");
}

static bool same_text(const uint8_t *f, size_t n, const char *s)
{
    return strlen(s) == n && memcmp(f, s, n) == 0;
}

/* OTA:BEGIN:<size>:<role>:<hw> */
static void cmd_begin(dcp_ota_t *ota, dcp_ota_conn_t conn, const uint8_t *cmd, size_t len,
                      dcp_ota_result_t *r)
{
    const uint8_t *fs;
    const uint8_t *fr;
    const uint8_t *fh;
    size_t ns;
    size_t nr;
    size_t nh;
    uint32_t size = 0;
    if (field_count(cmd, len) != 5 || !field(cmd, len, 2, &fs, &ns) ||
        !field(cmd, len, 3, &fr, &nr) || !field(cmd, len, 4, &fh, &nh) ||
        !parse_u32(fs, ns, &size) || size == 0 || nr != 1 || nh == 0 || nh > 16) {
        say_error(r, "MALFORMED");
        return;
    }
    if (ota->decl_conn != conn || ota->decl_mask != DECL_ALL) {
        say_error(r, "NO_IMAGE");
        return;
    }
    if (up(fr[0]) != (uint8_t)ota->role) {
        say_error(r, "ROLE");
        return;
    }
    if (ota->hardware == NULL || !same_text(fh, nh, ota->hardware)) {
        say_error(r, "HARDWARE");
        return;
    }
    if (size > ota->slot_size) {
        say_error(r, "TOO_BIG");
        return;
    }
    if (ota->state == DCP_OTA_DONE) {
        say(r, "OTA:DONE", "");
        return;
    }
    if (ota->state == DCP_OTA_RECEIVING) {
        bool same = ota->size == size && memcmp(ota->sha, ota->decl_sha, DCP_OTA_SHA_LEN) == 0 &&
                    strcmp(ota->version, ota->decl_version) == 0;
        if (ota->owner != 0 && ota->owner != conn) {
            say_error(r, "BUSY");
            return;
        }
        if (same) { /* resume: this connection owns it now */
            ota->owner = conn;
            ota->gap_acked = NO_GAP;
            clear_decl(ota);
            say_ack(r, ota->next);
            return;
        }
        stop(ota, true); /* another image replaces the suspended one */
    }
    ota->hash = psa_hash_operation_init();
    if (psa_crypto_init() != PSA_SUCCESS || psa_hash_setup(&ota->hash, PSA_ALG_SHA_256) != PSA_SUCCESS) {
        psa_hash_abort(&ota->hash);
        say_error(r, "FLASH");
        return;
    }
    if (ota->io == NULL || ota->io->begin == NULL || !ota->io->begin(ota->io->ctx, size)) {
        psa_hash_abort(&ota->hash);
        say_error(r, "FLASH");
        return;
    }
    ota->state = DCP_OTA_RECEIVING;
    ota->owner = conn;
    ota->size = size;
    ota->next = 0;
    ota->gap_acked = NO_GAP;
    memcpy(ota->sha, ota->decl_sha, DCP_OTA_SHA_LEN);
    memcpy(ota->version, ota->decl_version, DCP_OTA_VERSION_MAX);
    clear_decl(ota);
    say_ack(r, 0);
}

static void cmd_status(const dcp_ota_t *ota, dcp_ota_result_t *r)
{
    if (ota->state == DCP_OTA_IDLE) {
        say(r, "OTA:IDLE", "");
        return;
    }
    if (ota->state == DCP_OTA_DONE) {
        say(r, "OTA:DONE", "");
        return;
    }
    dcp_sb_t sb;
    dcp_sb_init(&sb, r->reply, sizeof(r->reply));
    dcp_sb_puts(&sb, "OTA:RX:");
    dcp_sb_put_u32(&sb, ota->next);
    dcp_sb_putc(&sb, ':');
    dcp_sb_put_u32(&sb, ota->size);
    r->reply_len = (size_t)dcp_sb_result(&sb);
}

void dcp_ota_command(dcp_ota_t *ota, dcp_ota_conn_t conn, const uint8_t *cmd, size_t len,
                     dcp_ota_result_t *result)
{
    memset(result, 0, sizeof(*result));
    if (!dcp_ota_is_command(cmd, len)) {
        return;
    }
    if (field_is(cmd, len, 1, "STATUS") && field_count(cmd, len) == 2) {
        cmd_status(ota, result);
    } else if (field_is(cmd, len, 1, "ABORT") && field_count(cmd, len) == 2) {
        if (ota->state == DCP_OTA_RECEIVING) {
            stop(ota, true);
        }
        if (ota->state == DCP_OTA_DONE) {
            say(result, "OTA:DONE", ""); /* too late: the image is set to boot */
        } else {
            clear_decl(ota);
            say(result, "OTA:IDLE", "");
        }
    } else if (field_is(cmd, len, 1, "SHA")) {
        cmd_sha(ota, conn, cmd, len, result);
    } else if (field_is(cmd, len, 1, "VER")) {
        cmd_ver(ota, conn, cmd, len, result);
    } else if (field_is(cmd, len, 1, "BEGIN")) {
        cmd_begin(ota, conn, cmd, len, result);
    } else {
        say_error(result, "MALFORMED");
    }
}

static void finish(dcp_ota_t *ota, dcp_ota_result_t *r)
{
    psa_status_t st = psa_hash_verify(&ota->hash, ota->sha, DCP_OTA_SHA_LEN);
    if (st != PSA_SUCCESS) {
        psa_hash_abort(&ota->hash);
        stop(ota, true);
        say_error(r, "BAD_HASH");
        return;
    }
    dcp_ota_finish_t f = ota->io->finish(ota->io->ctx, ota->version);
    ota->state = DCP_OTA_IDLE; /* the slot is closed either way (esp_ota_end frees it) */
    if (f == DCP_OTA_FINISH_OK) {
        ota->state = DCP_OTA_DONE;
        ota->owner = 0;
        say(r, "OTA:DONE", "");
        r->reboot = true;
        return;
    }
    stop(ota, false);
    say_error(r, f == DCP_OTA_FINISH_INVALID_IMAGE ? "IMAGE"
                 : f == DCP_OTA_FINISH_VERSION     ? "VERSION"
                                                   : "FLASH");
}

void dcp_ota_data(dcp_ota_t *ota, dcp_ota_conn_t conn, const uint8_t *write, size_t len,
                  dcp_ota_result_t *result)
{
    memset(result, 0, sizeof(*result));
    if (ota->state != DCP_OTA_RECEIVING || conn == 0 || conn != ota->owner || write == NULL ||
        len <= DCP_OTA_HEADER_LEN || len > DCP_OTA_WRITE_MAX) {
        return; /* not the owner, nothing open, or no data: ignored without a word */
    }
    uint32_t off = (uint32_t)write[0] | (uint32_t)write[1] << 8 | (uint32_t)write[2] << 16 |
                   (uint32_t)write[3] << 24;
    const uint8_t *data = write + DCP_OTA_HEADER_LEN;
    size_t n = len - DCP_OTA_HEADER_LEN;
    if (off < ota->next) {
        return; /* duplicate: already written */
    }
    if (off > ota->next || n > ota->size - ota->next) {
        /* a gap (something was lost) or a chunk past the end: report where to resume, once */
        if (ota->gap_acked != ota->next) {
            ota->gap_acked = ota->next;
            say_ack(result, ota->next);
        }
        return;
    }
    if (!ota->io->write(ota->io->ctx, off, data, n) ||
        psa_hash_update(&ota->hash, data, n) != PSA_SUCCESS) {
        stop(ota, true);
        say_error(result, "FLASH");
        return;
    }
    uint32_t before = ota->next;
    ota->next += (uint32_t)n;
    if (ota->next == ota->size) {
        finish(ota, result);
    } else if (ota->next / DCP_OTA_WINDOW != before / DCP_OTA_WINDOW) {
        say_ack(result, ota->next);
    }
}

void dcp_ota_conn_closed(dcp_ota_t *ota, dcp_ota_conn_t conn)
{
    if (conn == 0) {
        return;
    }
    if (ota->owner == conn) {
        ota->owner = 0; /* suspended: OTA:BEGIN of the same image resumes it */
        ota->gap_acked = NO_GAP;
    }
    if (ota->decl_conn == conn) {
        clear_decl(ota);
    }
}
