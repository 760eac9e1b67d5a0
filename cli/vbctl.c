/*
 * vbctl — the command line of vbroker, for people and scripts.
 *
 *   vbctl [-c URI] [--non-interactive] [-r|--readonly] COMMAND [ARGS]
 *
 * Everything goes through libvbroker (vbroker.h): vbctl holds no driver,
 * SASL or socket code. It prompts only through the library's default
 * terminal callback (vb_auth_default), and never sees a secret itself.
 *
 * Exit codes (sysexits.h values where one fits):
 *   0   success
 *   1   the operation failed (host, driver, authentication, ...)
 *   2   usage error (unknown option or command, missing argument, no URI)
 *   69  the broker is unavailable (EX_UNAVAILABLE): the library could not
 *       reach vbrokerd, or lost it, in its own (client) error domain
 *   77  credentials are needed but none could be asked (EX_NOPERM):
 *       CRED_REQUIRED (no callback, e.g. --non-interactive) or
 *       AUTH_CANCELLED (the prompt was cancelled, e.g. end of stdin);
 *       for those two causes the message is one line saying what to run
 */
#include "vb_paths.h"
#include "vbroker.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EXIT_OK          0
#define EXIT_ERROR       1
#define EXIT_USAGE       2
#define EXIT_UNAVAILABLE 69   /* EX_UNAVAILABLE */
#define EXIT_NOPERM      77   /* EX_NOPERM */

typedef struct vbctl {
    const char *uri;
    int non_interactive;
    int readonly;
    char *service;          /* last service the callback was asked about */
} vbctl;

/* ---- output helpers ---------------------------------------------------------- */

/* Print text that may come from a peer (error messages, names): control
 * characters become \xNN so a hostile host cannot drive the terminal. */
static void put_safe(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\x%02x", *p);
        else if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
            fprintf(f, "\\x%02x", p[1]);
            p++;
        } else
            fputc(*p, f);
    }
}

/* Display width of a (UTF-8) string, counting code points. */
static size_t text_width(const char *s)
{
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xc0) != 0x80)
            w += (*p < 0x20 || *p == 0x7f) ? 4 : 1;   /* \xNN */
    return w;
}

static void put_padded(FILE *f, const char *s, size_t width)
{
    put_safe(f, s);
    for (size_t w = text_width(s); w < width; w++)
        fputc(' ', f);
}

static void usage(FILE *f)
{
    fputs("Usage: vbctl [-c URI] [--non-interactive] [-r|--readonly] COMMAND [ARGS]\n"
          "\n"
          "Options:\n"
          "  -c, --connect URI     the host to talk to (default: $VBROKER_DEFAULT_URI)\n"
          "      --non-interactive never prompt; a login that needs input fails (exit 77)\n"
          "  -r, --readonly        open the connection read-only\n"
          "  -h, --help            show this help\n"
          "  -V, --version         show the version\n"
          "      --ttl SECONDS     login: ask for a token valid this long (default: the host's)\n"
          "\n"
          "Commands:\n"
          "  hostname              print the host's name\n"
          "  list                  list the domains (Id, Name, State, Memory, vCPUs)\n"
          "  start NAME            start a domain\n"
          "  shutdown NAME         ask a domain to shut down\n"
          "  status                show the broker: pid, uptime, clients, open connections\n"
          "                        and cached logins (never a secret)\n"
          "  login [URI]           log in now and keep a login token, so later commands\n"
          "                        and scripts need no password until it expires\n"
          "  logout [URI | --all]  revoke the cached login on its host and erase it here\n"
          "  help                  show this help\n"
          "\n"
          "Exit status: 0 ok, 1 error, 2 usage, 69 broker unavailable,\n"
          "77 credentials needed but none could be asked.\n"
          "See vbctl(1).\n",
          f);
}

/* "vbctl: BEFORE[ARG][AFTER]; run 'vbctl --help'" and the usage exit code. */
static int usage_error(const char *before, const char *arg, const char *after)
{
    fputs("vbctl: ", stderr);
    fputs(before, stderr);
    if (arg)
        put_safe(stderr, arg);
    if (after)
        fputs(after, stderr);
    fputs("; run 'vbctl --help'\n", stderr);
    return EXIT_USAGE;
}

