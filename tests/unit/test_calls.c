/* Several calls in flight on one transport (proto/vb_calls.c, the call layer
 * of hvdrivers/vb_remote_rpc.c), against a scripted vbhostd: a real thread on a
 * real socketpair speaking the real framing, which says "concurrent_calls".
 *
 *  - two channels (conn_id 1 and 2) call OPEN at once; the server asks a
 *    question about conn 1's call and answers conn 2's first: conn 2's call
 *    completes while conn 1's person has not answered yet, and the question
 *    reaches conn 1's source only;
 *  - an ERROR reply whose code is OK and whose message is empty still gives
 *    the caller an error a person can read (PROTOCOL);
 *  - the transport dying fails every call in flight with the reason, and
 *    every later one at once;
 *  - a question for a conn_id with no call running, while other calls are in
 *    flight, reaches nobody: the transport is dropped and every call fails
 *    with the violation; the server gets no answer;
 *  - a server without "concurrent_calls" gets one driver call at a time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "vb_calls.h"
#include "vb_credwire.h"
#include "vb_remote.h"
#include "vb_testsupport.h"
#include "vb_testsupport_wire.h"

/* ---- the scripted server ---------------------------------------------------- */

typedef vb_ts_wire server; /* the server's end of the socketpair */

static int srv_read(server *s, vb_msg *msg)
{
    return vb_ts_wire_read(s, vb_ts_scaled_ms(10000), msg) == 1 ? 0 : -1;
}

/* AUTH_LIST: peer only, a server id, conn_id and (unless *old) concurrent_calls */
static void pack_auth_list(vb_enc *enc, const void *arg)
{
    int old = *(const int *)arg;
    vb_enc_array(enc, 3);
    vb_enc_array(enc, 1);
    vb_enc_str(enc, "peer");
    vb_enc_str(enc, "0123456789abcdef0123456789abcdef");
    vb_enc_array(enc, old ? 1 : 2);
    vb_enc_str(enc, VB_FEATURE_CONN_ID);
    if (!old)
        vb_enc_str(enc, VB_FEATURE_CONCURRENT);
}

/* REPLY []; to AUTH_LIST, a server from before concurrent calls when old */
static void srv_reply_as(server *s, const vb_msg_header *call, int old)
{
    vb_msg_header h = *call;
    h.type = VB_MSG_REPLY;
    vb_ts_wire_send(s, &h, call->procedure == VB_HOST_PROC_AUTH_LIST ? pack_auth_list : NULL,
                    &old);
}

static void srv_reply(server *s, const vb_msg_header *call)
{
    srv_reply_as(s, call, 0);
}

static void srv_empty_error(server *s, const vb_msg_header *call)
{
    vb_msg_header h = *call;
    h.type = VB_MSG_REPLY;
    h.status = VB_STATUS_ERROR;
    vb_ts_wire_send(s, &h, vb_ts_pack_empty_error, NULL);
}

static void pack_question(vb_enc *enc, const void *arg)
{
    vb_cred_request req = { 0 };
    req.service = strdup("xenapi://x.example:443/");
    req.id = *(const uint32_t *)arg;
    vb_cred_request_add(&req, VB_CRED_PASSPHRASE, "Password", NULL, NULL);
    vb_credwire_encode_request(enc, &req);
    vb_cred_request_clear(&req);
}

static void srv_ask(server *s, uint32_t conn_id, uint32_t serial)
{
    vb_msg_header h = { VB_PROG_HOST, VB_PROG_HOST_VERSION, VB_MSG_CALLBACK, serial,
                        VB_HOST_PROC_CRED_FILL, VB_STATUS_OK, conn_id };
    vb_ts_wire_send(s, &h, pack_question, &serial);
}

/* What the script saw, for the test to check after joining it. */
typedef struct script {
    server s;
    int fd;
    int answered_ok;      /* conn 1's question came back answered */
    int order_ok;         /* conn 2's reply went out before the answer came */
} script;

