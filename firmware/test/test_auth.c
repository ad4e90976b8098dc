/* Authenticated sessions (protocol-v1 section 7): every row of vectors/auth.tsv (kdf, proof,
 * command, and the scripted session replayed through dcp_auth_handle with the file's node
 * nonces), plus wrong keys, replays, a second client, disconnects, the rate limit over injected
 * time and malformed input. */
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dcp_auth.h"
#include "dcp_command.h"
#include "dcp_crypto.h"
#include "dcp_reply.h"
#include "tsv.h"

/* ---- helpers ---------------------------------------------------------------------------- */

#define MAX_NONCES 16

/* A scripted nonce source: hands out the queued nonces in order; counts the draws. */
typedef struct {
    uint8_t nonces[MAX_NONCES][DCP_AUTH_NONCE_LEN];
    size_t count;
    size_t drawn;
    bool fail;
} nonce_script_t;

static bool scripted_nonce(void *ctx, uint8_t nonce[DCP_AUTH_NONCE_LEN])
{
    nonce_script_t *s = ctx;
    if (s->fail || s->drawn >= s->count) {
        return false;
    }
    memcpy(nonce, s->nonces[s->drawn++], DCP_AUTH_NONCE_LEN);
    return true;
}

static void queue_nonce(nonce_script_t *s, const char *hex)
{
    assert_true(s->count < MAX_NONCES);
    assert_int_equal(tsv_unhex(hex, strlen(hex), s->nonces[s->count], DCP_AUTH_NONCE_LEN),
                     DCP_AUTH_NONCE_LEN);
    s->count++;
}

static void unhex_n(const char *hex, uint8_t *out, size_t n)
{
    assert_int_equal(strlen(hex), 2 * n);
    assert_int_equal(tsv_unhex(hex, 2 * n, out, n), n);
}

static void tohex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        snprintf(out + 2 * i, 3, "%02x", b[i]);
    }
}

/* The mesh key of the `proof` rows and the session scenario. */
static const char *const KEY_HEX = "9327048f2090d5f71089b55818b1f65f";

typedef struct {
    nonce_script_t nonces;
    dcp_auth_node_t node;
    dcp_auth_session_t a;
    dcp_auth_session_t b;
    uint8_t key[DCP_AUTH_KEY_LEN];
    uint64_t now;
} fixture_t;

static fixture_t *setup_node(fixture_t *f, const char *key_hex)
{
    memset(f, 0, sizeof(*f));
    f->now = 1000;
    dcp_auth_node_init(&f->node, scripted_nonce, &f->nonces, f->now);
    unhex_n(key_hex, f->key, DCP_AUTH_KEY_LEN);
    dcp_auth_node_set_key(&f->node, f->key);
    dcp_auth_session_reset(&f->a);
    dcp_auth_session_reset(&f->b);
    return f;
}

static dcp_auth_result_t handle(fixture_t *f, dcp_auth_session_t *s, const char *write)
{
    dcp_auth_result_t r;
    dcp_auth_handle(&f->node, s, f->now, (const uint8_t *)write, strlen(write), &r);
    if (r.verdict == DCP_AUTH_REPLY) {
        assert_int_equal(r.reply_len, strlen(r.reply));
    }
    return r;
}

static void expect_reply(fixture_t *f, dcp_auth_session_t *s, const char *write, const char *want)
{
    dcp_auth_result_t r = handle(f, s, write);
    if (r.verdict != DCP_AUTH_REPLY) {
        fail_msg("%s: ran \"%.*s\", want reply %s", write, (int)r.len, (const char *)r.cmd, want);
    }
    assert_string_equal(r.reply, want);
}

static void expect_run(fixture_t *f, dcp_auth_session_t *s, const char *write, const char *cmd)
{
    dcp_auth_result_t r = handle(f, s, write);
    if (r.verdict != DCP_AUTH_RUN) {
        fail_msg("%s: replied %s, want to run %s", write, r.reply, cmd);
    }
    assert_int_equal(r.len, strlen(cmd));
    assert_memory_equal(r.cmd, cmd, r.len);
}