/* Where the broker reads stored logins, for hints (never opened here). */
static void print_auth_conf_path(FILE *f)
{
    const char *env = getenv("VBROKER_AUTH_FILE");
    if (env && *env) {
        put_safe(f, env);
        return;
    }
    char *path = vb_path_config_file("auth.conf"); /* the broker's rule (vb_paths.h) */
    if (path)
        put_safe(f, path);
    else /* no home: say where it would be */
        fputs("$XDG_CONFIG_HOME/vbroker/auth.conf", f);
    free(path);
}

/* ---- errors → messages and exit codes ------------------------------------------ */

static int is_broker_unavailable(const vb_error *err)
{
    return err->domain == VBROKER_DOM_CLIENT &&
           (err->code == VBROKER_ERR_NO_CONNECT || err->code == VBROKER_ERR_PEER_CLOSED);
}

static int autostart_is_off(void)
{
    const char *no = getenv("VBROKER_NO_AUTOSTART");
    return no && strcmp(no, "1") == 0;
}

/* The broker's CRED_REQUIRED message ends "... cannot be asked (no callback or
 * --non-interactive); ADVICE": ADVICE, or NULL for another CRED_REQUIRED
 * text (a host's own reason, such as polkit wanting an administrator). */
#define BROKER_CANNOT_ASK "--non-interactive); "
static const char *broker_advice(const vb_error *err)
{
    const char *tail = strstr(err->message, BROKER_CANNOT_ASK);
    return tail ? tail + strlen(BROKER_CANNOT_ASK) : NULL;
}

/* More than the broker's default advice: "auth.conf ignored: ...; chmod 600
 * PATH", an auth file it does not read. */
static int advice_is_specific(const char *advice)
{
    return advice && *advice && strncmp(advice, "run `vbctl login`", 17) != 0;
}

/* A login was needed and vbctl could not ask for it: --non-interactive, or
 * stdin (not a terminal) ended first. One line, plain words: what happened
 * and what to run. 0 when this is not such a case. */
static int report_no_login(const vbctl *v, const vb_error *err)
{
    int cred = err->code == VBROKER_ERR_CRED_REQUIRED || err->code == VBROKER_ERR_AUTH_CANCELLED;
    int no_stdin = err->code == VBROKER_ERR_AUTH_CANCELLED && !isatty(STDIN_FILENO);
    if (!cred || !(v->non_interactive || no_stdin))
        return 0;
    const char *advice = err->code == VBROKER_ERR_CRED_REQUIRED ? broker_advice(err) : NULL;
    fputs("vbctl: ", stderr);
    if (err->code == VBROKER_ERR_CRED_REQUIRED && !advice) {
        put_safe(stderr, err->message); /* the host's reason says what to do */
        fputc('\n', stderr);
        return EXIT_NOPERM;
    }
    put_safe(stderr, v->uri);
    if (!v->non_interactive) {
        fputs(" needs a login and stdin ended before it was answered; pipe the answers in "
              "one per line, or run `vbctl login ", stderr);
        put_safe(stderr, v->uri);
        fputs("` in a terminal first\n", stderr);
        return EXIT_NOPERM;
    }
    fputs(" needs a login and --non-interactive forbids asking; ", stderr);
    if (advice_is_specific(advice)) {
        put_safe(stderr, advice);
        fputc('\n', stderr);
        return EXIT_NOPERM;
    }
    if (v->uri && strncmp(v->uri, "libvirt:", 8) == 0) {
        /* libvirtd issues no tokens: what a script can reuse is the answer the
         * broker holds in memory after an interactive open */
        fputs("open it once in a terminal (`vbctl -c URI list`) so the broker holds the "
              "answer, or put it in auth.conf (", stderr);
    } else {
        fputs("run `vbctl login ", stderr);
        put_safe(stderr, v->uri);
        fputs("` in a terminal first, or put the login in auth.conf (", stderr);
    }
    print_auth_conf_path(stderr);
    fputs(")\n", stderr);
    return EXIT_NOPERM;
}

/* Print "vbctl: WHAT: MESSAGE" and a line saying what to do next; return
 * the exit code for err. */
