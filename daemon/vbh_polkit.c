/* AUTH_POLKIT: a local peer is let in when polkitd authorises its process
 * for org.vbroker.vbhostd.manage, or, failing that, for
 * org.vbroker.vbhostd.monitor (then it may only open read-only).
 *
 * The D-Bus call blocks, so it runs on a short-lived thread of its own
 * (one per client at most: the client is not read while it runs; at most
 * VBH_POLKIT_MAX_PENDING at once), bounded by what is left of the client's
 * auth_timeout. The verdict comes back to the loop through
 * srv->polkit_done and is answered there like any auth call (delays,
 * attempts per connection: vbh_dispatch_resume). Nothing is asked of
 * anyone: a rule that wants an administrator's password is refused with
 * CRED_REQUIRED. */
#include "vbh.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vb_log.h"
#include "vb_polkit.h"

/* leave this much of the auth deadline to send the answer before the
 * auth timer closes the connection */
#define POLKIT_ANSWER_MARGIN_MS 250u
/* checks in flight at once: each is a thread waiting on polkitd. Clients
 * allowed by peer_allowed_users hold no anonymous slot, so this, not
 * max_anonymous_clients, is what bounds them */
#define VBH_POLKIT_MAX_PENDING 64u

typedef struct polkit_job {
    vbh_client *c;              /* a reference, dropped on the loop */
    vb_msg msg;                 /* the AUTH_POLKIT call, answered later */
    vb_polkit_subject subject;
    unsigned timeout_ms;
    int rc;                     /* the check: 0 with verdict / access, or -1 with err */
    int verdict;
    const char *action;         /* the action the verdict is about */
    vb_error err;
} polkit_job;

/* manage first; monitor (read-only) only when manage is not granted */
static void *check_thread(void *arg)
{
    polkit_job *job = arg;
    uint64_t start = vb_now_ms();
    job->action = VBH_POLKIT_ACTION_MANAGE;
    job->rc = vb_polkit_check(&job->subject, job->action, job->timeout_ms, &job->verdict, &job->err);
    uint64_t used = vb_now_ms() - start;
    if (job->rc == 0 && job->verdict != VB_POLKIT_YES && used < job->timeout_ms) {
        polkit_job monitor = *job;
        monitor.action = VBH_POLKIT_ACTION_MONITOR;
        monitor.rc = vb_polkit_check(&monitor.subject, monitor.action,
                                     job->timeout_ms - (unsigned)used, &monitor.verdict,
                                     &monitor.err);
        if (monitor.rc == 0 && monitor.verdict == VB_POLKIT_YES) {
            job->action = monitor.action;
            job->verdict = VB_POLKIT_YES;
        }
    }
    vb_offloop_post(job->c->srv->polkit_done, job, NULL, 0, 1);
    return NULL;
}

static void job_free(polkit_job *job)
{
    vb_msg_clear(&job->msg);
    vbh_client_unref(job->c);
    free(job);
}

/* Loop thread: a check finished. */
static void deliver(void *target, uint8_t *frame, size_t len, int job_done)
{
    (void)frame;
    (void)len;
    (void)job_done;
    polkit_job *job = target;
    vbh_client *c = job->c;
    c->srv->npolkit_pending--;
    if (!c->gone) {
        c->polkit_job = job;
        vbh_dispatch_resume(c, &job->msg, vbh_auth_polkit_finish);
        c->polkit_job = NULL;
    }
    job_free(job);
}

int vbh_polkit_start(vbh_server *srv, vb_error *err)
{
    srv->polkit_done = vb_offloop_new(srv->loop, deliver, err);
    return srv->polkit_done ? 0 : -1;
}

static int may_ask(vbh_client *c, vb_error *err)
{
    if (c->authenticated && !vbh_auth_list_has(c->lis->auth, VBH_AUTH_NONE))
        return vb_error_set(err, VB_ERR_OPERATION_INVALID, VB_DOM_AUTH,
                            "this connection is already authenticated");
    if (!c->lis->is_unix || !vbh_auth_list_has(c->lis->auth, VBH_AUTH_POLKIT)) {
        char types[64];
        vbh_auth_list_format(c->lis->auth, types, sizeof types);
        return vb_error_set(err, VB_ERR_AUTH_UNAVAILABLE, VB_DOM_AUTH,
                            "this listener does not accept polkit authentication (it accepts %s)",
                            types);
    }
    if (c->pid <= 0)
        return vb_error_set(err, VB_ERR_AUTH_UNAVAILABLE, VB_DOM_AUTH,
                            "polkit authentication needs the connecting process, and its pid or "
                            "start time could not be read when it connected");
    return 0;
}

