#include "vb_paths.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* the variable when it holds an absolute path, else NULL */
static const char *abs_env(const char *name)
{
    const char *v = secure_getenv(name);
    return v && v[0] == '/' ? v : NULL;
}

static char *join(const char *a, const char *b)
{
    char *out = NULL;
    return asprintf(&out, "%s/%s", a, b) < 0 ? NULL : out;
}

char *vb_path_home(void)
{
    const char *home = abs_env("HOME");
    if (home)
        return strdup(home);
    /* no usable HOME (a service, `env -i`): the account's home, when it is
     * a real directory; useradd -M leaves a name that does not exist */
    struct passwd pw, *found = NULL;
    char buf[4096];
    struct stat st;
    if (getpwuid_r(getuid(), &pw, buf, sizeof buf, &found) != 0 || !found || !found->pw_dir ||
        found->pw_dir[0] != '/' || stat(found->pw_dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return NULL;
    return strdup(found->pw_dir);
}

/* $XDG_var/suffix, else HOME/home_rel/suffix (suffix may be NULL) */
static char *xdg_path(const char *var, const char *home_rel, const char *suffix)
{
    const char *xdg = abs_env(var);
    char *base = xdg ? strdup(xdg) : NULL;
    if (!xdg) {
        char *home = vb_path_home();
        base = home ? join(home, home_rel) : NULL;
        free(home);
    }
    if (!base || !suffix)
        return base;
    char *out = join(base, suffix);
    free(base);
    return out;
}

char *vb_path_config_home(void)
{
    return xdg_path("XDG_CONFIG_HOME", ".config", NULL);
}

char *vb_path_config_dir(void)
{
    return xdg_path("XDG_CONFIG_HOME", ".config", "vbroker");
}

char *vb_path_config_file(const char *name)
{
    char *dir = vb_path_config_dir();
    char *out = dir ? join(dir, name) : NULL;
    free(dir);
    return out;
}

char *vb_path_state_dir(void)
{
    return xdg_path("XDG_STATE_HOME", ".local/state", "vbroker");
}

void vb_path_broker_socket(char *buf, size_t len)
{
    const char *env = secure_getenv("VBROKER_SOCKET");
    const char *run = abs_env("XDG_RUNTIME_DIR");
    if (env && *env)
        snprintf(buf, len, "%s", env);
    else if (run)
        snprintf(buf, len, "%s/vbroker/sock", run);
    else /* a fixed name, so the client finds it again; vb_sockdir_open judges it */
        snprintf(buf, len, "/tmp/vbroker-%u/sock", (unsigned)getuid());
}
