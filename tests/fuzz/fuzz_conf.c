/*
 * fuzz_conf.c — libFuzzer target for vb_conf_parse_string and its getters.
 *
 * The input is the config text (cut at the first NUL, as the string API
 * sees it). When it parses: every getter is asked for every key and must
 * agree with the entry that wins (the last of that name); after that no key
 * is unknown. The entries are then written back in the documented syntax
 * and must parse to the same entries. A mismatch calls abort().
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vb_conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CONF_MAX_GETTER_ROUNDS 256

static void conf_check(int ok)
{
    if (!ok)
        abort();
}

/* The entry a getter must return: the last one named key. */
static const vb_conf_entry *conf_last(const vb_conf *conf, const char *key)
{
    const vb_conf_entry *found = NULL;
    for (size_t i = 0; i < conf->nentries; i++)
        if (strcmp(conf->entries[i].key, key) == 0)
            found = &conf->entries[i];
    return found;
}

static void conf_getters(vb_conf *conf, const char *key)
{
    const vb_conf_entry *want = conf_last(conf, key);
    const char *s = NULL;
    int64_t num = 0;
    char *const *list = NULL;
    size_t n = 0;
    vb_error err;

    int rs = vb_conf_get_string(conf, key, &s, &err);
    int ri = vb_conf_get_int(conf, key, &num, &err);
    int rl = vb_conf_get_list(conf, key, &list, &n, &err);
    if (!want) {
        conf_check(rs == 0 && ri == 0 && rl == 0);
        return;
    }
    conf_check(rs == (want->type == VB_CONF_STRING ? 1 : -1));
    conf_check(ri == (want->type == VB_CONF_INT ? 1 : -1));
    conf_check(rl == (want->type == VB_CONF_LIST ? 1 : -1));
    if (rs == 1)
        conf_check(s == want->str && s != NULL);
    if (ri == 1)
        conf_check(num == want->num);
    if (rl == 1) {
        conf_check(list == want->list && n == want->nlist);
        for (size_t i = 0; i < n; i++)
            conf_check(list[i] != NULL && strchr(list[i], '\n') == NULL);
    }
    /* a type mismatch names the file and line */
    if (rs < 0 || ri < 0 || rl < 0) {
        vb_conf_get_string(conf, key, &s, &err);
        vb_conf_get_int(conf, key, &num, &err);
        vb_conf_get_list(conf, key, &list, &n, &err);
        conf_check(err.code == VB_ERR_CONFIG && strstr(err.message, conf->path) != NULL);
    }
}

static void conf_put_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* The entries in the syntax of vb_conf.h, one per line. */
static char *conf_write(const vb_conf *conf)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    conf_check(f != NULL);
    for (size_t i = 0; i < conf->nentries; i++) {
        const vb_conf_entry *e = &conf->entries[i];
        fprintf(f, "%s = ", e->key);
        if (e->type == VB_CONF_STRING) {
            conf_put_string(f, e->str);
        } else if (e->type == VB_CONF_INT) {
            fprintf(f, "%lld", (long long)e->num);
        } else {
            fputc('[', f);
            for (size_t j = 0; j < e->nlist; j++) {
                if (j)
                    fputs(", ", f);
                conf_put_string(f, e->list[j]);
            }
            fputc(']', f);
        }
        fputc('\n', f);
    }
    conf_check(fclose(f) == 0);
    return buf;
}

static void conf_same(const vb_conf *a, const vb_conf *b)
{
    conf_check(a->nentries == b->nentries);
    for (size_t i = 0; i < a->nentries; i++) {
        const vb_conf_entry *x = &a->entries[i], *y = &b->entries[i];
        conf_check(strcmp(x->key, y->key) == 0 && x->type == y->type);
        if (x->type == VB_CONF_STRING)
            conf_check(strcmp(x->str, y->str) == 0);
        else if (x->type == VB_CONF_INT)
            conf_check(x->num == y->num);
        else
            conf_check(x->nlist == y->nlist);
        for (size_t j = 0; x->type == VB_CONF_LIST && j < x->nlist; j++)
            conf_check(strcmp(x->list[j], y->list[j]) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    vb_conf conf;
    vb_error err;
    if (vb_conf_parse_string(text, "fuzz.conf", &conf, &err) < 0) {
        conf_check(err.code == VB_ERR_CONFIG || err.code == VB_ERR_NO_MEMORY);
        conf_check(strncmp(err.message, "fuzz.conf", 9) == 0);
        conf_check(conf.nentries == 0 && conf.entries == NULL && conf.path == NULL);
        free(text);
        return 0;
    }
    int line = 1;
    for (size_t i = 0; i < conf.nentries; i++) {
        const vb_conf_entry *e = &conf.entries[i];
        conf_check(e->key && e->key[0] && e->line >= line && !e->used);
        line = e->line;
        conf_check(e->type != VB_CONF_STRING || (e->str && !strchr(e->str, '\n')));
    }
    conf_check(conf.nentries == 0 || vb_conf_unknown_key(&conf) == &conf.entries[0]);

    char *written = conf_write(&conf);
    vb_conf again;
    if (vb_conf_parse_string(written, "again.conf", &again, &err) < 0)
        abort(); /* what the parser produced must be writable and readable back */
    conf_same(&conf, &again);
    vb_conf_clear(&again);
    free(written);

    /* Each getter scans every entry: bound the rounds so a file of
     * thousands of one-letter keys stays fast to fuzz. */
    size_t rounds = conf.nentries < CONF_MAX_GETTER_ROUNDS ? conf.nentries
                                                           : CONF_MAX_GETTER_ROUNDS;
    for (size_t i = 0; i < rounds; i++)
        conf_getters(&conf, conf.entries[conf.nentries - 1 - i].key);
    conf_getters(&conf, "");
    conf_getters(&conf, "no_such_key");
    if (rounds == conf.nentries)
        conf_check(vb_conf_unknown_key(&conf) == NULL);
    vb_conf_clear(&conf);
    free(text);
    return 0;
}
