/* The SSH transport's user authentication: ssh-agent, key files (a
 * passphrase asked through the credential source), password and
 * keyboard-interactive, in the order sshauth= gives, each question through
 * the credential source and each answer approved or rejected there. */
#include "vb_ssh_priv.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* 1 authenticated, 0 not (try the next method), -1 stop with err. */

static int auth_agent(ssh_ctx *c, vb_error *err)
{
    LIBSSH2_SESSION *sess = c->s->session;
    const char *sock = getenv("SSH_AUTH_SOCK");
    if (!sock || !*sock) {
        vb_error_set(err, VB_ERR_AUTH_FAILED, VB_DOM_SSH, "no ssh-agent (SSH_AUTH_SOCK is unset)");
        return 0;
    }
    LIBSSH2_AGENT *agent = libssh2_agent_init(sess);
    if (!agent)
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_SSH, "out of memory");
    int ok = 0;
    if (libssh2_agent_connect(agent) != 0 || libssh2_agent_list_identities(agent) != 0) {
        vb_error_set(err, VB_ERR_AUTH_FAILED, VB_DOM_SSH, "cannot use the ssh-agent at %s: %s",
                     sock, vb_ssh_last_error(sess));
    } else {
        struct libssh2_agent_publickey *id = NULL, *prev = NULL;
        while (!ok && libssh2_agent_get_identity(agent, &id, prev) == 0) {
            if (libssh2_agent_userauth(agent, c->user, id) == 0)
                ok = 1;
            prev = id;
        }
        if (!ok)
            vb_error_set(err, VB_ERR_AUTH_FAILED, VB_DOM_SSH,
                         "%s@%s accepted none of the ssh-agent's keys", c->user, c->hostpat);
        libssh2_agent_disconnect(agent);
    }
    libssh2_agent_free(agent);
    return ok;
}

/* -1 unreadable, 0 plain, 1 encrypted */
static int key_encrypted(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    char buf[16384];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    int rc = 0;
    if (strstr(buf, "ENCRYPTED")) {
        rc = 1; /* PEM: Proc-Type: 4,ENCRYPTED or BEGIN ENCRYPTED PRIVATE KEY */
    } else if ((strstr(buf, "BEGIN OPENSSH PRIVATE KEY"))) {
        /* openssh-key-v1\0, string ciphername: decode the first 64 base64 chars */
        const char *p = strchr(strstr(buf, "BEGIN OPENSSH PRIVATE KEY"), '\n');
        char b[65];
        size_t k = 0;
        while (p && *p && k < 64) {
            if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                (*p >= '0' && *p <= '9') || *p == '+' || *p == '/')
                b[k++] = *p;
            else if (*p == '-')
                break;
            p++;
        }
        b[k] = '\0';
        unsigned char raw[64];
        if (k == 64 && EVP_DecodeBlock(raw, (unsigned char *)b, 64) == 48 &&
            memcmp(raw, "openssh-key-v1\0", 15) == 0) {
            uint32_t clen = (uint32_t)raw[15] << 24 | (uint32_t)raw[16] << 16 |
                            (uint32_t)raw[17] << 8 | raw[18];
            rc = !(clen == 4 && memcmp(raw + 19, "none", 4) == 0);
        }
    }
    explicit_bzero(buf, sizeof buf);
    return rc;
}