int vbh_auth_polkit_begin(vbh_client *c, vb_msg *msg, vb_error *err)
{
    if (may_ask(c, err) < 0)
        return -1;
    uint64_t now = vb_now_ms();
    uint64_t left = c->auth_deadline_ms > now ? c->auth_deadline_ms - now : 0;
    if (left <= POLKIT_ANSWER_MARGIN_MS)
        return vb_error_set(err, VB_ERR_TIMEOUT, VB_DOM_AUTH,
                            "too little of auth_timeout is left to ask polkit");
    if (c->srv->npolkit_pending >= VBH_POLKIT_MAX_PENDING)
        return vb_error_set(err, VB_ERR_AUTH_UNAVAILABLE, VB_DOM_AUTH,
                            "%u polkit checks are already waiting for polkitd; try again later",
                            VBH_POLKIT_MAX_PENDING);
    polkit_job *job = calloc(1, sizeof *job);
    if (!job)
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_DAEMON, "out of memory");
    job->c = c;
    job->subject = (vb_polkit_subject){ c->pid, c->start_time, c->uid };
    job->timeout_ms = (unsigned)(left - POLKIT_ANSWER_MARGIN_MS);
    vbh_client_ref(c);
    if (vb_offloop_start_worker(check_thread, job, VB_DOM_DAEMON, err) < 0) {
        vbh_client_unref(c);
        free(job);
        return -1;
    }
    c->srv->npolkit_pending++;
    job->msg = *msg; /* moved; the thread never reads it */
    memset(msg, 0, sizeof *msg);
    vb_stream_pause(c->stream, 1); /* one question at a time; nothing else meanwhile */
    vb_log(VB_LOG_DEBUG, "client %s: asking polkit about pid %ld (uid %u)", c->peer,
           (long)c->pid, (unsigned)c->uid);
    return 0;
}

static void identity_of(uid_t uid, char *out, size_t len)
{
    struct passwd *pw = getpwuid(uid);
    if (pw)
        snprintf(out, len, "%s", pw->pw_name);
    else
        snprintf(out, len, "uid:%u", (unsigned)uid);
}

int vbh_auth_polkit_finish(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err)
{
    (void)args;
    polkit_job *job = c->polkit_job;
    if (!job) /* only ever run by deliver */
        return vb_error_set(err, VB_ERR_INTERNAL, VB_DOM_DAEMON, "no polkit check to answer");
    char identity[128];
    identity_of(c->uid, identity, sizeof identity);
    if (job->rc < 0) {
        vb_log(VB_LOG_WARN, "client %s (%s): %s", c->peer, identity, job->err.message);
        vb_error_copy(err, &job->err);
        return -1;
    }
    if (job->verdict != VB_POLKIT_YES) {
        vb_log(VB_LOG_WARN, "client %s: polkit %s %s to %s (pid %ld)", c->peer,
               job->verdict == VB_POLKIT_CHALLENGE ? "wants an administrator's password for"
                                                   : "denies",
               job->action, identity, (long)c->pid);
        /* credentials would do, and nobody can be asked for them (scripts
         * exit 77 on this): not a failed guess, so not delayed or counted */
        if (job->verdict == VB_POLKIT_CHALLENGE)
            return vb_error_set(err, VB_ERR_CRED_REQUIRED, VB_DOM_AUTH,
                                "polkit requires authentication (auth_admin or auth_self) for %s, "
                                "and vbhostd cannot ask for it: an administrator must grant %s "
                                "to %s in a polkit rule (/etc/polkit-1/rules.d)",
                                job->action, job->action, identity);
        return vb_error_set(err, VB_ERR_AUTH_FAILED, VB_DOM_AUTH,
                            "polkit denied %s to %s: an administrator must grant it in a polkit "
                            "rule (/etc/polkit-1/rules.d)", job->action, identity);
    }
    int read_only = strcmp(job->action, VBH_POLKIT_ACTION_MONITOR) == 0;
    c->polkit_read_only = read_only;
    vbh_client_mark_authenticated(c, "polkit", identity);
    vb_log(VB_LOG_INFO, "client %s authenticated as '%s' (polkit %s)", c->peer, identity,
           job->action);
    vb_enc_array(reply, 2);
    vb_enc_str(reply, identity);
    vb_enc_str(reply, read_only ? "monitor" : "manage");
    return 0;
}