/* A full handshake on session s with the given nonces; returns the session key. */
static void establish(fixture_t *f, dcp_auth_session_t *s, const char *nc_hex, const char *nn_hex,
                      uint8_t session_key[DCP_AUTH_KEY_LEN])
{
    uint8_t nc[8];
    uint8_t nn[8];
    uint8_t node_proof[8];
    uint8_t client_proof[8];
    char hello[32];
    char want[64];
    char proof_hex[17];
    char node_hex[17];
    unhex_n(nc_hex, nc, 8);
    unhex_n(nn_hex, nn, 8);
    queue_nonce(&f->nonces, nn_hex);
    assert_true(dcp_auth_node_proof(f->key, nc, nn, node_proof));
    assert_true(dcp_auth_client_proof(f->key, nc, nn, client_proof));
    assert_true(dcp_auth_session_key(f->key, nc, nn, session_key));
    snprintf(hello, sizeof(hello), "AUTH:%s", nc_hex);
    tohex(node_proof, 8, node_hex);
    snprintf(want, sizeof(want), "AUTH:N:%s:%s", nn_hex, node_hex);
    expect_reply(f, s, hello, want);
    assert_int_equal(s->state, DCP_AUTH_CHALLENGED);
    tohex(client_proof, 8, proof_hex);
    snprintf(hello, sizeof(hello), "AUTH:P:%s", proof_hex);
    expect_reply(f, s, hello, "AUTH:OK");
    assert_int_equal(s->state, DCP_AUTH_ESTABLISHED);
}

static void wrap(const uint8_t *session_key, uint32_t counter, const char *cmd, char *out)
{
    int n = dcp_auth_wrap(out, 64 + 1, session_key, counter, (const uint8_t *)cmd, strlen(cmd));
    assert_true(n > 0);
}

/* ---- vectors ---------------------------------------------------------------------------- */

static void test_vectors_kdf(void **state)
{
    (void)state;
    tsv_t t;
    size_t rows = 0;
    tsv_open(&t, "auth.tsv");
    while (tsv_next(&t)) {
        if (strcmp(t.section, "kdf") != 0) {
            continue;
        }
        assert_int_equal(t.ncols, 4);
        uint8_t app_key[16];
        uint8_t network_id[8];
        uint8_t want[16];
        uint8_t key[16];
        char shown[DCP_AUTH_KEY_SHOWN_MAX];
        unhex_n(t.cols[0], app_key, 16);
        unhex_n(t.cols[1], network_id, 8);
        unhex_n(t.cols[2], want, 16);
        assert_true(dcp_mesh_key_derive(app_key, network_id, key));
        assert_memory_equal(key, want, 16);
        assert_int_equal(dcp_mesh_key_format(shown, sizeof(shown), key), 39);
        assert_string_equal(shown, t.cols[3]);
        assert_int_equal(dcp_mesh_key_format(shown, 39, key), -1); /* no room for the NUL */

        char qr[DCP_AUTH_QR_TEXT_MAX];
        char want_qr[64];
        uint32_t mesh_id = (uint32_t)network_id[0] << 24 | (uint32_t)network_id[1] << 16 |
                           (uint32_t)network_id[2] << 8 | network_id[3];
        snprintf(want_qr, sizeof(want_qr), "DCMESH1:%.8s:%s", t.cols[1], t.cols[2]);
        assert_int_equal(dcp_mesh_key_qr_text(qr, sizeof(qr), mesh_id, key), 49);
        assert_string_equal(qr, want_qr);
        assert_int_equal(dcp_mesh_key_qr_text(qr, 49, mesh_id, key), -1);
        rows++;
    }
    tsv_close(&t);
    assert_int_equal(rows, 3);
}

/* The mesh key from the NetKey itself: Mesh Profile 8.1.5's NetKey has the Network ID of the
 * second kdf row, and 8.1.1's AppKey is that row's AppKey. */
static void test_mesh_key_from_net_key(void **state)
{
    (void)state;
    uint8_t app_key[16];
    uint8_t net_key[16];
    uint8_t want[16];
    uint8_t key[16];
    unhex_n("63964771734fbd76e3b40519d1d94a48", app_key, 16);
    unhex_n("7dd7364cd842ad18c17c2b820c84c3d6", net_key, 16);
    unhex_n("3ea9cb8111a65245c832fef60fd7e337", want, 16);
    assert_true(dcp_mesh_key_from_keys(app_key, net_key, key));
    assert_memory_equal(key, want, 16);
    assert_int_equal(dcp_mesh_id(net_key), 0x3ecaff67u);
}

