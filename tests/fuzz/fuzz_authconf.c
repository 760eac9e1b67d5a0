/*
 * fuzz_authconf.c — libFuzzer target for vb_authconf_load and
 * vb_authconf_fill.
 *
 * vb_authconf_load reads a path, so each input is written to a private
 * file, /tmp/vb-fuzz-authconf.PID (mode 0600, created exclusively, removed
 * after the load): the library gets no test-only entry point. When the file
 * loads, requests holding every item type are filled for the usual services
 * and hosts and for the [auth-SERVICE-HOST] groups the input itself names,
 * and the answers must keep the promises of vb_authconf.h. A broken promise
 * calls abort().
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vb_authconf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* [auth-SERVICE-HOST] headers of the input tried as lookups, at most. */
#define AUTHCONF_MAX_NAMED 4
#define AUTHCONF_NAME_MAX 128

static void authconf_check(int ok)
{
    if (!ok)
        abort();
}

static const char *authconf_path(void)
{
    static char path[64];
    if (!path[0])
        snprintf(path, sizeof path, "/tmp/vb-fuzz-authconf.%ld", (long)getpid());
    return path;
}

static int authconf_write(const char *path, const uint8_t *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST) { /* left by a run of ours that crashed */
        unlink(path);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    }
    if (fd < 0)
        return -1;
    int rc = fchmod(fd, 0600);
    for (size_t off = 0; rc == 0 && off < size;) {
        ssize_t n = write(fd, data + off, size - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            rc = -1;
        else
            off += (size_t)n;
    }
    if (close(fd) != 0)
        rc = -1;
    return rc;
}

typedef struct authconf_lookup {
    char service[AUTHCONF_NAME_MAX];
    char host[AUTHCONF_NAME_MAX];
} authconf_lookup;

/* The SERVICE and HOST of the input's own "[auth-SERVICE-HOST]" lines, so
 * lookups hit what the fuzzer wrote, not only the fixed names. */
static size_t authconf_named(const uint8_t *data, size_t size, authconf_lookup *out)
{
    static const char head[] = "[auth-";
    const size_t hlen = sizeof head - 1;
    size_t n = 0;
    for (size_t i = 0; i + hlen <= size && n < AUTHCONF_MAX_NAMED; i++) {
        if ((i > 0 && data[i - 1] != '\n') || memcmp(data + i, head, hlen) != 0)
            continue;
        const uint8_t *s = data + i + hlen, *end = data + size;
        const uint8_t *close = memchr(s, ']', (size_t)(end - s));
        const uint8_t *dash = memchr(s, '-', (size_t)(end - s));
        if (!close || !dash || dash > close)
            continue;
        size_t slen = (size_t)(dash - s), hostlen = (size_t)(close - dash - 1);
        if (slen >= AUTHCONF_NAME_MAX || hostlen >= AUTHCONF_NAME_MAX)
            continue;
        memcpy(out[n].service, s, slen);
        out[n].service[slen] = '\0';
        memcpy(out[n].host, dash + 1, hostlen);
        out[n].host[hostlen] = '\0';
        n++;
    }
    return n;
}

static int authconf_answerable(int type)
{
    return type == VB_CRED_AUTHNAME || type == VB_CRED_USERNAME ||
           type == VB_CRED_PASSPHRASE || type == VB_CRED_REALM;
}

