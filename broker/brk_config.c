/* vbrokerd's settings: defaults, then vbrokerd.conf, then the command line.
 * Every number has one entry in `settings`, which both the file (key with
 * '_') and the options (--key with '-') go through, so they cannot disagree
 * on names, ranges or units. */
#include "brk.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vb_conf.h"
#include "vb_log.h"
#include "vb_login_gate.h"

#define YEARS_100 (100ull * 365 * 24 * 3600)

typedef struct setting {
    const char *option;   /* --option; the file's key is the same with '_' */
    uint64_t min, max;    /* in seconds, or a count */
    int in_ms;            /* kept in milliseconds (uint64_t) rather than units (unsigned) */
    size_t offset;        /* in brk_config */
} setting;

static const setting settings[] = {
    { "prompt-timeout", 1, 86400, 0, offsetof(brk_config, prompt_timeout_s) },
    { "frame-timeout", 1, 86400, 0, offsetof(brk_config, frame_timeout_s) },
    { "keepalive-interval", 0, 3600, 0, offsetof(brk_config, keepalive_interval_s) },
    { "keepalive-count", 1, 3600, 0, offsetof(brk_config, keepalive_count) },
    { "secret-ttl", 0, YEARS_100, 1, offsetof(brk_config, secret_ttl_ms) },
    { "secret-max", 1, YEARS_100, 1, offsetof(brk_config, secret_max_ms) },
    { "upstream-idle", 0, YEARS_100, 1, offsetof(brk_config, upstream_idle_ms) },
    { "max-clients", 1, 1000000, 0, offsetof(brk_config, max_clients) },
    { "max-output", 65536, 1u << 30, 0, offsetof(brk_config, max_output) },
    { "output-timeout", 1, 86400, 0, offsetof(brk_config, output_timeout_s) },
    { "log-max-size", 1024, 1u << 30, 0, offsetof(brk_config, log_max_size) },
    { "max-logins-per-host", 0, 1000, 0, offsetof(brk_config, max_logins_per_host) },
};

void brk_config_defaults(brk_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->listen_fd = -1;
    cfg->prompt_timeout_s = 120;
    cfg->log_level = VB_LOG_INFO;
    cfg->secret_ttl_ms = 600u * 1000u;
    cfg->secret_max_ms = 8u * 3600u * 1000u;
    cfg->frame_timeout_s = 60;
    cfg->keepalive_interval_s = 5;
    cfg->keepalive_count = 5;
    cfg->upstream_idle_ms = 300u * 1000u;
    cfg->max_clients = 1000;
    cfg->max_output = 4u << 20;
    cfg->output_timeout_s = 30;
    cfg->log_max_size = 1u << 20;
    cfg->max_logins_per_host = VB_LOGIN_GATE_DEFAULT_LIMIT;
}

void brk_config_clear(brk_config *cfg)
{
    free(cfg->socket_path);
    free(cfg->state_dir);
    free(cfg->pinentry_program);
    free(cfg->log_file);
    cfg->socket_path = cfg->state_dir = cfg->pinentry_program = cfg->log_file = NULL;
}

static const setting *find_setting(const char *option)
{
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++)
        if (strcmp(settings[i].option, option) == 0)
            return &settings[i];
    return NULL;
}

/* where: "--name" or "FILE: 'name'", for the message */
static int store(brk_config *cfg, const setting *s, uint64_t value, const char *where,
                 vb_error *err)
{
    if (value < s->min || value > s->max)
        return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG, "%s must be %llu..%llu", where,
                            (unsigned long long)s->min, (unsigned long long)s->max);
    char *field = (char *)cfg + s->offset;
    if (s->in_ms)
        *(uint64_t *)(void *)field = value * 1000u;
    else
        *(unsigned *)(void *)field = (unsigned)value;
    return 0;
}

int brk_config_is_setting(const char *option)
{
    return find_setting(option) != NULL;
}

int brk_config_set_option(brk_config *cfg, const char *option, const char *text, vb_error *err)
{
    const setting *s = find_setting(option);
    char where[64], *end;
    snprintf(where, sizeof where, "--%s", option);
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (!s || errno || end == text || *end || text[0] == '-')
        return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG, "%s needs a whole number, not '%s'",
                            where, text);
    return store(cfg, s, v, where, err);
}

static int load_numbers(vb_conf *conf, brk_config *cfg, vb_error *err)
{
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) {
        char key[64], where[4200];
        snprintf(key, sizeof key, "%s", settings[i].option);
        for (char *p = key; *p; p++)
            if (*p == '-')
                *p = '_';
        int64_t v;
        int rc = vb_conf_get_int(conf, key, &v, err);
        if (rc < 0)
            return -1;
        snprintf(where, sizeof where, "%s: '%s'", conf->path, key);
        if (rc == 1 && (v < 0 ? vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG,
                                             "%s must not be negative", where)
                              : store(cfg, &settings[i], (uint64_t)v, where, err)) < 0)
            return -1;
    }
    return 0;
}

static int load_words(vb_conf *conf, brk_config *cfg, vb_error *err)
{
    const char *level = NULL, *state_dir = NULL, *log_file = NULL, *pinentry = NULL;
    if (vb_conf_get_string(conf, "log_level", &level, err) < 0 ||
        vb_conf_get_string(conf, "state_dir", &state_dir, err) < 0 ||
        vb_conf_get_string(conf, "log_file", &log_file, err) < 0 ||
        vb_conf_get_string(conf, "pinentry_program", &pinentry, err) < 0)
        return -1;
    if (pinentry && !*pinentry)
        return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG,
                            "%s: 'pinentry_program' is empty (\"none\" turns it off)", conf->path);
    if (pinentry) {
        free(cfg->pinentry_program);
        cfg->pinentry_program = strdup(pinentry);
    }
    if (level && (cfg->log_level = vb_log_level_parse(level)) < 0)
        return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG,
                            "%s: 'log_level' must be error, warn, info or debug", conf->path);
    if (state_dir) {
        free(cfg->state_dir);
        cfg->state_dir = strdup(state_dir);
    }
    if (log_file) {
        free(cfg->log_file);
        cfg->log_file = strdup(log_file);
    }
    return 0;
}

/* Settings decide where secrets go (state_dir): only a file of ours that
 * nobody else may write counts. */
static int check_owner(const char *path, vb_error *err)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return vb_error_set_errno(err, errno, VB_DOM_CONFIG, "cannot read %s", path);
    if (st.st_uid != getuid() || (st.st_mode & 022))
        return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG,
                            "%s must belong to uid %u and be writable by nobody else (mode %04o)",
                            path, (unsigned)getuid(), (unsigned)(st.st_mode & 07777));
    return 0;
}

int brk_config_load(brk_config *cfg, const char *path, int must_exist, vb_error *err)
{
    if (!must_exist && access(path, F_OK) < 0 && errno == ENOENT)
        return 0;
    vb_conf conf;
    if (check_owner(path, err) < 0 || vb_conf_parse_file(path, &conf, err) < 0)
        return -1;
    int rc = load_numbers(&conf, cfg, err) < 0 || load_words(&conf, cfg, err) < 0 ? -1 : 0;
    const vb_conf_entry *unknown = rc == 0 ? vb_conf_unknown_key(&conf) : NULL;
    if (unknown)
        rc = vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG, "%s:%d: unknown key '%s'", path,
                          unknown->line, unknown->key);
    vb_conf_clear(&conf);
    return rc;
}