/* Read until a CALL arrives (answering nothing else). */
static int next_call(server *s, vb_msg *m)
{
    while (srv_read(s, m) == 0) {
        if (m->hdr.type == VB_MSG_CALL)
            return 0;
        vb_msg_clear(m);
    }
    return -1;
}

static void *run_script(void *arg)
{
    script *sc = arg;
    server *s = &sc->s;
    vb_msg m, open1, open2;
    /* negotiation: AUTH_LIST, AUTH_PEER */
    for (int i = 0; i < 2; i++) {
        if (next_call(s, &m) < 0)
            return NULL;
        srv_reply(s, &m.hdr);
        vb_msg_clear(&m);
    }
    /* two OPENs in flight, on conn 1 and conn 2, in whatever order */
    if (next_call(s, &open1) < 0 || next_call(s, &open2) < 0)
        return NULL;
    if (open1.hdr.conn_id != 1) {
        vb_msg t = open1;
        open1 = open2;
        open2 = t;
    }
    srv_ask(s, 1, 900);          /* conn 1's login needs its person */
    srv_reply(s, &open2.hdr);    /* conn 2's OPEN is done meanwhile */
    sc->order_ok = 1;
    if (srv_read(s, &m) == 0) {  /* the answer, once conn 1's person gave it */
        sc->answered_ok = m.hdr.type == VB_MSG_CALLBACK_REPLY && m.hdr.serial == 900 &&
                          m.hdr.conn_id == 1 && m.hdr.status == VB_STATUS_OK;
        vb_msg_clear(&m);
    }
    srv_reply(s, &open1.hdr);
    vb_msg_clear(&open1);
    vb_msg_clear(&open2);
    /* an empty ERROR */
    if (next_call(s, &m) < 0)
        return NULL;
    srv_empty_error(s, &m.hdr);
    vb_msg_clear(&m);
    /* two calls in flight, then the transport dies under them */
    for (int i = 0; i < 2; i++) {
        if (next_call(s, &m) < 0)
            return NULL;
        vb_msg_clear(&m);
    }
    shutdown(s->fd, SHUT_RDWR);
    return NULL;
}

/* Hostile: with OPENs of conn 1 and 2 in flight, ask for conn 3. */
static void *run_hostile(void *arg)
{
    script *sc = arg;
    server *s = &sc->s;
    vb_msg m;
    for (int i = 0; i < 2; i++) {
        if (next_call(s, &m) < 0)
            return NULL;
        srv_reply(s, &m.hdr);
        vb_msg_clear(&m);
    }
    for (int i = 0; i < 2; i++) {
        if (next_call(s, &m) < 0)
            return NULL;
        vb_msg_clear(&m);
    }
    srv_ask(s, 3, 901);
    sc->order_ok = 1;
    /* whatever comes back before the client hangs up must not be an answer */
    while (srv_read(s, &m) == 0) {
        if (m.hdr.type == VB_MSG_CALLBACK_REPLY)
            sc->answered_ok = 1;
        vb_msg_clear(&m);
    }
    return NULL;
}

/* A server from before "concurrent_calls": it refuses a second driver call
 * while one runs, so the client must not send one. */
static void *run_old_server(void *arg)
{
    script *sc = arg;
    server *s = &sc->s;
    vb_msg m, later;
    for (int i = 0; i < 2; i++) {
        if (next_call(s, &m) < 0)
            return NULL;
        srv_reply_as(s, &m.hdr, 1);
        vb_msg_clear(&m);
    }
    for (int i = 0; i < 2; i++) {
        if (next_call(s, &m) < 0)
            return NULL;
        /* nothing else may arrive before this call's reply (this wait is
         * the assertion, expected to run out: 300 ms of silence) */
        int got = vb_ts_wire_read(s, 300, &later);
        if (got == 1)
            vb_msg_clear(&later);
        else
            sc->order_ok++;
        srv_reply(s, &m.hdr);
        vb_msg_clear(&m);
    }
    return NULL;
}

/* ---- the people behind the two channels ------------------------------------ */

typedef struct person {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int asked, released;
    char service[200];
} person;