static int try_keyfile(ssh_ctx *c, const char *path, vb_error *err)
{
    LIBSSH2_SESSION *sess = c->s->session;
    unsigned ulen = (unsigned)strlen(c->user);
    int enc = key_encrypted(path);
    if (enc < 0) {
        vb_error_set_errno(err, errno, VB_DOM_SSH, "cannot read the private key %s", path);
        return 0;
    }
    if (!enc) {
        if (libssh2_userauth_publickey_fromfile_ex(sess, c->user, ulen, NULL, path, "") == 0)
            return 1;
        vb_error_set(err, VB_ERR_AUTH_FAILED, VB_DOM_SSH, "the key %s was not accepted: %s", path,
                     vb_ssh_last_error(sess));
        return 0;
    }
    char service[4200], prompt[4200];
    snprintf(service, sizeof service, "ssh private key %s", path);
    snprintf(prompt, sizeof prompt, "Enter passphrase for key '%s'", path);
    for (int attempt = 0; attempt < VB_SSH_AUTH_TRIES; attempt++) {
        vb_cred_request req;
        if (vb_ssh_new_request(c, &req, VB_CRED_KIND_SSH_PASSPHRASE, service, attempt > 0, err) < 0)
            return -1;
        if (vb_cred_request_add(&req, VB_CRED_PASSPHRASE, prompt, NULL, NULL) < 0) {
            vb_cred_request_clear(&req);
            return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_SSH, "out of memory");
        }
        if (vb_driver_ask(c->creds, &req, VB_DOM_SSH, SSH_LOGIN, err) < 0) {
            vb_cred_request_clear(&req);
            return -1;
        }
        const char *pp = req.items[0].result ? req.items[0].result : "";
        int rc = libssh2_userauth_publickey_fromfile_ex(sess, c->user, ulen, NULL, path, pp);
        if (rc == 0) {
            vb_driver_verdict(c->creds, &req, 1);
            vb_cred_request_clear(&req);
            return 1;
        }
        if (rc == LIBSSH2_ERROR_FILE) { /* could not decrypt: a wrong passphrase */
            vb_driver_verdict(c->creds, &req, 0);
            vb_cred_request_clear(&req);
            continue;
        }
        /* the passphrase opened the key, the server refused it */
        vb_driver_verdict(c->creds, &req, 1);
        vb_cred_request_clear(&req);
        vb_error_set(err, VB_ERR_AUTH_FAILED, VB_DOM_SSH, "the key %s was not accepted: %s", path,
                     vb_ssh_last_error(sess));
        return 0;
    }
    return vb_error_set(err, VB_ERR_AUTH_FAILED, VB_DOM_SSH,
                        "wrong passphrase for the key %s (%d tries)", path, VB_SSH_AUTH_TRIES);
}

static int auth_privkey(ssh_ctx *c, vb_error *err)
{
    const char *param = vb_uri_param_get(c->uri, "keyfile");
    if (param && *param)
        return try_keyfile(c, param, err);
    static const char *const defaults[] = { ".ssh/id_ed25519", ".ssh/id_ecdsa" };
    int rc = 0;
    vb_error_set(err, VB_ERR_AUTH_FAILED, VB_DOM_SSH, "no private key (~/.ssh/id_ed25519, "
                                                      "~/.ssh/id_ecdsa) and no keyfile=");
    for (size_t i = 0; i < 2 && rc == 0; i++) {
        char *path = vb_ssh_home_path(defaults[i]);
        if (path && access(path, R_OK) == 0)
            rc = try_keyfile(c, path, err);
        free(path);
    }
    return rc;
}

static int auth_password(ssh_ctx *c, vb_error *err)
{
    LIBSSH2_SESSION *sess = c->s->session;
    char uprompt[400], pprompt[600];
    snprintf(uprompt, sizeof uprompt, "Username for %s", c->hostpat);
    snprintf(pprompt, sizeof pprompt, "%s@%s's password", c->user, c->hostpat);
    /* like `ssh user@host`: a URI that names the user asks for the password
     * only; without one the name is asked, the local user as its default */
    int ask_name = !(c->uri->user && *c->uri->user);
    for (int attempt = 0; attempt < VB_SSH_AUTH_TRIES; attempt++) {
        vb_cred_request req;
        if (vb_ssh_new_request(c, &req, VB_CRED_KIND_SSH_PASSWORD, NULL, attempt > 0, err) < 0)
            return -1;
        if ((ask_name && vb_cred_request_add(&req, VB_CRED_AUTHNAME, uprompt, NULL, c->user) < 0) ||
            vb_cred_request_add(&req, VB_CRED_PASSPHRASE, pprompt, NULL, NULL) < 0) {
            vb_cred_request_clear(&req);
            return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_SSH, "out of memory");
        }
        if (vb_driver_ask(c->creds, &req, VB_DOM_SSH, SSH_LOGIN, err) < 0) {
            vb_cred_request_clear(&req);
            return -1;
        }
        const char *name = ask_name && req.items[0].result && *req.items[0].result
                               ? req.items[0].result
                               : c->user;
        if (strcmp(name, c->user) != 0) {
            vb_cred_request_clear(&req);
            return vb_error_set(err, VB_ERR_AUTH_FAILED, VB_DOM_SSH,
                                "the SSH user is %s; sshd does not allow another user in the "
                                "same session: put the user in the URI (ssh://USER@host)",
                                c->user);
        }
        const vb_cred_item *secret = &req.items[ask_name ? 1 : 0];
        const char *pw = secret->result ? secret->result : "";
        int rc = libssh2_userauth_password_ex(sess, c->user, (unsigned)strlen(c->user), pw,
                                              (unsigned)strlen(pw), NULL);
        if (rc == 0) {
            vb_driver_verdict(c->creds, &req, 1);
            vb_cred_request_clear(&req);
            return 1;
        }
        if (rc != LIBSSH2_ERROR_AUTHENTICATION_FAILED) {
            vb_cred_request_clear(&req);
            return vb_error_set(err, rc == LIBSSH2_ERROR_PASSWORD_EXPIRED ? VB_ERR_AUTH_FAILED
                                                                           : VB_ERR_NO_CONNECT,
                                VB_DOM_SSH, "password login to %s@%s: %s", c->user, c->hostpat,
                                vb_ssh_last_error(sess));
        }
        vb_driver_verdict(c->creds, &req, 0);
        vb_cred_request_clear(&req);
    }
    return vb_error_set(err, VB_ERR_AUTH_FAILED, VB_DOM_SSH,
                        "wrong password for %s@%s (%d tries)", c->user, c->hostpat,
                        VB_SSH_AUTH_TRIES);
}

