/* The procedure tables of proto/vb_protocol.h: the wire numbers they must
 * keep (old clients and HOST v1 servers depend on them), the columns the
 * daemons dispatch by, and docs/protocol.md's tables generated from them
 * (docs/gen-tables.py --check). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vb_bodies.h"
#include "vb_protocol.h"
#include "vb_testsupport.h"

typedef struct pinned {
    uint32_t program, number;
    const char *name;
    int needs_auth;
    uint32_t max_body;
} pinned;

/* Written out by hand, not from the X-macros: a row edited by mistake in
 * the table must fail here. */
static const pinned wire[] = {
    { 1, 1, "PING", 0, 256 },
    { 1, 2, "PONG", 0, 256 },
    { 2, 1, "AUTH_LIST", 0, 256 },
    { 2, 2, "AUTH_SASL_INIT", 0, 256 },
    { 2, 3, "AUTH_SASL_START", 0, 16384 },
    { 2, 4, "AUTH_SASL_STEP", 0, 16384 },
    { 2, 5, "AUTH_TOKEN_CHALLENGE", 0, 1024 },
    { 2, 6, "AUTH_TOKEN_PROVE", 0, 1024 },
    { 2, 7, "AUTH_PEER", 0, 256 },
    { 2, 8, "AUTH_POLKIT", 0, 256 },
    { 2, 10, "OPEN", 1, 8192 },
    { 2, 11, "CLOSE", 1, 256 },
    { 2, 12, "GET_HOSTNAME", 1, 256 },
    { 2, 13, "LIST_DOMAINS", 1, 256 },
    { 2, 14, "DOMAIN_START", 1, 1024 },
    { 2, 15, "DOMAIN_SHUTDOWN", 1, 1024 },
    { 2, 20, "TOKEN_ISSUE", 1, 256 },
    { 2, 21, "TOKEN_REVOKE", 1, 1024 },
    { 2, 30, "CRED_FILL", 0, 65536 },
    { 2, 31, "CRED_APPROVE", 0, 65536 },
    { 2, 32, "CRED_REJECT", 0, 65536 },
    { 3, 1, "OPEN", 0, 16384 },
    { 3, 2, "CLOSE", 0, 256 },
    { 3, 3, "GET_HOSTNAME", 0, 256 },
    { 3, 4, "LIST_DOMAINS", 0, 256 },
    { 3, 5, "DOMAIN_START", 0, 1024 },
    { 3, 6, "DOMAIN_SHUTDOWN", 0, 1024 },
    { 3, 7, "STATUS", 0, 256 },
    { 3, 8, "LOGIN", 0, 16384 },
    { 3, 9, "LOGOUT", 0, 16384 },
    { 3, 20, "CRED_REQUEST", 0, 65536 },
};
#define NWIRE (sizeof wire / sizeof wire[0])
#define SCAN_MAX 256u /* above every procedure number in use */

static void test_wire_numbers_kept(void **state)
{
    (void)state;
    for (size_t i = 0; i < NWIRE; i++) {
        const vb_proc_info *p = vb_proto_proc_lookup(wire[i].program, wire[i].number);
        assert_non_null(p);
        assert_string_equal(p->name, wire[i].name);
        assert_int_equal(p->program, wire[i].program);
        assert_int_equal(p->needs_auth, wire[i].needs_auth);
        assert_int_equal(p->max_body, wire[i].max_body);
    }
    /* and nothing else: a new row is a new line above */
    size_t known = 0;
    for (uint32_t prog = 0; prog <= 4; prog++)
        for (uint32_t n = 0; n < SCAN_MAX; n++)
            known += vb_proto_proc_lookup(prog, n) != NULL;
    assert_int_equal(known, NWIRE);
}

/* vbhostd --protocol-v1 knows only what HOST v1 had: the driver calls, no
 * AUTH_* and no TOKEN_* (the compatibility story of docs/protocol.md 7). */