static int person_cb(vb_cred_request *req, void *opaque, vb_error *err)
{
    (void)err;
    person *p = opaque;
    pthread_mutex_lock(&p->lock);
    p->asked++;
    snprintf(p->service, sizeof p->service, "%s", req->service ? req->service : "");
    while (!p->released)
        pthread_cond_wait(&p->cond, &p->lock);
    pthread_mutex_unlock(&p->lock);
    for (size_t i = 0; i < req->nitems; i++)
        if (req->items[i].type == VB_CRED_PASSPHRASE) {
            req->items[i].result = strdup("pw-for-x");
            req->items[i].resultlen = 8;
        }
    return 0;
}

typedef struct caller {
    vb_remote_chan ch;
    uint32_t proc;
    int rc, done;
    vb_error err;
    pthread_mutex_t *lock;
} caller;

static void *run_caller(void *arg)
{
    caller *c = arg;
    vb_error err;
    int rc;
    if (c->proc == VB_HOST_PROC_OPEN) {
        rc = vb_remote_chan_open(&c->ch, "test:///default", 0, &err);
    } else {
        vb_domain_info *doms = NULL;
        size_t n = 0;
        rc = vb_remote_chan_list_domains(&c->ch, &doms, &n, &err);
        free(doms);
    }
    pthread_mutex_lock(c->lock);
    c->rc = rc;
    if (rc < 0)
        c->err = err;
    c->done = 1;
    pthread_mutex_unlock(c->lock);
    return NULL;
}

static pthread_mutex_t done_lock = PTHREAD_MUTEX_INITIALIZER;

static int is_done(void *arg)
{
    caller *c = arg;
    pthread_mutex_lock(&done_lock);
    int d = c->done;
    pthread_mutex_unlock(&done_lock);
    return d;
}

static int was_asked(void *arg)
{
    person *p = arg;
    pthread_mutex_lock(&p->lock);
    int a = p->asked;
    pthread_mutex_unlock(&p->lock);
    return a;
}

