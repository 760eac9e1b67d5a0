#include "vb_cred.h"

#include <stdlib.h>
#include <string.h>

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

int vb_cred_request_add(vb_cred_request *req, int type, const char *prompt,
                        const char *challenge, const char *defresult)
{
    if (req->nitems >= VB_CRED_MAX_ITEMS)
        return -1;
    vb_cred_item *it = &req->items[req->nitems];
    memset(it, 0, sizeof *it);
    it->type = type;
    it->prompt = dup_or_null(prompt);
    it->challenge = dup_or_null(challenge);
    it->defresult = dup_or_null(defresult);
    if ((prompt && !it->prompt) || (challenge && !it->challenge) || (defresult && !it->defresult)) {
        free(it->prompt);
        free(it->challenge);
        free(it->defresult);
        return -1;
    }
    req->nitems++;
    return 0;
}

static void wipe_result(vb_cred_item *item)
{
    if (item->result) {
        explicit_bzero(item->result, item->resultlen);
        free(item->result);
    }
    item->result = NULL;
    item->resultlen = 0;
}

int vb_cred_item_set_result(vb_cred_item *item, const char *value, size_t len)
{
    wipe_result(item);
    char *copy = malloc(len + 1);
    if (!copy)
        return -1;
    memcpy(copy, value, len);
    copy[len] = '\0';
    item->result = copy;
    item->resultlen = len;
    return 0;
}

void vb_cred_request_clear(vb_cred_request *req)
{
    for (size_t i = 0; i < req->nitems; i++) {
        vb_cred_item *it = &req->items[i];
        wipe_result(it);
        free(it->prompt);
        free(it->challenge);
        free(it->defresult);
    }
    free(req->service);
    memset(req, 0, sizeof *req);
}

const char *vb_cred_type_name(int type)
{
    static const char *const names[] = { "?", "username", "authname", "language", "cnonce",
                                         "passphrase", "echoprompt", "noechoprompt", "realm",
                                         "external" };
    return type >= 1 && type <= VB_CRED_TYPE_MAX ? names[type] : "?";
}