static void test_vectors_proof(void **state)
{
    (void)state;
    tsv_t t;
    size_t rows = 0;
    tsv_open(&t, "auth.tsv");
    while (tsv_next(&t)) {
        if (strcmp(t.section, "proof") != 0) {
            continue;
        }
        assert_int_equal(t.ncols, 6);
        uint8_t key[16], nc[8], nn[8], want_node[8], want_client[8], want_session[16];
        uint8_t out[16];
        unhex_n(t.cols[0], key, 16);
        unhex_n(t.cols[1], nc, 8);
        unhex_n(t.cols[2], nn, 8);
        unhex_n(t.cols[3], want_node, 8);
        unhex_n(t.cols[4], want_client, 8);
        unhex_n(t.cols[5], want_session, 16);
        assert_true(dcp_auth_node_proof(key, nc, nn, out));
        assert_memory_equal(out, want_node, 8);
        assert_true(dcp_auth_client_proof(key, nc, nn, out));
        assert_memory_equal(out, want_client, 8);
        assert_true(dcp_auth_session_key(key, nc, nn, out));
        assert_memory_equal(out, want_session, 16);

        /* the node's handshake with these nonces gives the same proof and session key */
        fixture_t f;
        uint8_t session_key[16];
        setup_node(&f, t.cols[0]);
        establish(&f, &f.a, t.cols[1], t.cols[2], session_key);
        assert_memory_equal(f.a.session_key, want_session, 16);
        rows++;
    }
    tsv_close(&t);
    assert_int_equal(rows, 3);
}

static void test_vectors_command(void **state)
{
    (void)state;
    tsv_t t;
    size_t rows = 0;
    tsv_open(&t, "auth.tsv");
    while (tsv_next(&t)) {
        if (strcmp(t.section, "command") != 0) {
            continue;
        }
        assert_int_equal(t.ncols, 4);
        uint8_t session_key[16];
        unhex_n(t.cols[0], session_key, 16);
        unsigned long counter = strtoul(t.cols[1], NULL, 10);
        const char *cmd = t.cols[2];
        uint8_t mac[8];
        uint8_t want_mac[8];
        assert_true(dcp_auth_command_mac(session_key, (uint32_t)counter, (const uint8_t *)cmd,
                                         strlen(cmd), mac));
        assert_int_equal(tsv_unhex(t.cols[3] + 11, 16, want_mac, 8), 8);
        assert_memory_equal(mac, want_mac, 8);
        char written[DCP_MAX_COMMAND_LEN + 1];
        int n = dcp_auth_wrap(written, sizeof(written), session_key, (uint32_t)counter,
                              (const uint8_t *)cmd, strlen(cmd));
        assert_int_equal(n, (int)strlen(t.cols[3]));
        assert_string_equal(written, t.cols[3]);

        /* a node in a session with this key runs exactly the command */
        fixture_t f;
        setup_node(&f, KEY_HEX);
        f.a.state = DCP_AUTH_ESTABLISHED;
        memcpy(f.a.session_key, session_key, 16);
        f.a.counter = (uint32_t)counter - 1u;
        expect_run(&f, &f.a, written, cmd);
        assert_int_equal(f.a.counter, (uint32_t)counter);
        rows++;
    }
    tsv_close(&t);
    assert_int_equal(rows, 6);
}

/* The scripted session: each write through dcp_auth_handle, then (when it runs) through
 * dcp_plan_command of node 0, as the universal node does. */
static void test_vectors_session(void **state)
{
    (void)state;
    tsv_t t;
    size_t rows = 0;
    fixture_t f;
    bool keyed = false;
    tsv_open(&t, "auth.tsv");
    while (tsv_next(&t)) {
        if (strcmp(t.section, "session") != 0) {
            continue;
        }
        assert_int_equal(t.ncols, 3);
        if (strcmp(t.cols[0], "key") == 0) {
            assert_false(keyed);
            setup_node(&f, t.cols[1]);
            keyed = true;
            continue;
        }
        assert_true(keyed);
        const char *write = t.cols[1];
        const char *want = t.cols[2];
        size_t drawn = f.nonces.drawn;
        if (strcmp(t.cols[0], "-") != 0) {
            queue_nonce(&f.nonces, t.cols[0]);
        }
        dcp_auth_result_t r = handle(&f, &f.a, write);
        /* the node draws a nonce exactly where the file says */
        if (f.nonces.drawn != f.nonces.count) {
            fail_msg("line %u: %s: node nonce not drawn", t.lineno, write);
        }
        assert_int_equal(f.nonces.drawn - drawn, strcmp(t.cols[0], "-") != 0 ? 1 : 0);
        if (r.verdict == DCP_AUTH_REPLY) {
            if (strcmp(r.reply, want) != 0) {
                fail_msg("line %u: %s: got %s, want %s", t.lineno, write, r.reply, want);
            }
        } else {
            dcp_plan_t plan;
            dcp_plan_command(r.cmd, r.len, 0, &plan);
            const char *err = NULL;
            for (size_t i = 0; i < plan.count; i++) {
                if (plan.actions[i].kind == DCP_ACT_REPLY &&
                    strncmp(plan.actions[i].text, "ERROR:", 6) == 0) {
                    err = plan.actions[i].text;
                }
            }
            if (strcmp(want, "-") == 0) {
                if (err != NULL) {
                    fail_msg("line %u: %s: got %s, want it carried out", t.lineno, write, err);
                }
            } else if (err == NULL || strcmp(err, want) != 0) {
                fail_msg("line %u: %s: got %s, want %s", t.lineno, write, err ? err : "(run)",
                         want);
            }
        }
        rows++;
    }
    tsv_close(&t);
    assert_int_equal(rows, 28);
    assert_int_equal(f.nonces.drawn, 2);
    /* two BAD_MAC and one BAD_PROOF: below the limit */
    assert_false(dcp_auth_locked(&f.node, f.now));
    assert_int_equal(f.node.credit_ms, 2u * DCP_AUTH_REFILL_MS);
}