static int report(vbctl *v, const char *what, const vb_error *err)
{
    int no_login = report_no_login(v, err);
    if (no_login)
        return no_login;
    fputs("vbctl: ", stderr);
    if (what) {
        put_safe(stderr, what);
        fputs(": ", stderr);
    }
    put_safe(stderr, err->message[0] ? err->message : "unknown error");
    fputc('\n', stderr);

    if (is_broker_unavailable(err)) {
        fputs("vbctl: is vbrokerd running? it starts automatically unless "
              "VBROKER_NO_AUTOSTART=1; socket: ", stderr);
        put_safe(stderr, vb_broker_socket_path());
        fputc('\n', stderr);
        if (autostart_is_off())
            fputs("vbctl: autostart is off here: start the broker by hand (vbrokerd), "
                  "or unset VBROKER_NO_AUTOSTART\n", stderr);
        return EXIT_UNAVAILABLE;
    }

    const char *service = v->service ? v->service : v->uri;
    switch (err->code) {
    case VBROKER_ERR_CRED_REQUIRED:
    case VBROKER_ERR_AUTH_CANCELLED:
        fputs("vbctl: credentials are needed for ", stderr);
        put_safe(stderr, service ? service : "this host");
        fputs(" and none could be asked; answer the prompts in a terminal, or add them to "
              "auth.conf (", stderr); /* --non-interactive, end of stdin: report_no_login */
        print_auth_conf_path(stderr);
        fputs(")\n", stderr);
        return EXIT_NOPERM;
    case VBROKER_ERR_AUTH_FAILED:
        fputs("vbctl: check the user name and password (or the stored login in auth.conf)\n",
              stderr);
        break;
    case VBROKER_ERR_AUTH_UNAVAILABLE:
    case VBROKER_ERR_AUTH_REQUIRED:
        fputs("vbctl: the host and this client share no usable login method; "
              "choose one with ?auth= in the URI (sasl, token, peer, none)\n", stderr);
        break;
    case VBROKER_ERR_NO_CONNECT:
        /* 9: the error domain "xenapi" (docs/protocol.md): the XenAPI host
         * is the hop that failed, not a vbhostd */
        if (err->domain == 9)
            fputs("vbctl: check the URI and that the XenAPI host named above is up and "
                  "listens on that port\n", stderr);
        else
            fputs("vbctl: check the URI and that vbhostd runs on that host\n", stderr);
        break;
    case VBROKER_ERR_NO_DOMAIN:
        fputs("vbctl: run 'vbctl list' to see the domains\n", stderr);
        break;
    case VBROKER_ERR_READ_ONLY:
        fputs("vbctl: the connection is read-only; run without -r/--readonly\n", stderr);
        break;
    case VBROKER_ERR_NO_DRIVER:
    case VBROKER_ERR_INVALID_ARG:
        fputs("vbctl: check the URI: driver[+transport]://[user@][host][:port]/[path][?params]\n",
              stderr);
        break;
    default:
        break;
    }
    return EXIT_ERROR;
}

/* ---- the prompt: the library's terminal callback, remembering the service --- */

static int remember_and_ask(const vb_auth_request *req, vb_credential *creds,
                            unsigned int ncreds, void *cbdata)
{
    vbctl *v = cbdata;
    if (req && req->service) {
        char *copy = strdup(req->service);
        if (copy) {
            free(v->service);
            v->service = copy;
        }
    }
    return vb_auth_default->cb(req, creds, ncreds, vb_auth_default->cbdata);
}

/* The vb_auth every command that may log in passes: the terminal callback
 * (remembering the service it asked for) in *interactive, or with
 * --non-interactive none at all, so a needed answer fails (exit 77). */
static const vb_auth *how_to_ask(vbctl *v, vb_auth *interactive)
{
    static const vb_auth never_prompt = { NULL, 0, NULL, NULL };
    if (v->non_interactive)
        return &never_prompt;
    *interactive = (vb_auth){
        .credtypes = vb_auth_default->credtypes,
        .ncredtypes = vb_auth_default->ncredtypes,
        .cb = remember_and_ask,
        .cbdata = v,
    };
    return interactive;
}

static vb_conn *open_conn(vbctl *v, int *exit_code)
{
    vb_auth interactive;
    vb_error err;
    memset(&err, 0, sizeof err);
    vb_conn *c = vb_open_auth(v->uri, how_to_ask(v, &interactive),
                              v->readonly ? VB_OPEN_READ_ONLY : 0, &err);
    if (!c) {
        char what[600];
        snprintf(what, sizeof what, "cannot open %s", v->uri);
        *exit_code = report(v, what, &err);
    }
    return c;
}

static int close_conn(vb_conn *c, int rc)
{
    if (vb_close(c) < 0 && rc == EXIT_OK) {
        fputs("vbctl: the broker reported an error closing the connection\n", stderr);
        return EXIT_ERROR;
    }
    return rc;
}

