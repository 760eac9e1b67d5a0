/* Throwaway local accounts and groups for tests that play a second user
 * (vb_testsupport.h, "throwaway accounts"). */
#include "vb_testsupport.h"

#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ACCOUNT_WAIT_MS 10000

static int run_quiet(char *const argv[])
{
    char *out = NULL;
    int rc = vb_ts_run(argv, NULL, NULL, &out, vb_ts_scaled_ms(ACCOUNT_WAIT_MS));
    if (rc != 0)
        fprintf(stderr, "%s: exit %d: %s\n", argv[0], rc, out ? out : "");
    free(out);
    return rc;
}

/* One try; another session may hold /etc/passwd's or /etc/group's lock for
 * a moment (useradd and groupadd exit 10 then), so callers wait for this
 * with a deadline. */
static int try_run(void *arg)
{
    char *out = NULL;
    int rc = vb_ts_run(arg, NULL, NULL, &out, vb_ts_scaled_ms(ACCOUNT_WAIT_MS));
    free(out);
    return rc == 0;
}

int vb_ts_account_create(vb_ts_account *a, const char *name, const char *home, const char *group)
{
    memset(a, 0, sizeof *a);
    snprintf(a->name, sizeof a->name, "%s", name);
    char *argv[16];
    size_t n = 0;
    argv[n++] = "useradd";
    if (home) {
        argv[n++] = "-m";
        argv[n++] = "-d";
        argv[n++] = (char *)home;
        a->has_home = 1;
    } else {
        argv[n++] = "-M";
    }
    if (group) {
        argv[n++] = "-G";
        argv[n++] = (char *)group;
    }
    char *tail[] = { "-N", "-s", "/usr/sbin/nologin", "-c", "vbroker test (throwaway)", a->name,
                     NULL };
    for (size_t i = 0; i < sizeof tail / sizeof tail[0]; i++)
        argv[n++] = tail[i];
    if (vb_ts_wait_until(try_run, argv, vb_ts_scaled_ms(ACCOUNT_WAIT_MS)) < 0)
        return -1;
    a->created = 1;
    struct passwd *pw = getpwnam(a->name);
    if (!pw)
        return -1;
    a->uid = pw->pw_uid;
    a->gid = pw->pw_gid;
    return 0;
}

void vb_ts_account_remove(vb_ts_account *a)
{
    if (!a->created)
        return;
    char *argv[] = { "userdel", a->has_home ? "-r" : a->name, a->has_home ? a->name : NULL, NULL };
    run_quiet(argv);
    a->created = 0;
}

int vb_ts_become(const vb_ts_account *a)
{
    return setgroups(0, NULL) == 0 && setgid(a->gid) == 0 && setuid(a->uid) == 0 ? 0 : -1;
}

int vb_ts_group_create(const char *name)
{
    char *argv[] = { "groupadd", (char *)name, NULL };
    return vb_ts_wait_until(try_run, argv, vb_ts_scaled_ms(ACCOUNT_WAIT_MS));
}

void vb_ts_group_remove(const char *name)
{
    char *argv[] = { "groupdel", (char *)name, NULL };
    run_quiet(argv);
}
