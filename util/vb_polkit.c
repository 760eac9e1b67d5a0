#include "vb_polkit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <time.h>

#define POLKIT_NAME "org.freedesktop.PolicyKit1"
#define POLKIT_PATH "/org/freedesktop/PolicyKit1/Authority"
#define POLKIT_IFACE "org.freedesktop.PolicyKit1.Authority"
/* CheckAuthorization flags: 0 = never interact (1 would allow it) */
#define POLKIT_CHECK_NO_INTERACTION 0u
#define STAT_MAX 4096

int vb_polkit_start_time(pid_t pid, uint64_t *out, vb_error *err)
{
    char path[64], buf[STAT_MAX];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return vb_error_set_errno(err, errno, VB_DOM_SYSTEM, "cannot read %s", path);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* "PID (COMM) STATE PPID ...": COMM may hold spaces and ')', so count
     * the fields after the last ')'; starttime is field 22 of the line */
    char *p = strrchr(buf, ')');
    for (int field = 2; p && field < 22; field++) /* to the blank before field 22 */
        p = strchr(p + 1, ' ');
    char *end = NULL;
    errno = 0;
    unsigned long long v = p ? strtoull(p + 1, &end, 10) : 0;
    if (!p || end == p + 1 || errno)
        return vb_error_set(err, VB_ERR_SYSTEM, VB_DOM_SYSTEM, "cannot parse %s", path);
    *out = v;
    return 0;
}

static uint64_t now_usec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

typedef struct call_state {
    int done;
    int verdict;
    vb_error *err;
    const char *action;
    unsigned timeout_ms;
    int rc;
} call_state;

static int is_error(const sd_bus_error *e, const char *name)
{
    return e && e->name && strcmp(e->name, name) == 0;
}

static int no_answer(vb_error *err, unsigned timeout_ms)
{
    return vb_error_set(err, VB_ERR_AUTH_UNAVAILABLE, VB_DOM_AUTH,
                        "polkit authentication is unavailable: polkitd (or the system bus) did "
                        "not answer within %u ms (is it hung? systemctl restart polkit)",
                        timeout_ms);
}

/* polkitd's or the bus's error reply, said so a person knows what to do */
static int explain_error(call_state *st, const sd_bus_error *e)
{
    const char *msg = e && e->message ? e->message : "";
    if (is_error(e, "org.freedesktop.DBus.Error.ServiceUnknown") ||
        is_error(e, "org.freedesktop.DBus.Error.NameHasNoOwner") ||
        (e && e->name && strncmp(e->name, "org.freedesktop.DBus.Error.Spawn.", 33) == 0))
        return vb_error_set(st->err, VB_ERR_AUTH_UNAVAILABLE, VB_DOM_AUTH,
                            "polkit authentication is unavailable: polkitd is not running on the "
                            "system bus (start it: systemctl start polkit)");
    if (is_error(e, "org.freedesktop.DBus.Error.Timeout") ||
        is_error(e, "org.freedesktop.DBus.Error.NoReply"))
        return no_answer(st->err, st->timeout_ms);
    if (strstr(msg, "has been replaced")) /* the start time no longer matches the pid */
        return vb_error_set(st->err, VB_ERR_AUTH_FAILED, VB_DOM_AUTH,
                            "the process that connected is gone and its pid now belongs to "
                            "another process: not authorised");
    if (strstr(msg, "is not registered"))
        return vb_error_set(st->err, VB_ERR_AUTH_UNAVAILABLE, VB_DOM_AUTH,
                            "polkit does not know the action %s: its policy is not installed "
                            "(install org.vbroker.vbhostd.policy into /usr/share/polkit-1/actions; "
                            "make install does)", st->action);
    return vb_error_set(st->err, VB_ERR_AUTH_UNAVAILABLE, VB_DOM_AUTH,
                        "polkit could not check %s: %.200s (%.100s)", st->action, msg,
                        e && e->name ? e->name : "?");
}