static char *dup_len(const char *s, size_t len)
{
    char *out = malloc(len + 1);
    if (out) {
        if (len)
            memcpy(out, s, len);
        out[len] = '\0';
    }
    return out;
}

static LIBSSH2_USERAUTH_KBDINT_RESPONSE_FUNC(kbd_callback)
{
    ssh_ctx *c = *abstract;
    vb_cred_request req;
    int ok = !c->kbd_failed && num_prompts > 0 && num_prompts <= VB_CRED_MAX_ITEMS;
    memset(&req, 0, sizeof req);
    if (!c->kbd_failed && num_prompts > VB_CRED_MAX_ITEMS) {
        c->kbd_failed = 1;
        vb_error_set(&c->kbd_err, VB_ERR_NO_SUPPORT, VB_DOM_SSH,
                     "the server asked %d questions at once", num_prompts);
    }
    if (ok && vb_ssh_new_request(c, &req, VB_CRED_KIND_SSH_PASSWORD, NULL,
                          c->kbd_retry && c->kbd_round == 0, &c->kbd_err) < 0)
        ok = 0, c->kbd_failed = 1;
    char *challenge = NULL;
    if (ok && instruction_len > 0)
        challenge = dup_len(instruction, (size_t)instruction_len);
    else if (ok && name_len > 0)
        challenge = dup_len(name, (size_t)name_len);
    for (int i = 0; ok && i < num_prompts; i++) {
        char *text = dup_len(prompts[i].text ? prompts[i].text : "", prompts[i].length);
        if (!text || vb_cred_request_add(&req, prompts[i].echo ? VB_CRED_ECHOPROMPT
                                                               : VB_CRED_NOECHOPROMPT,
                                         text, challenge, NULL) < 0) {
            ok = 0, c->kbd_failed = 1;
            vb_error_set(&c->kbd_err, VB_ERR_NO_MEMORY, VB_DOM_SSH, "out of memory");
        }
        free(text);
    }
    free(challenge);
    if (ok && vb_driver_ask(c->creds, &req, VB_DOM_SSH, SSH_LOGIN, &c->kbd_err) < 0)
        ok = 0, c->kbd_failed = 1;
    c->kbd_round++;
    for (int i = 0; i < num_prompts; i++) {
        const char *v = ok && req.items[i].result ? req.items[i].result : "";
        responses[i].text = strdup(v);
        responses[i].length = responses[i].text ? (unsigned)strlen(v) : 0;
    }
    if (ok) {
        vb_cred_request_clear(&c->kbd_last);
        c->kbd_last = req; /* moved: cleared after the verdict */
    } else {
        vb_cred_request_clear(&req);
    }
}