/* ---- behaviour beyond the vectors ------------------------------------------------------- */

static void test_wrong_key(void **state)
{
    (void)state;
    fixture_t f;
    setup_node(&f, KEY_HEX);
    uint8_t other[16];
    uint8_t nc[8];
    uint8_t nn[8];
    uint8_t proof[8];
    char write[32];
    char hex[17];
    unhex_n("00112233445566778899aabbccddeeff", other, 16);
    unhex_n("0102030405060708", nc, 8);
    unhex_n("a1a2a3a4a5a6a7a8", nn, 8);
    queue_nonce(&f.nonces, "a1a2a3a4a5a6a7a8");
    /* a client with another key sees a node proof it cannot check ... */
    dcp_auth_result_t r = handle(&f, &f.a, "AUTH:0102030405060708");
    assert_int_equal(r.verdict, DCP_AUTH_REPLY);
    assert_true(dcp_auth_node_proof(other, nc, nn, proof));
    tohex(proof, 8, hex);
    assert_string_not_equal(r.reply + 24, hex);
    /* ... and its proof is refused */
    assert_true(dcp_auth_client_proof(other, nc, nn, proof));
    tohex(proof, 8, hex);
    snprintf(write, sizeof(write), "AUTH:P:%s", hex);
    expect_reply(&f, &f.a, write, "ERROR:AUTH:BAD_PROOF");
    assert_int_equal(f.a.state, DCP_AUTH_NONE);
    expect_reply(&f, &f.a, "0:DUTY:50", "ERROR:AUTH:REQUIRED");
    /* a session key derived from the wrong key does not make valid MACs */
    uint8_t wrong_session[16];
    uint8_t session_key[16];
    char cmd[65];
    assert_true(dcp_auth_session_key(other, nc, nn, wrong_session));
    establish(&f, &f.a, "0102030405060708", "a1a2a3a4a5a6a7a8", session_key);
    wrap(wrong_session, 1, "0:DUTY:50", cmd);
    expect_reply(&f, &f.a, cmd, "ERROR:AUTH:BAD_MAC");
    wrap(session_key, 1, "0:DUTY:50", cmd);
    expect_run(&f, &f.a, cmd, "0:DUTY:50");
}

