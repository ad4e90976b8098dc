/* Authenticated sessions (docs/protocol-v1.md section 7; vectors/auth.tsv): the mesh key, the
 * handshake, the S:<ctr>:<mac>:<command> wrapper and the node's rate limit. The crypto is the PSA
 * Crypto API (HKDF-SHA256, HMAC-SHA256; MACs and proofs checked with psa_mac_verify, which
 * compares in constant time). No heap of its own, no clock and no RNG of its own: the caller
 * passes the time (ms) and a nonce source. */
#ifndef DCP_AUTH_H
#define DCP_AUTH_H

#include "dcp_common.h"

#define DCP_AUTH_KEY_LEN 16u
#define DCP_AUTH_NONCE_LEN 8u
#define DCP_AUTH_PROOF_LEN 8u
#define DCP_AUTH_MAC_LEN 8u
/* Rate limit of section 7.5: 5 tokens shared by all connections, one back every 10 s. */
#define DCP_AUTH_TOKENS 5u
#define DCP_AUTH_REFILL_MS 10000u
/* "9327-048f-2090-d5f7-1089-b558-18b1-f65f" and its NUL. */
#define DCP_AUTH_KEY_SHOWN_MAX 40u
/* "DCMESH1:<mesh id, 8 hex>:<key, 32 hex>" and its NUL. */
#define DCP_AUTH_QR_TEXT_MAX 50u
/* Longest reply, "AUTH:N:<16 hex>:<16 hex>", and its NUL. */
#define DCP_AUTH_REPLY_MAX 48u
/* "S:" + 8 hex + ':' + 16 hex + ':' before the command. */
#define DCP_AUTH_WRAP_OVERHEAD 28u

/* Fills nonce with DCP_AUTH_NONCE_LEN random bytes (the node's hardware RNG); false on failure. */
typedef bool (*dcp_nonce_fn)(void *ctx, uint8_t nonce[DCP_AUTH_NONCE_LEN]);

/* One per node: its mesh key and the rate limit shared by all its connections. */
typedef struct {
    bool has_key;
    uint8_t mesh_key[DCP_AUTH_KEY_LEN];
    /* Rate limit as credit in ms: a token is DCP_AUTH_REFILL_MS of credit; it grows with time up
     * to DCP_AUTH_TOKENS tokens; a hello is refused while less than one token is left. */
    uint32_t credit_ms;
    uint64_t credit_at_ms;
    dcp_nonce_fn nonce;
    void *nonce_ctx;
} dcp_auth_node_t;

typedef enum {
    DCP_AUTH_NONE,        /* no session (also after a failed proof) */
    DCP_AUTH_CHALLENGED,  /* hello answered, waiting for the client's proof */
    DCP_AUTH_ESTABLISHED, /* proof accepted: S: commands are checked with the session key */
} dcp_auth_state_t;

/* One per GATT connection; dcp_auth_session_reset() on connect and on disconnect. */
typedef struct {
    dcp_auth_state_t state;
    uint8_t client_nonce[DCP_AUTH_NONCE_LEN];
    uint8_t node_nonce[DCP_AUTH_NONCE_LEN];
    uint8_t session_key[DCP_AUTH_KEY_LEN];
    uint32_t counter; /* last accepted counter, 0 before the first command */
} dcp_auth_session_t;

typedef enum {
    DCP_AUTH_RUN,   /* run cmd/len as a plain command (dcp_plan_command) */
    DCP_AUTH_REPLY, /* notify reply, run nothing */
} dcp_auth_verdict_t;

typedef struct {
    dcp_auth_verdict_t verdict;
    const uint8_t *cmd; /* DCP_AUTH_RUN: points into the write */
    size_t len;
    char reply[DCP_AUTH_REPLY_MAX]; /* DCP_AUTH_REPLY: NUL-terminated */
    size_t reply_len;
} dcp_auth_result_t;

/* mesh key = HKDF-SHA256(IKM = AppKey, salt = Network ID, info = "DC Mesh v1 mesh key", L = 16). */
bool dcp_mesh_key_derive(const uint8_t app_key[16], const uint8_t network_id[8],
                         uint8_t mesh_key[DCP_AUTH_KEY_LEN]);
/* The same from the AppKey and the primary NetKey (Network ID = k3(NetKey)). */
bool dcp_mesh_key_from_keys(const uint8_t app_key[16], const uint8_t net_key[16],
                            uint8_t mesh_key[DCP_AUTH_KEY_LEN]);