/* The reply: (bba{ss}) = is_authorized, is_challenge, details. */
static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
    (void)ret_error;
    call_state *st = userdata;
    st->done = 1;
    if (sd_bus_message_is_method_error(m, NULL)) {
        st->rc = explain_error(st, sd_bus_message_get_error(m));
        return 0;
    }
    int authorized = 0, challenge = 0;
    int r = sd_bus_message_enter_container(m, 'r', "bba{ss}");
    if (r >= 0)
        r = sd_bus_message_read(m, "bb", &authorized, &challenge);
    if (r < 0) {
        st->rc = vb_error_set(st->err, VB_ERR_AUTH_UNAVAILABLE, VB_DOM_AUTH,
                              "polkitd's answer about %s is malformed: %s", st->action,
                              strerror(-r));
        return 0;
    }
    st->verdict = authorized ? VB_POLKIT_YES : challenge ? VB_POLKIT_CHALLENGE : VB_POLKIT_NO;
    st->rc = 0;
    return 0;
}

static int append_request(sd_bus *bus, const vb_polkit_subject *s, const char *action,
                          sd_bus_message **out)
{
    sd_bus_message *m = NULL;
    int r = sd_bus_message_new_method_call(bus, &m, POLKIT_NAME, POLKIT_PATH, POLKIT_IFACE,
                                           "CheckAuthorization");
    /* subject (sa{sv}), action, details a{ss}, flags, cancellation id */
    if (r >= 0)
        r = sd_bus_message_append(m, "(sa{sv})s", "unix-process", 3, "pid", "u", (uint32_t)s->pid,
                                  "start-time", "t", s->start_time, "uid", "i", (int32_t)s->uid,
                                  action);
    if (r >= 0)
        r = sd_bus_message_append(m, "a{ss}us", 0, POLKIT_CHECK_NO_INTERACTION, "");
    if (r < 0) {
        sd_bus_message_unref(m);
        return r;
    }
    *out = m;
    return 0;
}

/* Drive the bus until the reply came or the deadline passed. */
static int run_until(sd_bus *bus, call_state *st, uint64_t deadline)
{
    while (!st->done) {
        int r = sd_bus_process(bus, NULL);
        if (r < 0)
            return r;
        if (r > 0)
            continue;
        uint64_t now = now_usec();
        if (now >= deadline)
            return -ETIMEDOUT;
        r = sd_bus_wait(bus, deadline - now);
        if (r < 0 && r != -EINTR)
            return r;
    }
    return 0;
}

int vb_polkit_check(const vb_polkit_subject *subject, const char *action, unsigned timeout_ms,
                    int *verdict, vb_error *err)
{
    uint64_t deadline = now_usec() + (uint64_t)timeout_ms * 1000u;
    const char *addr = getenv("DBUS_SYSTEM_BUS_ADDRESS");
    call_state st = { 0, VB_POLKIT_NO, err, action, timeout_ms, -1 };
    sd_bus *bus = NULL;
    sd_bus_message *m = NULL;
    int r = sd_bus_open_system(&bus);
    if (r < 0)
        return vb_error_set(err, VB_ERR_AUTH_UNAVAILABLE, VB_DOM_AUTH,
                            "polkit authentication is unavailable: cannot reach the system D-Bus "
                            "at %.200s: %s (is dbus running?)",
                            addr && *addr ? addr : "its default socket", strerror(-r));
    r = append_request(bus, subject, action, &m);
    if (r >= 0)
        r = sd_bus_call_async(bus, NULL, m, on_reply, &st, (uint64_t)timeout_ms * 1000u);
    if (r >= 0)
        r = run_until(bus, &st, deadline);
    sd_bus_message_unref(m);
    sd_bus_close(bus); /* no flush: a wedged bus must not hold us past the deadline */
    sd_bus_unref(bus);
    if (r == -ETIMEDOUT)
        return no_answer(err, timeout_ms);
    if (r < 0)
        return vb_error_set(err, VB_ERR_AUTH_UNAVAILABLE, VB_DOM_AUTH,
                            "polkit authentication is unavailable: the system D-Bus connection "
                            "failed: %s", strerror(-r));
    if (st.rc == 0)
        *verdict = st.verdict;
    return st.rc;
}
