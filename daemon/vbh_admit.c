/* Who holds the anonymous slots: connections that have not authenticated
 * yet, at most max_anonymous_clients of them, at most max_anonymous_per_peer
 * from one peer group (IPv4 address, IPv6 /64, unix uid).
 *
 * Full slots do not lock newcomers out: a new connection takes the slot of
 * the most idle unauthenticated connection (one that never sent a frame
 * first, then the one silent longest) of its own group when that group is
 * at its cap, else of a group holding at least two more slots than its own.
 * So one peer cannot hold slots against others for longer than the others
 * take to connect, while its own reconnects only churn among its own
 * connections; a login in progress (it talks) outlives silent ones. */
#include "vbh.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vb_log.h"

static vbh_peer *peer_find(vbh_server *srv, const char *group)
{
    for (vbh_peer *p = srv->peers; p; p = p->next)
        if (strcmp(p->group, group) == 0)
            return p;
    return NULL;
}

static vbh_peer *peer_take(vbh_server *srv, const char *group)
{
    vbh_peer *p = peer_find(srv, group);
    if (!p && (p = calloc(1, sizeof *p))) {
        snprintf(p->group, sizeof p->group, "%s", group);
        p->next = srv->peers;
        srv->peers = p;
    }
    if (p)
        p->nanon++;
    return p;
}

static void peer_give_back(vbh_server *srv, vbh_peer *p)
{
    if (!p || --p->nanon > 0)
        return;
    for (vbh_peer **pp = &srv->peers; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    free(p);
}

void vbh_admit_set_anonymous(vbh_client *c, int anonymous)
{
    vbh_server *srv = c->srv;
    if (anonymous == c->counted_anonymous)
        return;
    c->counted_anonymous = anonymous;
    if (anonymous) {
        srv->nanonymous++;
        c->peer_rec = peer_take(srv, c->peer_group);
        c->anon_prev = NULL;
        c->anon_next = srv->anonymous;
        if (srv->anonymous)
            srv->anonymous->anon_prev = c;
        srv->anonymous = c;
        return;
    }
    srv->nanonymous--;
    peer_give_back(srv, c->peer_rec);
    c->peer_rec = NULL;
    if (c->anon_prev)
        c->anon_prev->anon_next = c->anon_next;
    else
        srv->anonymous = c->anon_next;
    if (c->anon_next)
        c->anon_next->anon_prev = c->anon_prev;
    c->anon_next = c->anon_prev = NULL;
}

/* a before b as the one to evict: silent from the start first, then the
 * longest silent (last_rx_ms is the connect time until a frame came) */
static int more_idle(const vbh_client *a, const vbh_client *b)
{
    if (!b)
        return 1;
    if (a->spoke != b->spoke)
        return !a->spoke;
    return a->last_rx_ms < b->last_rx_ms;
}

static vbh_client *pick_victim(vbh_server *srv, const vbh_peer *own)
{
    unsigned mine = own ? own->nanon : 0;
    int at_cap = mine >= srv->cfg->max_anonymous_per_peer;
    vbh_client *victim = NULL;
    for (vbh_client *c = srv->anonymous; c; c = c->anon_next) {
        int eligible = at_cap ? c->peer_rec == own : c->peer_rec && c->peer_rec->nanon > mine + 1;
        if (eligible && more_idle(c, victim))
            victim = c;
    }
    return victim;
}

static void evict(vbh_client *victim, const char *peer)
{
    vb_log(VB_LOG_INFO, "client %s: unauthenticated and %s for %llu ms; closed to make room for %s",
           victim->peer, victim->spoke ? "silent" : "never sent a frame",
           (unsigned long long)(vb_now_ms() - victim->last_rx_ms), peer);
    vbh_admit_set_anonymous(victim, 0); /* the newcomer takes its slot now */
    vb_msg_header hdr = { VB_PROG_HOST, VB_PROG_HOST_VERSION, VB_MSG_REPLY, 0, 0, VB_STATUS_ERROR, 0 };
    vb_error e;
    vb_error_set(&e, VB_ERR_TOO_MANY_CLIENTS, VB_DOM_DAEMON,
                 "too many unauthenticated clients; this idle connection made room for a newer "
                 "one");
    uint8_t *frame;
    size_t len;
    if (vb_enc_error_reply(&hdr, VB_MSG_REPLY, &e, &frame, &len, NULL) == 0)
        vb_stream_send(victim->stream, frame, len);
    vb_stream_close_after_flush(victim->stream);
}

int vbh_admit_anonymous(vbh_server *srv, const char *group, const char *peer)
{
    const vbh_config *cfg = srv->cfg;
    const vbh_peer *own = peer_find(srv, group);
    if ((own ? own->nanon : 0) < cfg->max_anonymous_per_peer &&
        srv->nanonymous < cfg->max_anonymous_clients)
        return 0;
    vbh_client *victim = pick_victim(srv, own);
    if (!victim)
        return -1;
    evict(victim, peer);
    return 0;
}
