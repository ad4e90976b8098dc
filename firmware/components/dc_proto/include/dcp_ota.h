/* Firmware update receiver (docs/protocol-v1.md section 9; vectors/ota.tsv): the OTA commands
 * written to 0xDC03 (OTA:SHA, OTA:VER, OTA:BEGIN, OTA:ABORT, OTA:STATUS), the data chunks written
 * to 0xDC04 (offset u32 little-endian + data) and the acknowledgements. Flash goes through the
 * caller's callbacks (esp_ota_* on the device); the SHA-256 of the image through the PSA hash
 * API. Bytes are written strictly in order (only a chunk at the next expected offset is taken),
 * so no byte is ever written twice. No heap, no clock. */
#ifndef DCP_OTA_H
#define DCP_OTA_H

#include <psa/crypto.h>

#include "dcp_common.h"

#define DCP_CAP_OTA 0x0008u
/* The node acknowledges each time the next expected offset crosses a multiple of this. */
#define DCP_OTA_WINDOW 4096u
#define DCP_OTA_HEADER_LEN 4u
/* Longest chunk payload and write to 0xDC04 (longer writes: ATT error 0x0d). */
#define DCP_OTA_CHUNK_MAX 240u
#define DCP_OTA_WRITE_MAX (DCP_OTA_HEADER_LEN + DCP_OTA_CHUNK_MAX)
#define DCP_OTA_SHA_LEN 32u
/* "x.y.z", each part 1..3 digits, and its NUL. */
#define DCP_OTA_VERSION_MAX 12u
/* Longest reply ("OTA:RX:<7 digits>:<7 digits>"), NUL included. */
#define DCP_OTA_REPLY_MAX 32u

/* Identifies a GATT connection (never reused); 0 = none. */
typedef uint32_t dcp_ota_conn_t;

typedef enum {
    DCP_OTA_FINISH_OK,            /* image valid, boot partition set: reboot */
    DCP_OTA_FINISH_INVALID_IMAGE, /* esp_ota_end refused it (format, signature) */
    DCP_OTA_FINISH_VERSION,       /* the image's own version is not the declared one */
    DCP_OTA_FINISH_FLASH,         /* flash or otadata error */
} dcp_ota_finish_t;

/* The flash side (esp_ota_* on the device). ctx is passed back. */
typedef struct {
    /* Open the update slot for size bytes (erases them). */
    bool (*begin)(void *ctx, uint32_t size);
    /* Write len bytes at offset (each byte of the slot exactly once). */
    bool (*write)(void *ctx, uint32_t offset, const uint8_t *data, size_t len);
    /* All bytes written and the SHA-256 matched: validate, check the version, set the boot slot. */
    dcp_ota_finish_t (*finish)(void *ctx, const char *version);
    /* Drop the open slot (after begin, before finish). */
    void (*abort)(void *ctx);
    void *ctx;
} dcp_ota_io_t;

typedef enum {
    DCP_OTA_IDLE,
    DCP_OTA_RECEIVING, /* owner != 0: its connection; 0: suspended, waiting for a resume */
    DCP_OTA_DONE,      /* image accepted: the node reboots */
} dcp_ota_state_t;

typedef struct {
    const dcp_ota_io_t *io;
    uint32_t slot_size;
    char role;
    const char *hardware;
    dcp_ota_state_t state;
    dcp_ota_conn_t owner;
    uint32_t size;
    uint32_t next;
    uint32_t gap_acked; /* next offset a gap was last reported for; UINT32_MAX: none */
    uint8_t sha[DCP_OTA_SHA_LEN];
    char version[DCP_OTA_VERSION_MAX];
    psa_hash_operation_t hash;
    /* the declaration (OTA:SHA, OTA:VER) a connection is building for its OTA:BEGIN */
    dcp_ota_conn_t decl_conn;
    uint8_t decl_mask;
    uint8_t decl_sha[DCP_OTA_SHA_LEN];
    char decl_version[DCP_OTA_VERSION_MAX];
} dcp_ota_t;

typedef struct {
    char reply[DCP_OTA_REPLY_MAX]; /* NUL-terminated; reply_len 0: nothing to notify */
    size_t reply_len;
    bool reboot; /* OTA:DONE was sent: restart the node (after the notification went out) */
} dcp_ota_result_t;

/* role: 'U' or 'R'; hardware: the INFO HW string (kept by pointer); slot_size: bytes of the slot. */
void dcp_ota_init(dcp_ota_t *ota, const dcp_ota_io_t *io, uint32_t slot_size, char role,
                  const char *hardware);
/* Whether a command (as run after dcp_auth_handle) is an OTA command: first field "OTA", any case. */
bool dcp_ota_is_command(const uint8_t *cmd, size_t len);
/* Whether an OTA command changes state (everything but OTA:STATUS): needs a session (7.2). */
bool dcp_ota_needs_session(const uint8_t *cmd, size_t len);
/* An OTA command from connection conn. */
void dcp_ota_command(dcp_ota_t *ota, dcp_ota_conn_t conn, const uint8_t *cmd, size_t len,
                     dcp_ota_result_t *result);
/* A write to 0xDC04 from connection conn. */
void dcp_ota_data(dcp_ota_t *ota, dcp_ota_conn_t conn, const uint8_t *write, size_t len,
                  dcp_ota_result_t *result);
/* Connection conn closed: a transfer it owned is suspended (resumable), its declaration dropped. */
void dcp_ota_conn_closed(dcp_ota_t *ota, dcp_ota_conn_t conn);

#endif