/* ---- commands ------------------------------------------------------------------ */

static int cmd_hostname(vbctl *v)
{
    int rc = EXIT_OK;
    vb_conn *c = open_conn(v, &rc);
    if (!c)
        return rc;
    char *name = NULL;
    vb_error err;
    memset(&err, 0, sizeof err);
    if (vb_get_hostname(c, &name, &err) < 0) {
        rc = report(v, "cannot get the host name", &err);
    } else {
        put_safe(stdout, name);
        fputc('\n', stdout);
    }
    free(name);
    return close_conn(c, rc);
}

/* running domains first by id, then inactive ones by name (as virsh list) */
static int domain_order(const void *a, const void *b)
{
    const vb_domain *x = a, *y = b;
    int xr = x->id >= 0, yr = y->id >= 0;
    if (xr != yr)
        return xr ? -1 : 1;
    if (xr && x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return strcmp(x->name ? x->name : "", y->name ? y->name : "");
}

static void format_memory(char *buf, size_t len, uint64_t kib)
{
    if (kib < 1024)
        snprintf(buf, len, "%" PRIu64 " KiB", kib);
    else if (kib < 1024u * 1024u)
        snprintf(buf, len, kib % 1024 ? "%.1f MiB" : "%.0f MiB", (double)kib / 1024.0);
    else
        snprintf(buf, len, kib % (1024u * 1024u) ? "%.1f GiB" : "%.0f GiB",
                 (double)kib / (1024.0 * 1024.0));
}

static int cmd_list(vbctl *v)
{
    int rc = EXIT_OK;
    vb_conn *c = open_conn(v, &rc);
    if (!c)
        return rc;
    vb_domain *doms = NULL;
    size_t n = 0;
    vb_error err;
    memset(&err, 0, sizeof err);
    if (vb_list_domains(c, &doms, &n, &err) < 0)
        return close_conn(c, report(v, "cannot list the domains", &err));

    if (n > 1)
        qsort(doms, n, sizeof *doms, domain_order);

    size_t wid = strlen("Id"), wname = strlen("Name"), wstate = strlen("State"),
           wmem = strlen("Memory");
    char buf[64];
    for (size_t i = 0; i < n; i++) {
        int len = doms[i].id >= 0 ? snprintf(buf, sizeof buf, "%" PRId32, doms[i].id) : 1;
        if ((size_t)len > wid)
            wid = (size_t)len;
        size_t w = text_width(doms[i].name ? doms[i].name : "");
        if (w > wname)
            wname = w;
        w = strlen(vb_domain_state_string(doms[i].state));
        if (w > wstate)
            wstate = w;
        format_memory(buf, sizeof buf, doms[i].memory_kib);
        if (strlen(buf) > wmem)
            wmem = strlen(buf);
    }

    printf(" %-*s   %-*s   %-*s   %*s   %s\n", (int)wid, "Id", (int)wname, "Name",
           (int)wstate, "State", (int)wmem, "Memory", "vCPUs");
    size_t rule = 1 + wid + 3 + wname + 3 + wstate + 3 + wmem + 3 + strlen("vCPUs") + 1;
    for (size_t i = 0; i < rule; i++)
        putchar('-');
    putchar('\n');
    for (size_t i = 0; i < n; i++) {
        if (doms[i].id >= 0)
            snprintf(buf, sizeof buf, "%" PRId32, doms[i].id);
        else
            snprintf(buf, sizeof buf, "-");
        printf(" %-*s   ", (int)wid, buf);
        put_padded(stdout, doms[i].name ? doms[i].name : "", wname);
        printf("   %-*s   ", (int)wstate, vb_domain_state_string(doms[i].state));
        format_memory(buf, sizeof buf, doms[i].memory_kib);
        printf("%*s   %u\n", (int)wmem, buf, doms[i].vcpus);
    }
    vb_domains_free(doms, n);
    return close_conn(c, rc);
}

static int cmd_domain_op(vbctl *v, const char *name, int start)
{
    int rc = EXIT_OK;
    vb_conn *c = open_conn(v, &rc);
    if (!c)
        return rc;
    vb_error err;
    memset(&err, 0, sizeof err);
    int r = start ? vb_domain_start(c, name, &err) : vb_domain_shutdown(c, name, &err);
    if (r < 0) {
        char what[1200];
        snprintf(what, sizeof what, "cannot %s domain %s", start ? "start" : "shut down", name);
        rc = report(v, what, &err);
    } else {
        fputs("Domain ", stdout);
        put_safe(stdout, name);
        fputs(start ? " started\n" : " is being shut down\n", stdout);
    }
    return close_conn(c, rc);
}

static void format_uptime(char *buf, size_t len, uint64_t s)
{
    uint64_t d = s / 86400, h = (s / 3600) % 24, m = (s / 60) % 60, sec = s % 60;
    if (d > 0)
        snprintf(buf, len, "%" PRIu64 "d %02" PRIu64 "h %02" PRIu64 "m %02" PRIu64 "s", d, h, m, sec);
    else if (h > 0)
        snprintf(buf, len, "%" PRIu64 "h %02" PRIu64 "m %02" PRIu64 "s", h, m, sec);
    else if (m > 0)
        snprintf(buf, len, "%" PRIu64 "m %02" PRIu64 "s", m, sec);
    else
        snprintf(buf, len, "%" PRIu64 "s", sec);
}

static void format_time(char *buf, size_t len, int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    localtime_r(&tt, &tm);
    strftime(buf, len, "%Y-%m-%d %H:%M:%S %Z", &tm);
}

static void print_logins(const vb_broker_status *st)
{
    printf("Logins:        %zu\n", st->nlogins);
    for (size_t i = 0; i < st->nlogins; i++) {
        const vb_cached_login_info *l = &st->logins[i];
        char until[64];
        format_time(until, sizeof until, l->expires);
        fputs(" ", stdout);
        put_safe(stdout, l->uri);
        fputs("\n    identity ", stdout);
        put_safe(stdout, l->identity);
        fputs(", auth ", stdout);
        put_safe(stdout, l->auth_type);
        printf(", until %s, server ", until);
        put_safe(stdout, l->server_id);
        putchar('\n');
    }
}

/* The broker's logged-in connections to hosts (a logout closes them). */
static void print_host_conns(const vb_broker_status *st)
{
    printf("Host connections: %zu\n", st->nhosts);
    for (size_t i = 0; i < st->nhosts; i++) {
        const vb_host_conn_info *h = &st->hosts[i];
        fputs(" ", stdout);
        put_safe(stdout, h->endpoint);
        fputs("\n    auth ", stdout);
        put_safe(stdout, h->auth_type && *h->auth_type ? h->auth_type : "-");
        printf(", %u open(s), idle %" PRIu64 " s, server ", h->opens, h->idle_ms / 1000);
        put_safe(stdout, h->server_id && *h->server_id ? h->server_id : "-");
        putchar('\n');
    }
}

static int cmd_status(vbctl *v)
{
    vb_broker_status st;
    vb_error err;
    memset(&err, 0, sizeof err);
    if (vb_broker_get_status(&st, &err) < 0) {
        if (is_broker_unavailable(&err)) {
            fputs("vbctl: vbrokerd is not running (socket: ", stderr);
            put_safe(stderr, vb_broker_socket_path());
            if (autostart_is_off())
                fputs(")\nvbctl: autostart is off (VBROKER_NO_AUTOSTART=1): "
                      "start it by hand: vbrokerd\n", stderr);
            else
                fputs(")\nvbctl: it starts automatically with the next command that opens "
                      "a connection (e.g. vbctl -c URI list), or start it by hand: vbrokerd\n",
                      stderr);
            return EXIT_UNAVAILABLE;
        }
        return report(v, "cannot get the broker's status", &err);
    }
    char up[64];
    format_uptime(up, sizeof up, st.uptime_s);
    printf("Broker pid:    %" PRId64 "\n", st.pid);
    printf("Uptime:        %s\n", up);
    printf("Clients:       %u\n", st.clients);
    fputs("Socket:        ", stdout);
    put_safe(stdout, vb_broker_socket_path());
    printf("\nConnections:   %zu\n", st.nupstreams);
    if (st.nupstreams > 0) {
        size_t wuri = strlen("URI"), wauth = strlen("Auth"), wmech = strlen("Mechanism");
        for (size_t i = 0; i < st.nupstreams; i++) {
            const vb_upstream_info *u = &st.upstreams[i];
            size_t w = text_width(u->uri ? u->uri : "-");
            if (w > wuri)
                wuri = w;
            w = text_width(u->auth_type ? u->auth_type : "-");
            if (w > wauth)
                wauth = w;
            w = text_width(u->sasl_mech ? u->sasl_mech : "-");
            if (w > wmech)
                wmech = w;
        }
        putchar('\n');
        printf(" %-*s   %-*s   %-*s   %4s   %s\n", (int)wuri, "URI", (int)wauth, "Auth",
               (int)wmech, "Mechanism", "SSF", "Server ID");
        for (size_t i = 0; i < st.nupstreams; i++) {
            const vb_upstream_info *u = &st.upstreams[i];
            putchar(' ');
            put_padded(stdout, u->uri ? u->uri : "-", wuri);
            fputs("   ", stdout);
            put_padded(stdout, u->auth_type && *u->auth_type ? u->auth_type : "-", wauth);
            fputs("   ", stdout);
            put_padded(stdout, u->sasl_mech && *u->sasl_mech ? u->sasl_mech : "-", wmech);
            printf("   %4u   ", u->ssf);
            put_safe(stdout, u->server_id && *u->server_id ? u->server_id : "-");
            putchar('\n');
        }
    }
    print_logins(&st);
    print_host_conns(&st);
    vb_broker_status_clear(&st);
    return EXIT_OK;
}

/* A nested URI's chain: what the broker keeps for each hop, for how long. */
static void print_login_hops(const vb_login_info *info)
{
    for (size_t i = 0; i < info->nhops; i++) {
        const vb_login_hop *h = &info->hops[i];
        fputs("  ", stdout);
        put_safe(stdout, h->hop);
        fputs(":\n    ", stdout);
        put_safe(stdout, h->kept);
        if (h->until) {
            char until[64];
            format_time(until, sizeof until, h->until);
            printf("; until %s at the latest", until);
        }
        putchar('\n');
    }
}

static int cmd_login(vbctl *v, uint64_t ttl)
{
    vb_auth interactive;
    vb_login_info info;
    vb_error err;
    memset(&err, 0, sizeof err);
    if (vb_login_chain(v->uri, how_to_ask(v, &interactive), ttl, &info,
                       &err) < 0) {
        char what[600];
        snprintf(what, sizeof what, "cannot log in to %s", v->uri);
        return report(v, what, &err);
    }
    char until[64];
    format_time(until, sizeof until, info.expires);
    fputs("Logged in to ", stdout);
    put_safe(stdout, v->uri);
    fputs(" as ", stdout);
    put_safe(stdout, info.identity);
    printf(" until %s\n", until);
    print_login_hops(&info);
    vb_login_info_clear(&info);
    return EXIT_OK;
}

static int cmd_logout(vbctl *v, const char *uri)
{
    vb_logout_result *res = NULL;
    size_t n = 0;
    vb_error err;
    memset(&err, 0, sizeof err);
    if (vb_logout(uri, &res, &n, &err) < 0)
        return report(v, "cannot log out", &err);
    if (n == 0) {
        fputs("vbctl: no cached login", stderr);
        if (uri) {
            fputs(" for ", stderr);
            put_safe(stderr, uri);
        }
        /* the broker still forgot what it held in memory for it (a nested
         * URI's hops, a password-only login), and closed nothing else */
        fputs(uri ? " (see vbctl status); passwords held in memory for it and the hosts behind "
                    "it are forgotten\n"
                  : " (see vbctl status)\n",
              stderr);
        return uri ? EXIT_ERROR : EXIT_OK;
    }
    for (size_t i = 0; i < n; i++) {
        fputs("Logged out of ", stdout);
        put_safe(stdout, res[i].uri);
        fputs(" (", stdout);
        put_safe(stdout, res[i].identity);
        fputs("): ", stdout);
        put_safe(stdout, res[i].note);
        putchar('\n');
    }
    vb_logout_results_free(res, n);
    return EXIT_OK;
}

/* ---- main ------------------------------------------------------------------------- */

static int finish(int rc)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        if (errno != EPIPE)
            fprintf(stderr, "vbctl: cannot write the output: %s\n", strerror(errno));
        return rc == EXIT_OK ? EXIT_ERROR : rc;
    }
    return rc;
}