static int authconf_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* Fill one request and check the answers against vb_authconf.h. */
static void authconf_fill_one(const vb_authconf *conf, const char *service, const char *host,
                              const int *types, size_t ntypes, int retry)
{
    vb_cred_request req;
    memset(&req, 0, sizeof req);
    req.retry = retry;
    for (size_t i = 0; i < ntypes; i++)
        authconf_check(vb_cred_request_add(&req, types[i], "prompt", NULL, NULL) == 0);

    vb_error err;
    int rc = vb_authconf_fill(conf, service, host, &req, &err);
    int bad_service = !service || !*service || strchr(service, '-');
    if (bad_service) {
        authconf_check(rc == -1 && err.code == VB_ERR_INVALID_ARG);
    } else if (rc < 0) {
        authconf_check(err.code == VB_ERR_NO_MEMORY);
    } else {
        authconf_check(rc == 0 || rc == 1);
        authconf_check(rc == 0 || (ntypes > 0 && !retry && conf));
    }
    for (size_t i = 0; i < req.nitems; i++) {
        const vb_cred_item *it = &req.items[i];
        if (!it->result) {
            authconf_check(rc != 1); /* 1 means every item was answered */
            continue;
        }
        authconf_check(rc >= 0 && !retry && authconf_answerable(it->type));
        /* values are whole trimmed lines of a file without NUL bytes */
        authconf_check(strlen(it->result) == it->resultlen);
        authconf_check(!strchr(it->result, '\n'));
        authconf_check(it->resultlen == 0 || (!authconf_blank(it->result[0]) &&
                                              !authconf_blank(it->result[it->resultlen - 1])));
        /* one group answers the whole request: equal types, equal answers */
        for (size_t j = 0; j < i; j++)
            if (req.items[j].type == it->type)
                authconf_check(req.items[j].result && strcmp(req.items[j].result, it->result) == 0);
    }
    vb_cred_request_clear(&req);
}

static void authconf_fill_all(const vb_authconf *conf, const char *service, const char *host)
{
    static const int every[] = { 0, VB_CRED_USERNAME, VB_CRED_AUTHNAME, VB_CRED_LANGUAGE,
                                 VB_CRED_CNONCE, VB_CRED_PASSPHRASE, VB_CRED_ECHOPROMPT,
                                 VB_CRED_NOECHOPROMPT, VB_CRED_REALM, VB_CRED_EXTERNAL,
                                 VB_CRED_TYPE_MAX + 1, -1 };
    static const int login[] = { VB_CRED_AUTHNAME, VB_CRED_PASSPHRASE };
    static const int stored[] = { VB_CRED_AUTHNAME, VB_CRED_USERNAME, VB_CRED_PASSPHRASE,
                                  VB_CRED_REALM };
    int full[VB_CRED_MAX_ITEMS];
    for (size_t i = 0; i < VB_CRED_MAX_ITEMS; i++)
        full[i] = stored[i % 4];
    authconf_fill_one(conf, service, host, every, sizeof every / sizeof every[0], 0);
    authconf_fill_one(conf, service, host, login, 2, 0);
    authconf_fill_one(conf, service, host, stored, 4, 0);
    authconf_fill_one(conf, service, host, full, VB_CRED_MAX_ITEMS, 0);
    authconf_fill_one(conf, service, host, stored, 4, 1);
    authconf_fill_one(conf, service, host, NULL, 0, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = authconf_path();
    if (authconf_write(path, data, size) < 0) {
        unlink(path);
        return 0;
    }
    vb_authconf *conf = (vb_authconf *)1;
    vb_error err;
    int rc = vb_authconf_load(path, &conf, &err);
    unlink(path);
    if (rc < 0) {
        authconf_check(conf == NULL);
        authconf_check(err.code == VB_ERR_CONFIG || err.code == VB_ERR_NO_MEMORY ||
                       err.code == VB_ERR_SYSTEM);
        authconf_check(strstr(err.message, path) != NULL);
        return 0;
    }
    authconf_check(rc == 0 && conf != NULL); /* the file exists: it loads or fails */

    static const char *const services[] = { "vbhostd", "libvirt", "ssh", "xenapi", "", "a-b" };
    static const char *const hosts[] = { NULL, "", "localhost", "example.com", "::1", "default" };
    for (size_t s = 0; s < sizeof services / sizeof services[0]; s++)
        for (size_t h = 0; h < sizeof hosts / sizeof hosts[0]; h++)
            authconf_fill_all(conf, services[s], hosts[h]);
    authconf_lookup named[AUTHCONF_MAX_NAMED];
    size_t nnamed = authconf_named(data, size, named);
    for (size_t i = 0; i < nnamed; i++) {
        authconf_fill_all(conf, named[i].service, named[i].host);
        if (strcmp(named[i].service, "libvirt") == 0)
            authconf_fill_all(conf, "vbhostd", named[i].host);
    }
    authconf_fill_all(NULL, "vbhostd", NULL);
    vb_authconf_free(conf);
    return 0;
}