static void test_since_column(void **state)
{
    (void)state;
    static const uint32_t v1[] = { 10, 11, 12, 13, 14, 15 };
    for (uint32_t n = 0; n < SCAN_MAX; n++) {
        const vb_proc_info *p = vb_proto_proc_lookup(VB_PROG_HOST, n);
        if (!p || p->runs == VB_RUN_PEER)
            continue;
        int in_v1 = 0;
        for (size_t i = 0; i < sizeof v1 / sizeof v1[0]; i++)
            in_v1 |= v1[i] == n;
        assert_int_equal(vb_proto_proc_lookup_version(VB_PROG_HOST, 1, n) != NULL, in_v1);
        assert_ptr_equal(vb_proto_proc_lookup_version(VB_PROG_HOST, 2, n), p);
    }
    assert_null(vb_proto_proc_lookup_version(VB_PROG_HOST, 1, VB_HOST_PROC_AUTH_LIST));
    assert_null(vb_proto_proc_lookup_version(VB_PROG_HOST, 1, VB_HOST_PROC_TOKEN_ISSUE));
}

/* Where vbhostd and vbrokerd run each procedure, as before the table:
 * driver calls on the worker, polkit off the loop, the rest on the loop;
 * the credential relay goes the other way. */
static void test_runs_column(void **state)
{
    (void)state;
    for (uint32_t n = 0; n < SCAN_MAX; n++) {
        const vb_proc_info *p = vb_proto_proc_lookup(VB_PROG_HOST, n);
        if (!p)
            continue;
        /* ASYNC: polkit (8) and the calls that touch tokens.db (5, 6, 20, 21) */
        int async = n == 5 || n == 6 || n == 8 || n == 20 || n == 21;
        enum vb_proc_runs want = n >= 10 && n <= 15 ? VB_RUN_WORKER
                                 : async            ? VB_RUN_ASYNC
                                 : n >= 30          ? VB_RUN_PEER
                                                    : VB_RUN_LOOP;
        assert_int_equal(p->runs, want);
    }
    for (uint32_t n = 0; n < SCAN_MAX; n++) {
        const vb_proc_info *p = vb_proto_proc_lookup(VB_PROG_BROKER, n);
        if (!p)
            continue;
        enum vb_proc_runs want = n == VB_BROKER_PROC_STATUS         ? VB_RUN_LOOP
                                 : n == VB_BROKER_PROC_CRED_REQUEST ? VB_RUN_PEER
                                                                    : VB_RUN_WORKER;
        assert_int_equal(p->runs, want);
    }
}

/* The relay rule's calls (docs/protocol.md 9.12): OPEN and the driver calls
 * that may log in again; never CLOSE, AUTH_*, TOKEN_*, CRED_*. */
static void test_logs_in_column(void **state)
{
    (void)state;
    for (uint32_t n = 0; n < SCAN_MAX; n++) {
        int want = n == 10 || (n >= 12 && n <= 15);
        assert_int_equal(vb_proto_host_proc_may_log_in(n), want);
    }
}

/* One message, one body: the credential question of both programs, and the
 * driver calls the broker forwards to vbhostd. */
static void test_shared_bodies(void **state)
{
    (void)state;
    static const uint32_t pairs[][2] = {
        { VB_HOST_PROC_CRED_FILL, VB_BROKER_PROC_CRED_REQUEST },
        { VB_HOST_PROC_CLOSE, VB_BROKER_PROC_CLOSE },
        { VB_HOST_PROC_GET_HOSTNAME, VB_BROKER_PROC_GET_HOSTNAME },
        { VB_HOST_PROC_LIST_DOMAINS, VB_BROKER_PROC_LIST_DOMAINS },
        { VB_HOST_PROC_DOMAIN_START, VB_BROKER_PROC_DOMAIN_START },
        { VB_HOST_PROC_DOMAIN_SHUTDOWN, VB_BROKER_PROC_DOMAIN_SHUTDOWN },
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        const vb_proc_info *h = vb_proto_proc_lookup(VB_PROG_HOST, pairs[i][0]);
        const vb_proc_info *b = vb_proto_proc_lookup(VB_PROG_BROKER, pairs[i][1]);
        assert_non_null(h);
        assert_non_null(b);
        assert_int_equal(h->body, b->body);
    }
    assert_string_equal(
        vb_proto_body_name(vb_proto_proc_lookup(VB_PROG_HOST, VB_HOST_PROC_CRED_FILL)->body),
        "CRED_QUESTION");
    assert_string_equal(vb_proto_body_name(VB_BODY_COUNT), "UNKNOWN");
}

/* Encode a CALL of (program, procedure) the way the client stubs do: the
 * packer its body column names; decode the frame again into msg. */