static void test_replay_and_counters(void **state)
{
    (void)state;
    fixture_t f;
    uint8_t sk[16];
    char cmd[65];
    setup_node(&f, KEY_HEX);
    establish(&f, &f.a, "1111111111111111", "2222222222222222", sk);
    wrap(sk, 1, "0:DUTY:50", cmd);
    expect_run(&f, &f.a, cmd, "0:DUTY:50");
    expect_reply(&f, &f.a, cmd, "ERROR:AUTH:REPLAY"); /* the same write again */
    wrap(sk, 1, "0:DUTY:60", cmd);                     /* counter reuse, valid MAC */
    expect_reply(&f, &f.a, cmd, "ERROR:AUTH:REPLAY");
    wrap(sk, 10, "0:STOP", cmd); /* gaps are allowed */
    expect_run(&f, &f.a, cmd, "0:STOP");
    wrap(sk, 9, "0:STOP", cmd);
    expect_reply(&f, &f.a, cmd, "ERROR:AUTH:REPLAY");
    /* the MAC of one command on another */
    char good[65];
    char forged[80];
    wrap(sk, 11, "0:DUTY:5", good);
    snprintf(forged, sizeof(forged), "%.28s0:DUTY:100", good);
    expect_reply(&f, &f.a, forged, "ERROR:AUTH:BAD_MAC");
    snprintf(forged, sizeof(forged), "%.28s0:duty:5", good); /* the MAC covers the case */
    expect_reply(&f, &f.a, forged, "ERROR:AUTH:BAD_MAC");
    expect_run(&f, &f.a, good, "0:DUTY:5"); /* a failed MAC does not take the counter */
    /* a flipped MAC bit */
    wrap(sk, 12, "ALL:OFF", cmd);
    cmd[26] = cmd[26] == '0' ? '1' : '0';
    expect_reply(&f, &f.a, cmd, "ERROR:AUTH:BAD_MAC");
    /* upper-case hex is taken */
    wrap(sk, 12, "ALL:OFF", cmd);
    for (size_t i = 2; i < 27; i++) {
        cmd[i] = (cmd[i] >= 'a' && cmd[i] <= 'f') ? (char)(cmd[i] - 32) : cmd[i];
    }
    expect_run(&f, &f.a, cmd, "ALL:OFF");
    /* the last counter, then nothing more */
    wrap(sk, 0xFFFFFFFFu, "0:READ", cmd);
    expect_run(&f, &f.a, cmd, "0:READ");
    expect_reply(&f, &f.a, cmd, "ERROR:AUTH:REPLAY");
    /* reads run plainly inside a session too */
    expect_run(&f, &f.a, "ALL:READ", "ALL:READ");
    expect_reply(&f, &f.a, "0:DUTY:50", "ERROR:AUTH:REQUIRED");
    /* an empty command inside the wrapper runs (and the command parser answers for it) */
    setup_node(&f, KEY_HEX);
    establish(&f, &f.a, "1111111111111111", "2222222222222222", sk);
    wrap(sk, 1, "", cmd);
    expect_run(&f, &f.a, cmd, "");
}

static void test_second_client_and_disconnect(void **state)
{
    (void)state;
    fixture_t f;
    uint8_t sk[16];
    uint8_t sk_b[16];
    char cmd[65];
    setup_node(&f, KEY_HEX);
    establish(&f, &f.a, "1111111111111111", "2222222222222222", sk);
    /* client b has no session: a's commands, plain or copied, do nothing for it */
    wrap(sk, 1, "0:DUTY:50", cmd);
    expect_reply(&f, &f.b, cmd, "ERROR:AUTH:NO_SESSION");
    expect_reply(&f, &f.b, "0:DUTY:50", "ERROR:AUTH:REQUIRED");
    expect_run(&f, &f.a, cmd, "0:DUTY:50");
    /* b's own session has another key: a's next command is refused there */
    establish(&f, &f.b, "3333333333333333", "4444444444444444", sk_b);
    wrap(sk, 2, "0:DUTY:70", cmd);
    expect_reply(&f, &f.b, cmd, "ERROR:AUTH:BAD_MAC");
    expect_run(&f, &f.a, cmd, "0:DUTY:70");
    /* b's proof does not work on a's pending challenge */
    queue_nonce(&f.nonces, "5555555555555555");
    (void)handle(&f, &f.a, "AUTH:6666666666666666"); /* a new hello ends a's session */
    assert_int_equal(f.a.state, DCP_AUTH_CHALLENGED);
    wrap(sk, 3, "0:STOP", cmd);
    expect_reply(&f, &f.a, cmd, "ERROR:AUTH:NO_SESSION");
    expect_reply(&f, &f.a, "AUTH:P:919dda152eb24315", "ERROR:AUTH:BAD_PROOF");
    /* a disconnect ends b's session: the same connection slot starts without one */
    wrap(sk_b, 1, "1:RAMP", cmd);
    dcp_auth_session_reset(&f.b);
    assert_int_equal(f.b.state, DCP_AUTH_NONE);
    for (size_t i = 0; i < sizeof(f.b.session_key); i++) {
        assert_int_equal(f.b.session_key[i], 0);
    }
    expect_reply(&f, &f.b, cmd, "ERROR:AUTH:NO_SESSION");
    expect_reply(&f, &f.b, "AUTH:P:0c2d30a433e7a146", "ERROR:AUTH:NO_SESSION");
}