static void release(person *p)
{
    pthread_mutex_lock(&p->lock);
    p->released = 1;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

static void start_both(pthread_t t[2], caller *a, caller *b)
{
    assert_int_equal(pthread_create(&t[0], NULL, run_caller, a), 0);
    assert_int_equal(pthread_create(&t[1], NULL, run_caller, b), 0);
}

static void join_both(pthread_t t[2])
{
    pthread_join(t[0], NULL);
    pthread_join(t[1], NULL);
}

/* Both calls at once, to the end. */
static void run_both(caller *a, caller *b)
{
    pthread_t t[2];
    start_both(t, a, b);
    join_both(t);
}

static void end_scripted(vb_remote *r, vb_uri *uri, script *sc)
{
    vb_remote_free(r);
    vb_uri_clear(uri);
    vb_ts_wire_close(&sc->s);
}

static vb_remote *connect_scripted(int sv[2], script *sc, pthread_t *srv, void *(*fn)(void *),
                                   vb_uri *uri)
{
    vb_error err;
    memset(sc, 0, sizeof *sc);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    sc->s.fd = sv[1];
    vb_frame_reader_init(&sc->s.rd, VB_FRAME_MAX_POSTAUTH);
    assert_int_equal(pthread_create(srv, NULL, fn, sc), 0);
    assert_int_equal(vb_uri_parse("test+unix:///default?socket=/nonexistent", uri, &err), 0);
    vb_remote_opts opts = { .timeout_ms = vb_ts_scaled_ms(10000) };
    vb_remote *r = NULL;
    if (vb_remote_connect_fd(sv[0], uri, &opts, &r, &err) < 0)
        fail_msg("connect: %s", err.message);
    return r;
}

static void test_calls_in_flight_wait_only_for_their_own(void **state)
{
    (void)state;
    int sv[2];
    script sc;
    pthread_t srv;
    vb_uri uri;
    vb_error err;
    vb_remote *r = connect_scripted(sv, &sc, &srv, run_script, &uri);
    assert_string_equal(vb_remote_auth_type(r), "peer");
    assert_int_equal(vb_remote_concurrent(r), 1);

    /* 1. conn 1 waits for its person; conn 2 is not held up by it */
    person p1 = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, "" };
    person p2 = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, "" };
    vb_cred_source src1 = { .fn = person_cb, .opaque = &p1 };
    vb_cred_source src2 = { .fn = person_cb, .opaque = &p2 };
    caller c1 = { { r, 1, &src1 }, VB_HOST_PROC_OPEN, -1, 0, { 0 }, &done_lock };
    caller c2 = { { r, 2, &src2 }, VB_HOST_PROC_OPEN, -1, 0, { 0 }, &done_lock };
    pthread_t t[2];
    start_both(t, &c1, &c2);
    int asked = vb_ts_wait_until(was_asked, &p1, vb_ts_scaled_ms(5000));
    int two_done = vb_ts_wait_until(is_done, &c2, vb_ts_scaled_ms(5000));
    int one_done_early = is_done(&c1);
    release(&p1);
    join_both(t);
    assert_int_equal(asked, 0);
    assert_int_equal(two_done, 0);
    assert_int_equal(one_done_early, 0);
    if (c1.rc < 0 || c2.rc < 0)
        fail_msg("open: %s / %s", c1.err.message, c2.err.message);
    assert_int_equal(p2.asked, 0);           /* the question went to conn 1's source only */
    assert_int_equal(p1.asked, 1);
    assert_non_null(strstr(p1.service, "xenapi://x.example:443/"));

    /* 2. an ERROR that says nothing still says something */
    vb_remote_set_conn(r, 1);
    char *host = NULL;
    assert_int_equal(vb_remote_get_hostname(r, &host, &err), -1);
    assert_int_equal(err.code, VB_ERR_PROTOCOL);
    assert_true(strlen(err.message) > 0);

    /* 3. the transport dies under two calls: both fail with the reason */
    caller d1 = { { r, 1, NULL }, VB_HOST_PROC_LIST_DOMAINS, -1, 0, { 0 }, &done_lock };
    caller d2 = { { r, 2, NULL }, VB_HOST_PROC_LIST_DOMAINS, -1, 0, { 0 }, &done_lock };
    run_both(&d1, &d2);
    pthread_join(srv, NULL);
    assert_int_equal(d1.rc, -1);
    assert_int_equal(d2.rc, -1);
    assert_int_equal(d1.err.code, VB_ERR_PEER_CLOSED);
    assert_int_equal(d2.err.code, VB_ERR_PEER_CLOSED);
    assert_string_equal(d1.err.message, d2.err.message);
    assert_int_equal(vb_remote_list_domains(r, &(vb_domain_info *){ NULL }, &(size_t){ 0 }, &err),
                     -1);
    assert_int_equal(err.code, VB_ERR_PEER_CLOSED);

    assert_int_equal(sc.order_ok, 1);
    assert_int_equal(sc.answered_ok, 1);
    end_scripted(r, &uri, &sc);
}

static void test_question_for_a_conn_id_without_a_call_reaches_nobody(void **state)
{
    (void)state;
    int sv[2];
    script sc;
    pthread_t srv;
    vb_uri uri;
    vb_remote *r = connect_scripted(sv, &sc, &srv, run_hostile, &uri);
    person p1 = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 1, "" };
    person p2 = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 1, "" };
    vb_cred_source src1 = { .fn = person_cb, .opaque = &p1 };
    vb_cred_source src2 = { .fn = person_cb, .opaque = &p2 };
    caller c1 = { { r, 1, &src1 }, VB_HOST_PROC_OPEN, -1, 0, { 0 }, &done_lock };
    caller c2 = { { r, 2, &src2 }, VB_HOST_PROC_OPEN, -1, 0, { 0 }, &done_lock };
    run_both(&c1, &c2);
    pthread_join(srv, NULL);
    print_message("conn 1: %s\n", c1.err.message);
    assert_int_equal(sc.order_ok, 1);
    assert_int_equal(c1.rc, -1);
    assert_int_equal(c2.rc, -1);
    assert_int_equal(c1.err.code, VB_ERR_PROTOCOL);
    assert_int_equal(c2.err.code, VB_ERR_PROTOCOL);
    assert_non_null(strstr(c1.err.message, "for connection id 3 during a call for connection id"));
    assert_int_equal(p1.asked + p2.asked, 0);
    assert_int_equal(sc.answered_ok, 0);
    end_scripted(r, &uri, &sc);
}