static void stub_call(uint32_t program, uint32_t procedure, const void *arg, vb_msg *msg)
{
    const vb_proc_info *info = vb_proto_proc_lookup(program, procedure);
    assert_non_null(info);
    vb_body_pack_fn pack = vb_body_call_packer(info->body);
    assert_non_null(pack);
    vb_msg_header hdr = { program, 1, VB_MSG_CALL, 1, procedure, VB_STATUS_OK, 0 };
    vb_enc enc;
    uint8_t *frame;
    size_t len;
    vb_error err;
    vb_enc_begin(&enc, &hdr);
    pack(&enc, arg);
    assert_int_equal(vb_enc_finish(&enc, VB_FRAME_MAX_PREAUTH, &frame, &len, &err), 0);
    size_t plen = len - VB_FRAME_PREFIX_LEN;
    uint8_t *payload = malloc(plen);
    assert_non_null(payload);
    memcpy(payload, frame + VB_FRAME_PREFIX_LEN, plen);
    vb_frame_free(frame, len);
    assert_int_equal(vb_msg_decode(msg, payload, plen, &err), 0); /* owns payload */
}

/* The bodies the stubs take from the table decode as the servers read them:
 * a domain name for both programs' DOMAIN_START, [name, flags] for OPEN. */
static void test_stub_bodies(void **state)
{
    (void)state;
    vb_msg msg;
    vb_error err;
    char *name;
    stub_call(VB_PROG_BROKER, VB_BROKER_PROC_DOMAIN_START, "web-1", &msg);
    assert_int_equal(vb_body_read_str(msg.body, 256, &name, &err), 0);
    assert_string_equal(name, "web-1");
    free(name);
    vb_msg_clear(&msg);
    stub_call(VB_PROG_HOST, VB_HOST_PROC_DOMAIN_SHUTDOWN, "db", &msg);
    assert_int_equal(vb_body_read_str(msg.body, 256, &name, &err), 0);
    assert_string_equal(name, "db");
    free(name);
    /* longer than its limit: refused, nothing returned */
    assert_int_equal(vb_body_read_str(msg.body, 1, &name, &err), -1);
    assert_null(name);
    vb_msg_clear(&msg);

    vb_body_open open = { "test:///default", 1 };
    stub_call(VB_PROG_HOST, VB_HOST_PROC_OPEN, &open, &msg);
    vb_rd rd;
    uint32_t flags;
    assert_int_equal(vb_rd_init(&rd, msg.body, &err), 0);
    assert_int_equal(vb_rd_strdup(&rd, 4096, &name, &err), 0);
    assert_int_equal(vb_rd_u32(&rd, &flags, &err), 0);
    assert_string_equal(name, "test:///default");
    assert_int_equal(flags, 1);
    free(name);
    vb_msg_clear(&msg);

    /* the thin client packs its own OPEN and LOGIN (environment, screen) */
    assert_null(vb_body_call_packer(VB_BODY_BROKER_OPEN));
    assert_null(vb_body_call_packer(VB_BODY_LOGIN));
}

static int run_check(const char *doc)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "python3 '%s/docs/gen-tables.py' --check '%s' 2>/dev/null",
             VB_SRC_DIR, doc);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* docs/protocol.md's tables are what the header says; a doc whose table
 * says otherwise is caught. */
static void test_doc_tables_match(void **state)
{
    (void)state;
    char doc[4096];
    snprintf(doc, sizeof doc, "%s/docs/protocol.md", VB_SRC_DIR);
    assert_int_equal(run_check(doc), 0);

    size_t len;
    char *text = vb_ts_read_file(doc, &len);
    assert_non_null(text);
    const char *row = "| 10 | `OPEN` | yes |";
    char *at = strstr(text, row);
    assert_non_null(at);
    memcpy(at, "| 10 | `OPEN` | no  |", strlen(row)); /* same length */
    char dir[] = "/tmp/vb-proctable-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char copy[4200];
    snprintf(copy, sizeof copy, "%s/protocol.md", dir);
    assert_int_equal(vb_ts_write_file(copy, text, 0600), 0);
    int rc = run_check(copy);
    unlink(copy);
    rmdir(dir);
    free(text);
    assert_int_equal(rc, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wire_numbers_kept),
        cmocka_unit_test(test_since_column),
        cmocka_unit_test(test_runs_column),
        cmocka_unit_test(test_logs_in_column),
        cmocka_unit_test(test_shared_bodies),
        cmocka_unit_test(test_stub_bodies),
        cmocka_unit_test(test_doc_tables_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
