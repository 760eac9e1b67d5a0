/* vb_testsupport: a Cyrus SASL config dir with its own sasldb.
 *
 * Nothing goes to /etc/sasl2: the server side reads DIR/APP.conf through
 * sasl_set_path(SASL_PATH_TYPE_CONFIG, DIR), and saslpasswd2 runs with
 * SASL_CONF_PATH=DIR so it, too, sees only our file.
 */
#include "vb_testsupport_priv.h"
#include "vb_testsupport_saslcb.h"

#include <dlfcn.h>
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SASLPASSWD2 "/usr/sbin/saslpasswd2"
/* Where Debian's libsasl2 looks for plugins unless SASL_PATH says otherwise. */
#define SASL_PLUGIN_GLOB "/usr/lib/*/sasl2/*.so:/usr/lib/sasl2/*.so"

static int ensure_dir(const char *dir)
{
    struct stat st;
    if (mkdir(dir, 0700) == 0)
        return 0;
    if (errno == EEXIST && stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    fprintf(stderr, "vb_ts_sasl_setup: cannot create dir %s: %s\n", dir, strerror(errno));
    return -1;
}

static int add_user(const char *dir, const char *db, const char *app, const char *realm,
                    const char *entry)
{
    const char *colon = strchr(entry, ':');
    if (colon == NULL || colon == entry || strchr(colon, '\n') != NULL) {
        fprintf(stderr, "vb_ts_sasl_setup: user entry must be \"name:password\" (one line): %s\n",
                entry);
        return -1;
    }
    char *name = vb_ts_priv_fmt("%.*s", (int)(colon - entry), entry);
    vb_ts_note_secret(colon + 1);
    char *conf_env = vb_ts_priv_fmt("SASL_CONF_PATH=%s", dir);
    char *argv[] = { SASLPASSWD2, "-p", "-f", (char *)db, "-a", (char *)app,
                     "-u", (char *)realm, "-c", name, NULL };
    char *env[] = { conf_env, NULL };
    char *out = NULL;
    /* -p: the password is read from stdin, no prompt, no confirmation. */
    int rc = vb_ts_run(argv, env, colon + 1, &out, 10000);
    if (rc != 0)
        fprintf(stderr, "vb_ts_sasl_setup: saslpasswd2 for %s failed (status %d): %s\n",
                name, rc, out ? out : "");
    free(out);
    free(conf_env);
    free(name);
    return rc == 0 ? 0 : -1;
}

int vb_ts_sasl_setup(const char *dir, const char *app, const char *realm,
                     const char *mech_list, const char *const users[],
                     const char *keytab)
{
    if (dir == NULL || mech_list == NULL || !vb_ts_priv_chars_ok(app, "-_.") ||
        !vb_ts_priv_chars_ok(realm, "-_.")) {
        fprintf(stderr, "vb_ts_sasl_setup: need dir, mech_list, and a plain app name and realm\n");
        return -1;
    }
    if (strchr(mech_list, '\n') != NULL || (keytab != NULL && strchr(keytab, '\n') != NULL)) {
        fprintf(stderr, "vb_ts_sasl_setup: newline in mech_list or keytab\n");
        return -1;
    }
    if (ensure_dir(dir) != 0)
        return -1;

    char *db = vb_ts_priv_fmt("%s/sasldb", dir);
    char *conf_path = vb_ts_priv_fmt("%s/%s.conf", dir, app);
    char *kt_line = keytab ? vb_ts_priv_fmt("keytab: %s\n", keytab) : vb_ts_priv_fmt("%s", "");
    char *conf = vb_ts_priv_fmt("mech_list: %s\n"
                                "pwcheck_method: auxprop\n"
                                "auxprop_plugin: sasldb\n"
                                "sasldb_path: %s\n"
                                "%s",
                                mech_list, db, kt_line);
    int rc = vb_ts_write_file(conf_path, conf, 0600);

    size_t n = 0;
    for (; rc == 0 && users && users[n]; n++)
        rc = add_user(dir, db, app, realm, users[n]);
    /* saslpasswd2 creates the db 0640. */
    if (rc == 0 && n > 0 && chmod(db, 0600) != 0) {
        fprintf(stderr, "vb_ts_sasl_setup: chmod %s: %s\n", db, strerror(errno));
        rc = -1;
    }
    free(conf);
    free(kt_line);
    free(conf_path);
    free(db);
    return rc;
}

int vb_ts_sasl_pin_plugins(void)
{
    const char *env = getenv("SASL_PATH");
    char *dirs = env && *env ? vb_ts_priv_fmt("%s", env) : NULL;
    glob_t g;
    int flags = 0, pinned = 0;
    memset(&g, 0, sizeof g);
    if (dirs != NULL) {
        for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
            char *pat = vb_ts_priv_fmt("%s/*.so", d);
            glob(pat, flags, NULL, &g);
            flags = GLOB_APPEND;
            free(pat);
        }
    } else {
        char *pats = vb_ts_priv_fmt("%s", SASL_PLUGIN_GLOB);
        for (char *save = NULL, *p = strtok_r(pats, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
            glob(p, flags, NULL, &g);
            flags = GLOB_APPEND;
        }
        free(pats);
    }
    for (size_t i = 0; i < g.gl_pathc; i++) {
        /* The handle is dropped on purpose: RTLD_NODELETE keeps it mapped. */
        if (dlopen(g.gl_pathv[i], RTLD_NOW | RTLD_NODELETE) != NULL)
            pinned++;
        else
            fprintf(stderr, "vb_ts_sasl_pin_plugins: %s\n", dlerror());
    }
    globfree(&g);
    free(dirs);
    if (pinned == 0) {
        fprintf(stderr, "vb_ts_sasl_pin_plugins: no SASL plugin found (is libsasl2-modules installed?)\n");
        return -1;
    }
    return pinned;
}

/* ---- raw client callbacks (vb_testsupport_saslcb.h) ----------------------- */

static int creds_name(void *ctx, int id, const char **result, unsigned *len)
{
    const vb_ts_sasl_client_creds *c = ctx;
    if (id != SASL_CB_USER && id != SASL_CB_AUTHNAME)
        return SASL_FAIL;
    *result = c->user;
    if (len)
        *len = (unsigned)strlen(c->user);
    return SASL_OK;
}

static int creds_pass(sasl_conn_t *conn, void *ctx, int id, sasl_secret_t **psecret)
{
    (void)conn;
    const vb_ts_sasl_client_creds *c = ctx;
    if (id != SASL_CB_PASS)
        return SASL_FAIL;
    *psecret = c->secret;
    return SASL_OK;
}

void vb_ts_sasl_client_creds_init(vb_ts_sasl_client_creds *c, const char *user,
                                  const char *password)
{
    size_t len = strlen(password);
    c->user = user;
    c->secret = malloc(sizeof *c->secret + len);
    if (!c->secret)
        abort();
    c->secret->len = len;
    memcpy(c->secret->data, password, len + 1);
    /* Cyrus calls a callback through a generic pointer (SASL_FN's cast) */
    c->cbs[0] = (sasl_callback_t){ SASL_CB_USER, (int (*)(void))(void (*)(void))creds_name, c };
    c->cbs[1] = (sasl_callback_t){ SASL_CB_AUTHNAME, (int (*)(void))(void (*)(void))creds_name, c };
    c->cbs[2] = (sasl_callback_t){ SASL_CB_PASS, (int (*)(void))(void (*)(void))creds_pass, c };
    c->cbs[3] = (sasl_callback_t){ SASL_CB_LIST_END, NULL, NULL };
}

void vb_ts_sasl_client_creds_clear(vb_ts_sasl_client_creds *c)
{
    if (c->secret) {
        explicit_bzero(c->secret->data, c->secret->len);
        free(c->secret);
        c->secret = NULL;
    }
}