static void test_old_server_gets_one_driver_call_at_a_time(void **state)
{
    (void)state;
    int sv[2];
    script sc;
    pthread_t srv;
    vb_uri uri;
    vb_remote *r = connect_scripted(sv, &sc, &srv, run_old_server, &uri);
    assert_int_equal(vb_remote_multiplexes(r), 1);
    assert_int_equal(vb_remote_concurrent(r), 0);
    caller c1 = { { r, 1, NULL }, VB_HOST_PROC_OPEN, -1, 0, { 0 }, &done_lock };
    caller c2 = { { r, 2, NULL }, VB_HOST_PROC_OPEN, -1, 0, { 0 }, &done_lock };
    run_both(&c1, &c2);
    pthread_join(srv, NULL);
    if (c1.rc < 0 || c2.rc < 0)
        fail_msg("open: %s / %s", c1.err.message, c2.err.message);
    assert_int_equal(sc.order_ok, 2); /* neither call overtook the other's reply */
    end_scripted(r, &uri, &sc);
}

/* The table alone: replies by serial, in any order; a late reply dropped. */
static void test_table_matches_by_serial(void **state)
{
    (void)state;
    vb_calls t;
    vb_calls_init(&t);
    vb_call a, b;
    vb_msg_header h = { VB_PROG_HOST, 2, VB_MSG_CALL, 0, VB_HOST_PROC_GET_HOSTNAME, 0, 7 };
    vb_error err;
    assert_int_equal(vb_calls_start(&t, &a, &h, NULL, &err), 0);
    assert_int_equal(vb_calls_start(&t, &b, &h, NULL, &err), 0);
    assert_int_not_equal(a.hdr.serial, b.hdr.serial);
    assert_int_equal(vb_calls_wait(&t, &a, vb_calls_now_ms() + 1000, NULL), VB_CALL_LEAD);
    /* b's reply first, built as a peer would send it */
    for (int i = 0; i < 2; i++) {
        vb_msg_header rh = i == 0 ? b.hdr : a.hdr;
        rh.type = VB_MSG_REPLY;
        vb_enc enc;
        uint8_t *frame;
        size_t len;
        vb_enc_begin(&enc, &rh);
        vb_enc_array(&enc, 0);
        assert_int_equal(vb_enc_finish(&enc, 4096, &frame, &len, &err), 0);
        uint8_t *payload = malloc(len - VB_FRAME_PREFIX_LEN);
        memcpy(payload, frame + VB_FRAME_PREFIX_LEN, len - VB_FRAME_PREFIX_LEN);
        vb_frame_free(frame, len);
        vb_msg m;
        assert_int_equal(vb_msg_decode(&m, payload, len - VB_FRAME_PREFIX_LEN, &err), 0);
        assert_int_equal(vb_calls_post_reply(&t, &m), 1);
    }
    vb_calls_unlead(&t);
    vb_msg reply;
    assert_int_equal(vb_calls_wait(&t, &b, vb_calls_now_ms() + 1000, NULL), VB_CALL_DONE);
    assert_int_equal(vb_calls_result(&t, &b, &reply, &err), 0);
    assert_int_equal(reply.hdr.serial, b.hdr.serial);
    vb_msg_clear(&reply);
    assert_int_equal(vb_calls_wait(&t, &a, vb_calls_now_ms() + 1000, NULL), VB_CALL_DONE);
    assert_int_equal(vb_calls_result(&t, &a, &reply, &err), 0);
    assert_int_equal(reply.hdr.serial, a.hdr.serial);
    vb_msg_clear(&reply);
    vb_calls_end(&t, &a);
    vb_calls_end(&t, &b);
    /* the transport is over: a new call fails at once with the reason */
    vb_error why;
    vb_error_set(&why, VB_ERR_PEER_CLOSED, VB_DOM_RPC, "gone");
    vb_calls_fail_all(&t, &why);
    assert_int_equal(vb_calls_start(&t, &a, &h, NULL, &err), -1);
    assert_string_equal(err.message, "gone");
    vb_calls_destroy(&t);
}