int main(int argc, char **argv)
{
    enum { OPT_NON_INTERACTIVE = 256, OPT_TTL, OPT_ALL };
    static const struct option longopts[] = {
        { "connect",         required_argument, NULL, 'c' },
        { "non-interactive", no_argument,       NULL, OPT_NON_INTERACTIVE },
        { "readonly",        no_argument,       NULL, 'r' },
        { "help",            no_argument,       NULL, 'h' },
        { "version",         no_argument,       NULL, 'V' },
        { "ttl",             required_argument, NULL, OPT_TTL },
        { "all",             no_argument,       NULL, OPT_ALL },
        { NULL, 0, NULL, 0 },
    };
    vbctl v;
    memset(&v, 0, sizeof v);
    uint64_t ttl = 0;
    int all = 0;

    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "+:c:rhV", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            v.uri = optarg;
            break;
        case OPT_NON_INTERACTIVE:
            v.non_interactive = 1;
            /* for every open and login of this process: not even the
             * broker's pinentry may ask (libvbroker reads it) */
            setenv("VBROKER_NON_INTERACTIVE", "1", 1);
            break;
        case 'r':
            v.readonly = 1;
            break;
        case OPT_TTL: {
            char *end;
            errno = 0;
            ttl = strtoull(optarg, &end, 10);
            if (errno || *end || !*optarg)
                return usage_error("--ttl needs a number of seconds, not '", optarg, "'");
            break;
        }
        case OPT_ALL:
            all = 1;
            break;
        case 'h':
            usage(stdout);
            return finish(EXIT_OK);
        case 'V':
            printf("vbctl %s\n", VBROKER_VERSION);
            return finish(EXIT_OK);
        case ':':
            return usage_error("option ", argv[optind - 1], " needs an argument");
        default:
            if (optopt > 0 && optopt < 256) {
                char shortopt[3] = { '-', (char)optopt, '\0' };
                return usage_error("unknown option ", shortopt, NULL);
            }
            return usage_error("unknown option ", argv[optind - 1], NULL);
        }
    }
    if (optind >= argc)
        return usage_error("no command given", NULL, NULL);

    const char *cmd = argv[optind];
    int nargs = argc - optind - 1;
    char **args = argv + optind + 1;

    if (strcmp(cmd, "help") == 0) {
        usage(stdout);
        return finish(EXIT_OK);
    }

    /* "logout --all" may also come after the command */
    if (strcmp(cmd, "logout") == 0 && nargs == 1 && strcmp(args[0], "--all") == 0) {
        all = 1;
        nargs = 0;
    }
    if (strcmp(cmd, "login") == 0 || strcmp(cmd, "logout") == 0) {
        if (nargs > 1)
            return usage_error("too many arguments for '", cmd, "'");
        if (nargs == 1)
            v.uri = args[0];
        if (strcmp(cmd, "logout") == 0) {
            if (!v.uri && !all)
                return usage_error("'logout' needs a URI or --all", NULL, NULL);
            return finish(cmd_logout(&v, all ? NULL : v.uri));
        }
        if (!v.uri || !*v.uri) {
            const char *env = getenv("VBROKER_DEFAULT_URI");
            v.uri = env && *env ? env : NULL;
        }
        if (!v.uri) {
            fputs("vbctl: no URI: use 'vbctl login URI' or set VBROKER_DEFAULT_URI\n", stderr);
            return EXIT_USAGE;
        }
        int rc = cmd_login(&v, ttl);
        free(v.service);
        return finish(rc);
    }

    int takes_name = strcmp(cmd, "start") == 0 || strcmp(cmd, "shutdown") == 0;
    int known = takes_name || strcmp(cmd, "hostname") == 0 || strcmp(cmd, "list") == 0 ||
                strcmp(cmd, "status") == 0;
    if (!known)
        return usage_error("unknown command '", cmd, "'");
    if (takes_name && nargs < 1)
        return usage_error("'", cmd, "' needs a domain NAME");
    if (nargs > (takes_name ? 1 : 0))
        return usage_error("too many arguments for '", cmd, "'");

    if (strcmp(cmd, "status") == 0)
        return finish(cmd_status(&v));

    if (!v.uri || !*v.uri) {
        const char *env = getenv("VBROKER_DEFAULT_URI");
        v.uri = env && *env ? env : NULL;
    }
    if (!v.uri) {
        fputs("vbctl: no URI: use -c URI or set VBROKER_DEFAULT_URI\n", stderr);
        return EXIT_USAGE;
    }

    int rc;
    if (strcmp(cmd, "hostname") == 0)
        rc = cmd_hostname(&v);
    else if (strcmp(cmd, "list") == 0)
        rc = cmd_list(&v);
    else
        rc = cmd_domain_op(&v, args[0], strcmp(cmd, "start") == 0);
    free(v.service);
    return finish(rc);
}