static int auth_kbdint(ssh_ctx *c, vb_error *err)
{
    LIBSSH2_SESSION *sess = c->s->session;
    for (int attempt = 0; attempt < VB_SSH_AUTH_TRIES; attempt++) {
        c->kbd_retry = attempt > 0;
        c->kbd_round = 0;
        c->kbd_failed = 0;
        vb_error_clear(&c->kbd_err);
        vb_cred_request_clear(&c->kbd_last);
        int rc = libssh2_userauth_keyboard_interactive_ex(sess, c->user, (unsigned)strlen(c->user),
                                                         kbd_callback);
        if (c->kbd_failed) {
            vb_error_copy(err, &c->kbd_err);
            vb_cred_request_clear(&c->kbd_last);
            return -1;
        }
        if (rc == 0) {
            if (c->kbd_last.nitems)
                vb_driver_verdict(c->creds, &c->kbd_last, 1);
            vb_cred_request_clear(&c->kbd_last);
            return 1;
        }
        if (c->kbd_last.nitems)
            vb_driver_verdict(c->creds, &c->kbd_last, 0);
        vb_cred_request_clear(&c->kbd_last);
        if (rc != LIBSSH2_ERROR_AUTHENTICATION_FAILED)
            return vb_error_set(err, VB_ERR_NO_CONNECT, VB_DOM_SSH,
                                "keyboard-interactive login to %s@%s: %s", c->user, c->hostpat,
                                vb_ssh_last_error(sess));
        if (c->kbd_round == 0) /* nothing was asked: retrying cannot help */
            break;
    }
    return vb_error_set(err, VB_ERR_AUTH_FAILED, VB_DOM_SSH,
                        "keyboard-interactive login to %s@%s failed (%d tries)", c->user,
                        c->hostpat, VB_SSH_AUTH_TRIES);
}

static int has_method(const char *list, const char *m)
{
    size_t n = strlen(m);
    for (const char *p = list; p && *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && strncmp(p, m, n) == 0)
            return 1;
        p += len;
        if (*p == ',')
            p++;
    }
    return 0;
}

int vb_ssh_authenticate(ssh_ctx *c, vb_error *err)
{
    static const char *const all = "agent,privkey,password,keyboard-interactive";
    LIBSSH2_SESSION *sess = c->s->session;
    const char *order = vb_uri_param_get(c->uri, "sshauth");
    if (!order || !*order)
        order = c->wire ? "password,keyboard-interactive" : all; /* not our agent or keys */
    for (const char *p = order; *p;) { /* validate first: a typo is not "unavailable" */
        size_t len = strcspn(p, ",");
        char m[32];
        snprintf(m, sizeof m, "%.*s", (int)(len < sizeof m ? len : sizeof m - 1), p);
        if (len >= sizeof m || !has_method(all, m))
            return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_SSH,
                                "sshauth: unknown method '%.*s' (use %s)", (int)(len % 64), p, all);
        p += len;
        if (*p == ',')
            p++;
    }
    char *list = libssh2_userauth_list(sess, c->user, (unsigned)strlen(c->user));
    if (!list) {
        if (libssh2_userauth_authenticated(sess))
            return 0; /* "none" was enough */
        return vb_error_set(err, VB_ERR_NO_CONNECT, VB_DOM_SSH,
                            "cannot ask %s for its authentication methods: %s", c->hostpat,
                            vb_ssh_last_error(sess));
    }
    char offered[512];
    snprintf(offered, sizeof offered, "%s", list);
    vb_error last;
    vb_error_clear(&last);
    int tried = 0;
    for (const char *p = order; *p;) {
        size_t len = strcspn(p, ",");
        char m[32];
        snprintf(m, sizeof m, "%.*s", (int)len, p);
        p += len;
        if (*p == ',')
            p++;
        const char *proto = strcmp(m, "agent") == 0 || strcmp(m, "privkey") == 0 ? "publickey" : m;
        if (!has_method(offered, proto))
            continue;
        tried++;
        int rc = strcmp(m, "agent") == 0     ? auth_agent(c, &last)
                 : strcmp(m, "privkey") == 0 ? auth_privkey(c, &last)
                 : strcmp(m, "password") == 0 ? auth_password(c, &last)
                                              : auth_kbdint(c, &last);
        if (rc > 0)
            return 0;
        if (rc < 0) {
            vb_error_copy(err, &last);
            return -1;
        }
    }
    if (tried && last.code != VB_ERR_OK) {
        vb_error_copy(err, &last);
        if (err)
            err->code = VB_ERR_AUTH_FAILED;
        return -1;
    }
    return vb_error_set(err, VB_ERR_AUTH_UNAVAILABLE, VB_DOM_SSH,
                        "no usable SSH authentication method: %s offers %s; this client tried %s",
                        c->hostpat, offered, order);
}