/* A message of type for hdr's serial, as a peer would send it. */
static vb_msg peer_msg(vb_msg_header hdr, int type)
{
    vb_error err;
    vb_enc enc;
    uint8_t *frame;
    size_t len;
    hdr.type = type;
    vb_enc_begin(&enc, &hdr);
    vb_enc_array(&enc, 0);
    assert_int_equal(vb_enc_finish(&enc, 4096, &frame, &len, &err), 0);
    uint8_t *payload = malloc(len - VB_FRAME_PREFIX_LEN);
    assert_non_null(payload);
    memcpy(payload, frame + VB_FRAME_PREFIX_LEN, len - VB_FRAME_PREFIX_LEN);
    vb_frame_free(frame, len);
    vb_msg m;
    assert_int_equal(vb_msg_decode(&m, payload, len - VB_FRAME_PREFIX_LEN, &err), 0);
    return m;
}

/* A question queued for a call that then timed out is not handed to it: its
 * person would be asked, and the answer sent, for a call already given up
 * (found in review). A call with its reply still takes what preceded it. */
static void test_failed_call_answers_no_queued_question(void **state)
{
    (void)state;
    vb_calls t;
    vb_calls_init(&t);
    vb_call a;
    vb_msg_header h = { VB_PROG_HOST, 2, VB_MSG_CALL, 0, VB_HOST_PROC_OPEN, 0, 7 };
    vb_error err;
    assert_int_equal(vb_calls_start(&t, &a, &h, NULL, &err), 0);
    vb_msg q = peer_msg(a.hdr, VB_MSG_CALLBACK);
    assert_int_equal(vb_calls_post_to_call(&t, a.hdr.serial, &q, &err), 1);
    vb_error why;
    vb_error_set(&why, VB_ERR_TIMEOUT, VB_DOM_RPC, "no answer");
    vb_calls_fail(&t, &a, &why);
    vb_msg got;
    assert_int_equal(vb_calls_wait(&t, &a, vb_calls_now_ms() + 1000, &got), VB_CALL_DONE);
    assert_int_equal(vb_calls_result(&t, &a, &got, &err), -1);
    assert_int_equal(err.code, VB_ERR_TIMEOUT);
    vb_calls_end(&t, &a); /* drops the question */

    /* control: with its REPLY in, what came before it still comes first */
    assert_int_equal(vb_calls_start(&t, &a, &h, NULL, &err), 0);
    q = peer_msg(a.hdr, VB_MSG_CALLBACK);
    assert_int_equal(vb_calls_post_to_call(&t, a.hdr.serial, &q, &err), 1);
    vb_msg r = peer_msg(a.hdr, VB_MSG_REPLY);
    assert_int_equal(vb_calls_post_reply(&t, &r), 1);
    assert_int_equal(vb_calls_wait(&t, &a, vb_calls_now_ms() + 1000, &got), VB_CALL_MESSAGE);
    vb_msg_clear(&got);
    assert_int_equal(vb_calls_wait(&t, &a, vb_calls_now_ms() + 1000, &got), VB_CALL_DONE);
    assert_int_equal(vb_calls_result(&t, &a, &got, &err), 0);
    vb_msg_clear(&got);
    vb_calls_end(&t, &a);
    vb_calls_destroy(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_matches_by_serial),
        cmocka_unit_test(test_failed_call_answers_no_queued_question),
        cmocka_unit_test(test_calls_in_flight_wait_only_for_their_own),
        cmocka_unit_test(test_question_for_a_conn_id_without_a_call_reaches_nobody),
        cmocka_unit_test(test_old_server_gets_one_driver_call_at_a_time),
    };
    return cmocka_run_group_tests_name("calls", tests, NULL, vb_ts_group_teardown);
}