static void test_proof_rules(void **state)
{
    (void)state;
    fixture_t f;
    uint8_t sk[16];
    char cmd[65];
    setup_node(&f, KEY_HEX);
    /* a proof without a challenge, and a second proof for one challenge */
    expect_reply(&f, &f.a, "AUTH:P:919dda152eb24315", "ERROR:AUTH:NO_SESSION");
    establish(&f, &f.a, "0102030405060708", "a1a2a3a4a5a6a7a8", sk);
    expect_reply(&f, &f.a, "AUTH:P:919dda152eb24315", "ERROR:AUTH:NO_SESSION");
    /* ... which leaves the session as it was */
    wrap(sk, 1, "0:ON", cmd);
    expect_run(&f, &f.a, cmd, "0:ON");
    /* a malformed proof keeps the challenge */
    queue_nonce(&f.nonces, "a1a2a3a4a5a6a7a8");
    (void)handle(&f, &f.a, "AUTH:0102030405060708");
    expect_reply(&f, &f.a, "AUTH:P:919dda152eb2431", "ERROR:AUTH:MALFORMED");
    expect_reply(&f, &f.a, "AUTH:P:919DDA152EB24315", "AUTH:OK"); /* either case */
    /* the nonce source failing: no challenge, try later */
    f.nonces.fail = true;
    expect_reply(&f, &f.a, "AUTH:0102030405060708", "ERROR:AUTH:LOCKED");
    assert_int_equal(f.a.state, DCP_AUTH_NONE);
    assert_int_equal(f.node.credit_ms, 5u * DCP_AUTH_REFILL_MS); /* no token spent */
}

static void test_rate_limit(void **state)
{
    (void)state;
    fixture_t f;
    setup_node(&f, KEY_HEX);
    /* malformed input costs nothing */
    for (int i = 0; i < 20; i++) {
        expect_reply(&f, &f.a, "AUTH:zz", "ERROR:AUTH:MALFORMED");
        expect_reply(&f, &f.a, "S:00000000:0000000000000000:0:OFF", "ERROR:AUTH:MALFORMED");
    }
    /* five wrong proofs, spread over two connections, use the five tokens */
    for (int i = 0; i < 5; i++) {
        dcp_auth_session_t *s = (i % 2 == 0) ? &f.a : &f.b;
        queue_nonce(&f.nonces, "a1a2a3a4a5a6a7a8");
        dcp_auth_result_t r = handle(&f, s, "AUTH:0102030405060708");
        assert_int_equal(r.verdict, DCP_AUTH_REPLY);
        assert_memory_equal(r.reply, "AUTH:N:", 7);
        expect_reply(&f, s, "AUTH:P:0000000000000000", "ERROR:AUTH:BAD_PROOF");
    }
    size_t drawn = f.nonces.drawn;
    expect_reply(&f, &f.a, "AUTH:0102030405060708", "ERROR:AUTH:LOCKED");
    expect_reply(&f, &f.b, "AUTH:0102030405060708", "ERROR:AUTH:LOCKED");
    assert_int_equal(f.nonces.drawn, drawn); /* no challenge drawn */
    expect_reply(&f, &f.a, "AUTH:P:919dda152eb24315", "ERROR:AUTH:NO_SESSION");
    /* one token back after 10 s, not before */
    f.now += DCP_AUTH_REFILL_MS - 1u;
    expect_reply(&f, &f.a, "AUTH:0102030405060708", "ERROR:AUTH:LOCKED");
    f.now += 1u;
    uint8_t sk[16];
    establish(&f, &f.a, "0102030405060708", "a1a2a3a4a5a6a7a8", sk); /* a good proof is free */
    queue_nonce(&f.nonces, "a1a2a3a4a5a6a7a8");
    dcp_auth_result_t r = handle(&f, &f.b, "AUTH:0102030405060708");
    assert_int_equal(r.verdict, DCP_AUTH_REPLY);
    assert_memory_equal(r.reply, "AUTH:N:", 7);
    expect_reply(&f, &f.b, "AUTH:P:0000000000000000", "ERROR:AUTH:BAD_PROOF");
    expect_reply(&f, &f.b, "AUTH:0102030405060708", "ERROR:AUTH:LOCKED");
    /* a locked hello also ends that connection's session (it was a new hello) */
    /* a's session goes on: S: commands are not refused for the lock ... */
    char cmd[65];
    wrap(sk, 1, "0:DUTY:10", cmd);
    expect_run(&f, &f.a, cmd, "0:DUTY:10");
    /* ... but a wrong MAC costs a token like a wrong proof (none left: still locked) */
    wrap(sk, 2, "0:DUTY:10", cmd);
    cmd[12] = cmd[12] == '0' ? '1' : '0';
    expect_reply(&f, &f.a, cmd, "ERROR:AUTH:BAD_MAC");
    /* after 50 s all five are back, and no more */
    f.now += 5u * DCP_AUTH_REFILL_MS;
    assert_false(dcp_auth_locked(&f.node, f.now));
    assert_int_equal(f.node.credit_ms, 5u * DCP_AUTH_REFILL_MS);
    f.now += 100u * DCP_AUTH_REFILL_MS;
    assert_int_equal((dcp_auth_locked(&f.node, f.now), f.node.credit_ms),
                     5u * DCP_AUTH_REFILL_MS);
    /* BAD_MAC alone locks too */
    for (int i = 0; i < 5; i++) {
        expect_reply(&f, &f.a, cmd, "ERROR:AUTH:BAD_MAC");
    }
    expect_reply(&f, &f.b, "AUTH:0102030405060708", "ERROR:AUTH:LOCKED");
    /* a clock that goes back does not refill */
    f.now -= 60000u;
    expect_reply(&f, &f.b, "AUTH:0102030405060708", "ERROR:AUTH:LOCKED");
    f.now += 9999u;
    expect_reply(&f, &f.b, "AUTH:0102030405060708", "ERROR:AUTH:LOCKED");
}

