/*
 * fuzz_uri.c — libFuzzer target for vb_uri_parse and vb_uri_format.
 *
 * The input is the URI text (cut at the first NUL, as a C caller would).
 * When it parses, the canonical form must parse again to the very same
 * fields, and formatting that must give the same text (a fixed point).
 * A mismatch calls abort() so the fuzzer reports it.
 *
 * One exception is outside the contract: percent-encoding can make the
 * canonical text longer than VB_URI_MAX_LEN, which the parser then refuses
 * by design; such inputs are checked up to the format step only.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vb_driver.h"
#include "vb_uri.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void uri_check(int ok)
{
    if (!ok)
        abort();
}

static int uri_same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void uri_same(const vb_uri *a, const vb_uri *b)
{
    uri_check(uri_same_str(a->driver, b->driver));
    uri_check(uri_same_str(a->transport, b->transport));
    uri_check(uri_same_str(a->user, b->user));
    uri_check(uri_same_str(a->host, b->host));
    uri_check(a->port == b->port);
    uri_check(uri_same_str(a->path, b->path));
    uri_check(a->nparams == b->nparams);
    for (size_t i = 0; i < a->nparams; i++) {
        uri_check(uri_same_str(a->params[i].key, b->params[i].key));
        uri_check(uri_same_str(a->params[i].value, b->params[i].value));
    }
}

/* What a successful parse promises (vb_uri.h). */
static void uri_valid(const vb_uri *u)
{
    uri_check(u->driver != NULL && u->driver[0] != '\0');
    uri_check(u->path != NULL);
    uri_check(u->port >= 0 && u->port <= 65535);
    uri_check(!u->host || u->host[0] != '\0');
    uri_check(u->port == 0 || u->host != NULL);
    uri_check(!u->user || (u->user[0] != '\0' && u->user[0] != '-'));
    uri_check(u->nparams <= VB_URI_MAX_PARAMS);
    for (size_t i = 0; i < u->nparams; i++) {
        uri_check(u->params[i].key != NULL && u->params[i].key[0] != '\0');
        uri_check(u->params[i].value != NULL);
        /* the first param of a name is the one vb_uri_param_get returns */
        const char *v = vb_uri_param_get(u, u->params[i].key);
        uri_check(v != NULL);
        size_t first = 0;
        while (strcmp(u->params[first].key, u->params[i].key) != 0)
            first++;
        uri_check(v == u->params[first].value);
    }
    uri_check(vb_uri_is_remote(u) == (u->transport != NULL));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    vb_uri uri;
    vb_error err;
    if (vb_uri_parse(text, &uri, &err) < 0) {
        uri_check(err.code == VB_ERR_INVALID_ARG || err.code == VB_ERR_NO_MEMORY);
        /* a failed parse leaves nothing behind */
        uri_check(uri.driver == NULL && uri.nparams == 0);
        free(text);
        return 0;
    }
    uri_valid(&uri);
    /* the driver and parameter check (nested name= URIs too): an answer
     * either way, with a message, never a crash or a deep recursion */
    vb_error_clear(&err);
    if (vb_driver_check_uri(&uri, &err) < 0)
        uri_check((err.code == VB_ERR_INVALID_ARG || err.code == VB_ERR_NO_DRIVER ||
                   err.code == VB_ERR_NO_MEMORY) && err.message[0]);

    char *canon = vb_uri_format(&uri);
    uri_check(canon != NULL);
    if (strlen(canon) <= VB_URI_MAX_LEN) {
        vb_uri again;
        if (vb_uri_parse(canon, &again, &err) < 0)
            abort(); /* the canonical form of a valid URI must parse */
        uri_same(&uri, &again);
        char *canon2 = vb_uri_format(&again);
        uri_check(canon2 != NULL && strcmp(canon, canon2) == 0);
        free(canon2);
        vb_uri_clear(&again);
    }
    free(canon);
    vb_uri_clear(&uri);
    uri_check(uri.driver == NULL);
    free(text);
    return 0;
}