/* Shown form: lower-case hex, 8 groups of 4, '-' between. Length, or -1 when buf is too small. */
int dcp_mesh_key_format(char *buf, size_t size, const uint8_t key[DCP_AUTH_KEY_LEN]);
/* QR text DCMESH1:<mesh id, 8 lower-case hex>:<key, 32 lower-case hex>. Length or -1. */
int dcp_mesh_key_qr_text(char *buf, size_t size, uint32_t mesh_id,
                         const uint8_t key[DCP_AUTH_KEY_LEN]);

/* The primitives of section 7.3 and 7.4 (also what a client computes). */
bool dcp_auth_node_proof(const uint8_t key[DCP_AUTH_KEY_LEN], const uint8_t nc[DCP_AUTH_NONCE_LEN],
                         const uint8_t nn[DCP_AUTH_NONCE_LEN], uint8_t proof[DCP_AUTH_PROOF_LEN]);
bool dcp_auth_client_proof(const uint8_t key[DCP_AUTH_KEY_LEN],
                           const uint8_t nc[DCP_AUTH_NONCE_LEN],
                           const uint8_t nn[DCP_AUTH_NONCE_LEN],
                           uint8_t proof[DCP_AUTH_PROOF_LEN]);
bool dcp_auth_session_key(const uint8_t key[DCP_AUTH_KEY_LEN], const uint8_t nc[DCP_AUTH_NONCE_LEN],
                          const uint8_t nn[DCP_AUTH_NONCE_LEN],
                          uint8_t session_key[DCP_AUTH_KEY_LEN]);
bool dcp_auth_command_mac(const uint8_t session_key[DCP_AUTH_KEY_LEN], uint32_t counter,
                          const uint8_t *cmd, size_t len, uint8_t mac[DCP_AUTH_MAC_LEN]);
/* What a client writes: S:<counter, 8 hex>:<MAC, 16 hex>:<command>. Length, or -1 (counter 0,
 * command over DCP_MAX_COMMAND_LEN - DCP_AUTH_WRAP_OVERHEAD bytes, buf too small, crypto error). */
int dcp_auth_wrap(char *buf, size_t size, const uint8_t session_key[DCP_AUTH_KEY_LEN],
                  uint32_t counter, const uint8_t *cmd, size_t len);

/* Whether a plain command changes state (its second ':' field is DUTY, RAMP, ON, STOP or OFF, any
 * case, or it is an OTA command other than OTA:STATUS), so that a node holding a mesh key refuses
 * it outside a session. */
bool dcp_auth_needs_session(const uint8_t *cmd, size_t len);

/* A node without a key (tokens full at now_ms); nonce draws the node nonces. */
void dcp_auth_node_init(dcp_auth_node_t *node, dcp_nonce_fn nonce, void *nonce_ctx,
                        uint64_t now_ms);
/* Sets the mesh key (NULL: the node holds none and checks nothing). Sessions made under an older
 * key must be reset by the caller. */
void dcp_auth_node_set_key(dcp_auth_node_t *node, const uint8_t mesh_key[DCP_AUTH_KEY_LEN]);
/* DCP_CAP_AUTH (0x0004) when the node holds a key, else 0: OR it into the INFO capabilities. */
uint16_t dcp_auth_capabilities(const dcp_auth_node_t *node);
/* Whether a hello at now_ms would be answered ERROR:AUTH:LOCKED. */
bool dcp_auth_locked(dcp_auth_node_t *node, uint64_t now_ms);

void dcp_auth_session_reset(dcp_auth_session_t *session);

/*
 * One write to 0xDC03 from the connection that owns session, at now_ms. A node without a key
 * runs every write as it is. With a key: AUTH:<Nc> (hello), AUTH:P:<proof> and S: wrappers are
 * answered as section 7 says (an accepted wrapper runs its inner command), a plain state-changing
 * command answers ERROR:AUTH:REQUIRED, anything else runs as it is. A write over
 * DCP_MAX_COMMAND_LEN bytes runs as it is (dcp_plan_command refuses it at the ATT layer). Hex
 * digits are taken in either case. When the nonce source or the crypto library fails, a hello
 * answers ERROR:AUTH:LOCKED (try later) and a proof or MAC counts as wrong: never accepted.
 */
void dcp_auth_handle(dcp_auth_node_t *node, dcp_auth_session_t *session, uint64_t now_ms,
                     const uint8_t *write, size_t len, dcp_auth_result_t *result);

#endif