static void test_malformed(void **state)
{
    (void)state;
    static const char *const hellos[] = {
        "AUTH:", "AUTH:0", "AUTH:010203040506070", "AUTH:01020304050607080", "AUTH:P",
        "AUTH:P:", "AUTH:P:0102030405060708aa", "AUTH:P:01020304050607 8", "AUTH:N:00",
        "AUTH:0102030405060708:", "AUTH: 102030405060708", "AUTH:OK", "AUTH:Pxxxxxxxxxxxxxxxx",
        "S:", "S:00000001", "S:00000001:", "S:00000001:0123456789abcdef",
        "S:00000001:0123456789abcdef0:0:READ", "S:0000001:0123456789abcdef:0:READ",
        "S:00000001;0123456789abcdef:0:READ", "S:00000001:0123456789abcdeg:0:READ",
        "S:-0000001:0123456789abcdef:0:READ", "S:00000000:0123456789abcdef:0:READ",
    };
    fixture_t f;
    setup_node(&f, KEY_HEX);
    for (size_t i = 0; i < sizeof(hellos) / sizeof(hellos[0]); i++) {
        dcp_auth_result_t r = handle(&f, &f.a, hellos[i]);
        if (r.verdict != DCP_AUTH_REPLY || strcmp(r.reply, "ERROR:AUTH:MALFORMED") != 0) {
            fail_msg("%s: %s", hellos[i], r.verdict == DCP_AUTH_REPLY ? r.reply : "ran");
        }
    }
    assert_int_equal(f.nonces.drawn, 0);
    assert_int_equal(f.node.credit_ms, 5u * DCP_AUTH_REFILL_MS);
    /* bytes that are not text, NUL included */
    static const uint8_t binary[] = {'S', ':', 0, 0xff, '0', '0', '0', '0', '0', '1'};
    dcp_auth_result_t r;
    dcp_auth_handle(&f.node, &f.a, f.now, binary, sizeof(binary), &r);
    assert_int_equal(r.verdict, DCP_AUTH_REPLY);
    assert_string_equal(r.reply, "ERROR:AUTH:MALFORMED");
    /* lower-case prefixes are plain commands (the command parser answers) */
    expect_run(&f, &f.a, "auth:0102030405060708", "auth:0102030405060708");
    expect_run(&f, &f.a, "s:00000001:0123456789abcdef:0:READ",
               "s:00000001:0123456789abcdef:0:READ");
    /* an empty write and one over 64 bytes run as they are (NO_NODE_ID, ATT error) */
    dcp_auth_handle(&f.node, &f.a, f.now, NULL, 0, &r);
    assert_int_equal(r.verdict, DCP_AUTH_RUN);
    assert_int_equal(r.len, 0);
    char longer[70];
    memset(longer, 'A', sizeof(longer) - 1);
    memcpy(longer, "0:DUTY:", 7);
    longer[sizeof(longer) - 1] = '\0';
    expect_run(&f, &f.a, longer, longer);
    dcp_plan_t plan;
    dcp_plan_command((const uint8_t *)longer, strlen(longer), 0, &plan);
    assert_int_equal(plan.actions[0].kind, DCP_ACT_ATT_ERROR);
}

static void test_needs_session(void **state)
{
    (void)state;
    static const struct {
        const char *cmd;
        bool needs;
    } cases[] = {
        {"0:DUTY:50", true}, {"ALL:stop", true},   {"1:On", true},       {"9:ramp", true},
        {"ALL:OFF", true},   {"0:DUTY", true},     {"x:DUTY:1", true},   {":OFF", true},
        {"0:READ", false},   {"0:STATUS", false},  {"ALL:INFO", false},  {"ALL:MONITOR", false},
        {"DUTY", false},     {"DUTY:50", false},   {"0:DUTYX", false},   {"0:", false},
        {"", false},         {"0:OF", false},      {"0::DUTY", false},   {"AUTH:P", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (dcp_auth_needs_session((const uint8_t *)cases[i].cmd, strlen(cases[i].cmd)) !=
            cases[i].needs) {
            fail_msg("%s: want %d", cases[i].cmd, cases[i].needs);
        }
    }
    assert_false(dcp_auth_needs_session(NULL, 3));
}

static void test_node_without_key(void **state)
{
    (void)state;
    nonce_script_t nonces = {0};
    dcp_auth_node_t node;
    dcp_auth_session_t s;
    dcp_auth_result_t r;
    dcp_auth_node_init(&node, scripted_nonce, &nonces, 0);
    dcp_auth_session_reset(&s);
    assert_int_equal(dcp_auth_capabilities(&node), 0);
    static const char *const writes[] = {"0:DUTY:50", "AUTH:0102030405060708",
                                         "S:00000001:0123456789abcdef:0:READ", "AUTH:P:00"};
    for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++) {
        dcp_auth_handle(&node, &s, 0, (const uint8_t *)writes[i], strlen(writes[i]), &r);
        assert_int_equal(r.verdict, DCP_AUTH_RUN);
        assert_ptr_equal(r.cmd, writes[i]);
        assert_int_equal(r.len, strlen(writes[i]));
    }
    uint8_t key[16];
    unhex_n(KEY_HEX, key, 16);
    dcp_auth_node_set_key(&node, key);
    assert_int_equal(dcp_auth_capabilities(&node), DCP_CAP_AUTH);
    assert_int_equal(DCP_CAP_INFO | DCP_CAP_ADV_MESH_ID | dcp_auth_capabilities(&node), 0x0007);
    dcp_auth_handle(&node, &s, 0, (const uint8_t *)"0:DUTY:50", 9, &r);
    assert_int_equal(r.verdict, DCP_AUTH_REPLY);
    dcp_auth_node_set_key(&node, NULL);
    assert_int_equal(dcp_auth_capabilities(&node), 0);
    assert_int_equal(dcp_auth_capabilities(NULL), 0);
    for (size_t i = 0; i < sizeof(node.mesh_key); i++) {
        assert_int_equal(node.mesh_key[i], 0);
    }
}

static void test_wrap_limits(void **state)
{
    (void)state;
    uint8_t sk[16] = {0};
    char buf[DCP_MAX_COMMAND_LEN + 1];
    /* ALL:DUTY:100 wrapped is 40 bytes; 36 bytes of command still fit in 64 */
    assert_int_equal(dcp_auth_wrap(buf, sizeof(buf), sk, 1, (const uint8_t *)"ALL:DUTY:100", 12),
                     40);
    static const char c36[] = "0:DUTY:100000000000000000000000000000";
    assert_int_equal(dcp_auth_wrap(buf, sizeof(buf), sk, 1, (const uint8_t *)c36, 36), 64);
    assert_int_equal(dcp_auth_wrap(buf, sizeof(buf), sk, 1, (const uint8_t *)c36, 37), -1);
    assert_int_equal(dcp_auth_wrap(buf, sizeof(buf), sk, 0, (const uint8_t *)"0:READ", 6), -1);
    assert_int_equal(dcp_auth_wrap(buf, 40, sk, 1, (const uint8_t *)"ALL:DUTY:100", 12), -1);
    uint8_t mac[8];
    assert_false(dcp_auth_command_mac(sk, 1, NULL, 1, mac));
    assert_true(dcp_auth_command_mac(sk, 1, NULL, 0, mac));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_kdf),
        cmocka_unit_test(test_mesh_key_from_net_key),
        cmocka_unit_test(test_vectors_proof),
        cmocka_unit_test(test_vectors_command),
        cmocka_unit_test(test_vectors_session),
        cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_replay_and_counters),
        cmocka_unit_test(test_second_client_and_disconnect),
        cmocka_unit_test(test_proof_rules),
        cmocka_unit_test(test_rate_limit),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_needs_session),
        cmocka_unit_test(test_node_without_key),
        cmocka_unit_test(test_wrap_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
