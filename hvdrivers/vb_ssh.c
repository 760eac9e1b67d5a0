/* The SSH transport of the remote driver: libssh2 session, host keys,
 * authentication through the credential source, and a
 * direct-streamlocal@openssh.com channel bridged to a local socketpair. */
#include "vb_ssh.h"

#include <errno.h>
#include <fcntl.h>
#include <libssh2.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vb_buf.h"
#include "vb_log.h"
#include "vb_net.h"
#include "vb_paths.h"
#include "vb_remote.h"
#include "vb_textesc.h"

#define PUMP_BUF 32768
#define SETUP_TIMEOUT_MS 30000
#define CLOSE_TIMEOUT_MS 2000
#define KEEPALIVE_S 30
#define STREAMLOCAL "direct-streamlocal@openssh.com"

struct vb_ssh {
    int sock;                   /* TCP to sshd */
    LIBSSH2_SESSION *session;
    LIBSSH2_CHANNEL *channel;
    int local;                  /* the pump's end of the socketpair */
    int stop[2];                /* a byte (or a close) on stop[1] ends the pump */
    pthread_t thread;
    int thread_started;
};

/* Everything the connect steps share. */
typedef struct ssh_ctx {
    const vb_uri *uri;
    const vb_cred_source *creds;
    vb_ssh *s;
    const char *host;
    int port;
    char user[256];
    char service[700];          /* "ssh://user@host:port": what asks, and the cache key */
    char hostpat[300];          /* "host" or "[host]:port", as known_hosts writes it */
    /* keyboard-interactive rounds: the callback cannot return an error */
    int kbd_retry;
    int kbd_round;
    int kbd_failed;
    vb_error kbd_err;
    vb_cred_request kbd_last;   /* the last round answered, for approve/reject */
    int wire;                   /* a client's URI (VB_OPEN_FROM_WIRE): none of our own keys */
} ssh_ctx;

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc;

static void global_init(void)
{
    init_rc = libssh2_init(0);
}

static const char *last_error(LIBSSH2_SESSION *sess)
{
    char *msg = NULL;
    if (!sess)
        return "no session";
    libssh2_session_last_error(sess, &msg, NULL, 0);
    return msg && *msg ? msg : "unknown error";
}

/* ssh's own files (~/.ssh/...), in the home vb_paths.h defines */
static char *home_path(const char *rel)
{
    char *home = vb_path_home(), *out = NULL;
    if (home && asprintf(&out, "%s/%s", home, rel) < 0)
        out = NULL;
    free(home);
    return out;
}

static int b64(const unsigned char *in, size_t len, char **out, int strip_pad)
{
    size_t cap = 4 * ((len + 2) / 3) + 1;
    char *buf = malloc(cap);
    if (!buf)
        return -1;
    int n = EVP_EncodeBlock((unsigned char *)buf, in, (int)len);
    if (n < 0) {
        free(buf);
        return -1;
    }
    buf[n] = '\0';
    while (strip_pad && n > 0 && buf[n - 1] == '=')
        buf[--n] = '\0';
    *out = buf;
    return 0;
}

/* Ask the credential source; a missing source or a refusal is an error. */
static int ask(ssh_ctx *c, vb_cred_request *req, vb_error *err)
{
    if (!c->creds || !c->creds->fn)
        return vb_error_set(err, VB_ERR_CRED_REQUIRED, VB_DOM_SSH,
                            "credentials required for %s, but nothing can ask for them",
                            req->service ? req->service : "an SSH login");
    vb_error_clear(err);
    if (c->creds->fn(req, c->creds->opaque, err) < 0) {
        if (err && err->code == VB_ERR_OK)
            vb_error_set(err, VB_ERR_AUTH_CANCELLED, VB_DOM_SSH, "cancelled");
        return -1;
    }
    return 0;
}

static void verdict(ssh_ctx *c, const vb_cred_request *req, int ok)
{
    if (!c->creds)
        return;
    void (*fn)(void *, const vb_cred_request *) = ok ? c->creds->approve : c->creds->reject;
    if (fn)
        fn(c->creds->opaque, req);
}

/* A question of kind VB_CRED_KIND_SSH_* about this SSH login. */
static int new_request(ssh_ctx *c, vb_cred_request *req, const char *kind, const char *service,
                       int retry, vb_error *err)
{
    memset(req, 0, sizeof *req);
    req->service = strdup(service ? service : c->service);
    req->retry = retry;
    if (!req->service ||
        vb_cred_request_set_target(req, kind, "ssh", c->host, (unsigned)c->port,
                                   c->user[0] ? c->user : NULL) < 0)
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_SSH, "out of memory");
    return 0;
}

/* ---- host keys ------------------------------------------------------------ */

static int key_info(int type, const char **name, const char **label, int *bit)
{
    switch (type) {
    case LIBSSH2_HOSTKEY_TYPE_ED25519:
        *name = "ssh-ed25519", *label = "ED25519", *bit = LIBSSH2_KNOWNHOST_KEY_ED25519;
        return 0;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_256:
        *name = "ecdsa-sha2-nistp256", *label = "ECDSA", *bit = LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
        return 0;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_384:
        *name = "ecdsa-sha2-nistp384", *label = "ECDSA", *bit = LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
        return 0;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_521:
        *name = "ecdsa-sha2-nistp521", *label = "ECDSA", *bit = LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
        return 0;
    case LIBSSH2_HOSTKEY_TYPE_RSA:
        *name = "ssh-rsa", *label = "RSA", *bit = LIBSSH2_KNOWNHOST_KEY_SSHRSA;
        return 0;
    case LIBSSH2_HOSTKEY_TYPE_DSS:
        *name = "ssh-dss", *label = "DSA", *bit = LIBSSH2_KNOWNHOST_KEY_SSHDSS;
        return 0;
    default:
        return -1;
    }
}

static char *own_known_hosts(const vb_uri *uri)
{
    const char *p = vb_uri_param_get(uri, "known_hosts");
    if (p && *p)
        return strdup(p);
    return vb_path_config_file("known_hosts");
}

static void mkdir_parents(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(buf, 0700);
            *p = '/';
        }
}

static int append_known_host(const char *path, const char *hostpat, const char *type,
                             const char *key, size_t klen, vb_error *err)
{
    char *enc = NULL;
    if (b64((const unsigned char *)key, klen, &enc, 0) < 0)
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_SSH, "out of memory");
    mkdir_parents(path);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        free(enc);
        return vb_error_set_errno(err, errno, VB_DOM_SSH, "cannot add the host key to %s", path);
    }
    struct stat st;
    char last = '\n';
    if (fstat(fd, &st) == 0 && st.st_size > 0) {
        int rfd = open(path, O_RDONLY | O_CLOEXEC);
        if (rfd >= 0) {
            if (pread(rfd, &last, 1, st.st_size - 1) != 1)
                last = '\n';
            close(rfd);
        }
    }
    char *line = NULL;
    int n = asprintf(&line, "%s%s %s %s\n", last == '\n' ? "" : "\n", hostpat, type, enc);
    free(enc);
    int rc = 0;
    if (n < 0)
        rc = vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_SSH, "out of memory");
    else if (vb_net_write_all(fd, line, (size_t)n, NULL) < 0)
        rc = vb_error_set_errno(err, errno, VB_DOM_SSH, "cannot add the host key to %s", path);
    free(line);
    if (close(fd) < 0 && rc == 0)
        rc = vb_error_set_errno(err, errno, VB_DOM_SSH, "cannot add the host key to %s", path);
    return rc;
}

static int check_host_key(ssh_ctx *c, vb_error *err)
{
    LIBSSH2_SESSION *sess = c->s->session;
    const char *verify = vb_uri_param_get(c->uri, "known_hosts_verify");
    if (!verify || !*verify)
        verify = "normal";
    if (strcmp(verify, "normal") && strcmp(verify, "auto") && strcmp(verify, "ignore"))
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_SSH,
                            "known_hosts_verify must be normal, auto or ignore, not '%s'", verify);
    if (strcmp(verify, "ignore") == 0) {
        vb_log(VB_LOG_WARN, "not checking the host key of %s (known_hosts_verify=ignore)",
               c->hostpat);
        return 0;
    }
    size_t klen = 0;
    int ktype = 0;
    const char *key = libssh2_session_hostkey(sess, &klen, &ktype);
    const char *tname, *label;
    int kbit;
    if (!key || klen == 0)
        return vb_error_set(err, VB_ERR_HOST_KEY, VB_DOM_SSH, "%s sent no host key", c->hostpat);
    if (key_info(ktype, &tname, &label, &kbit) < 0)
        return vb_error_set(err, VB_ERR_HOST_KEY, VB_DOM_SSH,
                            "%s sent a host key of a type this client does not know", c->hostpat);
    const char *hash = libssh2_hostkey_hash(sess, LIBSSH2_HOSTKEY_HASH_SHA256);
    char *fp = NULL;
    if (!hash || b64((const unsigned char *)hash, 32, &fp, 1) < 0)
        return vb_error_set(err, VB_ERR_HOST_KEY, VB_DOM_SSH,
                            "cannot compute the fingerprint of the host key of %s", c->hostpat);

    char *own = own_known_hosts(c->uri);
    char *user_file = home_path(".ssh/known_hosts");
    LIBSSH2_KNOWNHOSTS *kh = libssh2_knownhost_init(sess);
    int rc = -1;
    if (!own || !kh) {
        vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_SSH, "out of memory");
        goto out;
    }
    const char *files[2] = { own, user_file };
    for (int i = 0; i < 2; i++) {
        if (!files[i] || access(files[i], R_OK) != 0)
            continue;
        if (libssh2_knownhost_readfile(kh, files[i], LIBSSH2_KNOWNHOST_FILE_OPENSSH) < 0)
            vb_log(VB_LOG_WARN, "known_hosts %s: %s (entries after that line are ignored)",
                   files[i], last_error(sess));
    }
    int check = libssh2_knownhost_checkp(kh, c->host, c->port, key, klen,
                                         LIBSSH2_KNOWNHOST_TYPE_PLAIN |
                                             LIBSSH2_KNOWNHOST_KEYENC_RAW | kbit,
                                         NULL);
    if (check == LIBSSH2_KNOWNHOST_CHECK_MATCH) {
        rc = 0;
    } else if (check == LIBSSH2_KNOWNHOST_CHECK_MISMATCH) {
        vb_error_set(err, VB_ERR_HOST_KEY, VB_DOM_SSH,
                     "WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! The %s host key of %s "
                     "is now SHA256:%s, not the key recorded in %s%s%s. Someone may be "
                     "eavesdropping (man-in-the-middle), or the key was replaced. Refusing to "
                     "connect; if the change is expected, remove the old entry.",
                     label, c->hostpat, fp, own, user_file ? " or " : "",
                     user_file ? user_file : "");
    } else if (check == LIBSSH2_KNOWNHOST_CHECK_NOTFOUND && c->wire) {
        vb_error_set(err, VB_ERR_HOST_KEY, VB_DOM_SSH,
                     "the %s host key of %s (SHA256:%s) is not in this server's known_hosts; a "
                     "URI sent to this server cannot add it: ask its operator to record it",
                     label, c->hostpat, fp);
    } else if (check == LIBSSH2_KNOWNHOST_CHECK_NOTFOUND) {
        if (strcmp(verify, "auto") == 0) {
            rc = append_known_host(own, c->hostpat, tname, key, klen, err);
            goto out;
        }
        /* several lines, as ssh prints it: the broker keeps the line breaks
         * of this question only, so every part put in it is escaped here
         * (the host comes from the URI; label and fingerprint are ours) */
        char prompt[2200], challenge[128], service[400], shown_host[1800];
        vb_text_escape_into(c->hostpat, shown_host, sizeof shown_host);
        snprintf(prompt, sizeof prompt,
                 "The authenticity of host '%s' can't be established.\n%s key fingerprint is "
                 "SHA256:%s.\nAre you sure you want to continue connecting (yes/no)?",
                 shown_host, label, fp);
        snprintf(challenge, sizeof challenge, "%s SHA256:%s", tname, fp);
        snprintf(service, sizeof service, "ssh host key of %s", c->hostpat);
        vb_cred_request req;
        if (new_request(c, &req, VB_CRED_KIND_SSH_HOSTKEY, service, 0, err) < 0)
            goto out;
        if (vb_cred_request_add(&req, VB_CRED_ECHOPROMPT, prompt, challenge, "no") < 0) {
            vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_SSH, "out of memory");
        } else if (ask(c, &req, err) < 0) {
            vb_error_prefix(err, "unknown %s host key of %s (SHA256:%s)", label, c->hostpat, fp);
        } else {
            const char *a = req.items[0].result ? req.items[0].result : "";
            while (*a == ' ' || *a == '\t')
                a++;
            size_t alen = strcspn(a, " \t\r\n");
            if (alen == 3 && strncasecmp(a, "yes", 3) == 0)
                rc = append_known_host(own, c->hostpat, tname, key, klen, err);
            else
                vb_error_set(err, VB_ERR_HOST_KEY, VB_DOM_SSH,
                             "the %s host key of %s (SHA256:%s) was not accepted", label,
                             c->hostpat, fp);
        }
        vb_cred_request_clear(&req);
    } else {
        vb_error_set(err, VB_ERR_HOST_KEY, VB_DOM_SSH, "cannot check the host key of %s: %s",
                     c->hostpat, last_error(sess));
    }
out:
    if (kh)
        libssh2_knownhost_free(kh);
    free(own);
    free(user_file);
    free(fp);
    return rc;
}

/* ---- authentication ------------------------------------------------------- */

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
                     sock, last_error(sess));
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
                     last_error(sess));
        return 0;
    }
    char service[4200], prompt[4200];
    snprintf(service, sizeof service, "ssh private key %s", path);
    snprintf(prompt, sizeof prompt, "Enter passphrase for key '%s'", path);
    for (int attempt = 0; attempt < VB_SSH_AUTH_TRIES; attempt++) {
        vb_cred_request req;
        if (new_request(c, &req, VB_CRED_KIND_SSH_PASSPHRASE, service, attempt > 0, err) < 0)
            return -1;
        if (vb_cred_request_add(&req, VB_CRED_PASSPHRASE, prompt, NULL, NULL) < 0) {
            vb_cred_request_clear(&req);
            return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_SSH, "out of memory");
        }
        if (ask(c, &req, err) < 0) {
            vb_cred_request_clear(&req);
            return -1;
        }
        const char *pp = req.items[0].result ? req.items[0].result : "";
        int rc = libssh2_userauth_publickey_fromfile_ex(sess, c->user, ulen, NULL, path, pp);
        if (rc == 0) {
            verdict(c, &req, 1);
            vb_cred_request_clear(&req);
            return 1;
        }
        if (rc == LIBSSH2_ERROR_FILE) { /* could not decrypt: a wrong passphrase */
            verdict(c, &req, 0);
            vb_cred_request_clear(&req);
            continue;
        }
        /* the passphrase opened the key, the server refused it */
        verdict(c, &req, 1);
        vb_cred_request_clear(&req);
        vb_error_set(err, VB_ERR_AUTH_FAILED, VB_DOM_SSH, "the key %s was not accepted: %s", path,
                     last_error(sess));
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
        char *path = home_path(defaults[i]);
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
        if (new_request(c, &req, VB_CRED_KIND_SSH_PASSWORD, NULL, attempt > 0, err) < 0)
            return -1;
        if ((ask_name && vb_cred_request_add(&req, VB_CRED_AUTHNAME, uprompt, NULL, c->user) < 0) ||
            vb_cred_request_add(&req, VB_CRED_PASSPHRASE, pprompt, NULL, NULL) < 0) {
            vb_cred_request_clear(&req);
            return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_SSH, "out of memory");
        }
        if (ask(c, &req, err) < 0) {
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
            verdict(c, &req, 1);
            vb_cred_request_clear(&req);
            return 1;
        }
        if (rc != LIBSSH2_ERROR_AUTHENTICATION_FAILED) {
            vb_cred_request_clear(&req);
            return vb_error_set(err, rc == LIBSSH2_ERROR_PASSWORD_EXPIRED ? VB_ERR_AUTH_FAILED
                                                                           : VB_ERR_NO_CONNECT,
                                VB_DOM_SSH, "password login to %s@%s: %s", c->user, c->hostpat,
                                last_error(sess));
        }
        verdict(c, &req, 0);
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
    if (ok && new_request(c, &req, VB_CRED_KIND_SSH_PASSWORD, NULL,
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
    if (ok && ask(c, &req, &c->kbd_err) < 0)
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
                verdict(c, &c->kbd_last, 1);
            vb_cred_request_clear(&c->kbd_last);
            return 1;
        }
        if (c->kbd_last.nitems)
            verdict(c, &c->kbd_last, 0);
        vb_cred_request_clear(&c->kbd_last);
        if (rc != LIBSSH2_ERROR_AUTHENTICATION_FAILED)
            return vb_error_set(err, VB_ERR_NO_CONNECT, VB_DOM_SSH,
                                "keyboard-interactive login to %s@%s: %s", c->user, c->hostpat,
                                last_error(sess));
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

static int authenticate(ssh_ctx *c, vb_error *err)
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
                            last_error(sess));
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

/* ---- the tunnel ----------------------------------------------------------- */

static int open_channel(ssh_ctx *c, vb_error *err)
{
    const char *path = vb_uri_param_get(c->uri, "socket");
    if (!path || !*path)
        path = VB_REMOTE_DEFAULT_SOCKET;
    size_t plen = strlen(path);
    if (plen > 4096)
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_SSH, "socket path too long");
    /* string socket path, string reserved (""), uint32 reserved (0) */
    size_t mlen = 4 + plen + 4 + 4;
    unsigned char *msg = calloc(1, mlen);
    if (!msg)
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_SSH, "out of memory");
    msg[0] = (unsigned char)(plen >> 24);
    msg[1] = (unsigned char)(plen >> 16);
    msg[2] = (unsigned char)(plen >> 8);
    msg[3] = (unsigned char)plen;
    memcpy(msg + 4, path, plen);
    c->s->channel = libssh2_channel_open_ex(c->s->session, STREAMLOCAL, sizeof STREAMLOCAL - 1,
                                            LIBSSH2_CHANNEL_WINDOW_DEFAULT,
                                            LIBSSH2_CHANNEL_PACKET_DEFAULT, (const char *)msg,
                                            (unsigned)mlen);
    free(msg);
    if (!c->s->channel)
        return vb_error_set(err, VB_ERR_NO_CONNECT, VB_DOM_SSH,
                            "%s@%s cannot reach %s: %s (is vbhostd running there, may %s use "
                            "its socket, and does sshd allow AllowStreamLocalForwarding?)",
                            c->user, c->hostpat, path, last_error(c->s->session), c->user);
    return 0;
}

static int again(ssize_t n)
{
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
}

static void *pump(void *arg)
{
    vb_ssh *s = arg;
    /* the channel's plaintext both ways (vbhostd's frames: passwords in
     * CRED_FILL answers): buffers that are wiped once sent and when freed */
    vb_buf to_local = VB_BUF_INIT, to_chan = VB_BUF_INIT;
    int local_eof = 0;
    if (vb_buf_reserve(&to_local, PUMP_BUF) < 0 || vb_buf_reserve(&to_chan, PUMP_BUF) < 0)
        goto done;
    for (;;) {
        int progress = 0;
        if (vb_buf_len(&to_local) == 0) {
            ssize_t n = libssh2_channel_read(s->channel, (char *)vb_buf_space(&to_local), PUMP_BUF);
            if (n > 0) {
                vb_buf_added(&to_local, (size_t)n), progress = 1;
            } else if (n == LIBSSH2_ERROR_EAGAIN) {
                /* nothing yet */
            } else if (n < 0 || libssh2_channel_eof(s->channel)) {
                break; /* the session died, or vbhostd closed: the client sees EOF */
            }
        }
        if (vb_buf_len(&to_local)) {
            ssize_t w = send(s->local, vb_buf_data(&to_local), vb_buf_len(&to_local),
                             MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0) {
                vb_buf_consume(&to_local, (size_t)w), progress = 1;
            } else if (!again(w)) {
                break; /* the client went away */
            }
        }
        if (vb_buf_len(&to_chan) == 0 && !local_eof) {
            ssize_t r = recv(s->local, vb_buf_space(&to_chan), PUMP_BUF, MSG_DONTWAIT);
            if (r > 0)
                vb_buf_added(&to_chan, (size_t)r), progress = 1;
            else if (r == 0 || !again(r))
                local_eof = 1;
        }
        if (vb_buf_len(&to_chan)) {
            ssize_t w = libssh2_channel_write(s->channel, (const char *)vb_buf_data(&to_chan),
                                              vb_buf_len(&to_chan));
            if (w > 0) {
                vb_buf_consume(&to_chan, (size_t)w), progress = 1;
            } else if (w != LIBSSH2_ERROR_EAGAIN) {
                break;
            }
        }
        if (local_eof && vb_buf_len(&to_chan) == 0)
            break; /* the client closed its end: we are done */
        if (progress)
            continue;
        int next = 0;
        if (libssh2_keepalive_send(s->session, &next) < 0)
            next = 0;
        int dirs = libssh2_session_block_directions(s->session);
        struct pollfd p[3] = {
            { .fd = s->stop[0], .events = POLLIN },
            { .fd = s->sock, .events = 0 },
            { .fd = s->local, .events = 0 },
        };
        if (vb_buf_len(&to_local) == 0 || (dirs & LIBSSH2_SESSION_BLOCK_INBOUND))
            p[1].events |= POLLIN;
        if (dirs & LIBSSH2_SESSION_BLOCK_OUTBOUND)
            p[1].events |= POLLOUT;
        if (vb_buf_len(&to_chan) == 0 && !local_eof)
            p[2].events |= POLLIN;
        if (vb_buf_len(&to_local))
            p[2].events |= POLLOUT;
        int rc = poll(p, 3, next > 0 ? next * 1000 : -1);
        if (rc < 0 && errno != EINTR)
            break;
        if (rc > 0 && p[0].revents)
            break;
    }
done:
    vb_buf_free(&to_local);
    vb_buf_free(&to_chan);
    shutdown(s->local, SHUT_RDWR); /* the client's next read sees end of file */
    return NULL;
}

/* ---- connect / close ------------------------------------------------------ */

int vb_ssh_connect(const vb_uri *uri, const vb_cred_source *creds, unsigned flags, int *fd_out,
                   vb_ssh **out, vb_error *err)
{
    *fd_out = -1;
    *out = NULL;
    if ((flags & VB_OPEN_FROM_WIRE) && vb_driver_check_wire_uri(uri, err) < 0)
        return -1;
    if (!uri->host || !*uri->host)
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_SSH,
                            "an ssh URI needs a host: DRIVER+ssh://[USER@]HOST[:PORT]/PATH");
    pthread_once(&init_once, global_init);
    if (init_rc != 0)
        return vb_error_set(err, VB_ERR_INTERNAL, VB_DOM_SSH, "libssh2_init failed (%d)", init_rc);
    ssh_ctx c;
    memset(&c, 0, sizeof c);
    c.uri = uri;
    c.creds = creds;
    c.wire = (flags & VB_OPEN_FROM_WIRE) != 0;
    c.host = uri->host;
    c.port = uri->port ? uri->port : VB_SSH_DEFAULT_PORT;
    if (uri->user && *uri->user) {
        snprintf(c.user, sizeof c.user, "%s", uri->user);
    } else {
        char pwbuf[4096];
        struct passwd pw, *pwp = NULL;
        if (getpwuid_r(geteuid(), &pw, pwbuf, sizeof pwbuf, &pwp) != 0 || !pwp)
            return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_SSH,
                                "no user in the URI and no name for uid %u", (unsigned)geteuid());
        snprintf(c.user, sizeof c.user, "%s", pwp->pw_name);
    }
    int v6 = strchr(c.host, ':') != NULL;
    if (c.port == VB_SSH_DEFAULT_PORT)
        snprintf(c.hostpat, sizeof c.hostpat, "%s", c.host);
    else
        snprintf(c.hostpat, sizeof c.hostpat, "[%s]:%d", c.host, c.port);
    snprintf(c.service, sizeof c.service, "ssh://%s@%s%s%s:%d", c.user, v6 ? "[" : "", c.host,
             v6 ? "]" : "", c.port);

    vb_ssh *s = calloc(1, sizeof *s);
    if (!s)
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_SSH, "out of memory");
    s->sock = s->local = s->stop[0] = s->stop[1] = -1;
    c.s = s;
    int pair[2] = { -1, -1 };
    s->sock = vb_net_connect_tcp(c.host, c.port, 10000, err);
    if (s->sock < 0)
        goto fail;
    s->session = libssh2_session_init_ex(NULL, NULL, NULL, &c);
    if (!s->session) {
        vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_SSH, "out of memory");
        goto fail;
    }
    libssh2_session_set_blocking(s->session, 1);
    libssh2_session_set_timeout(s->session, SETUP_TIMEOUT_MS);
    if (libssh2_session_handshake(s->session, s->sock) != 0) {
        vb_error_set(err, VB_ERR_NO_CONNECT, VB_DOM_SSH, "SSH handshake with %s failed: %s",
                     c.hostpat, last_error(s->session));
        goto fail;
    }
    if (check_host_key(&c, err) < 0 || authenticate(&c, err) < 0 || open_channel(&c, err) < 0)
        goto fail;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) {
        vb_error_set_errno(err, errno, VB_DOM_SSH, "socketpair");
        goto fail;
    }
    s->local = pair[1];
    if (pipe2(s->stop, O_CLOEXEC | O_NONBLOCK) < 0) {
        vb_error_set_errno(err, errno, VB_DOM_SSH, "pipe");
        goto fail;
    }
    vb_net_set_nonblock(s->local, 1);
    *libssh2_session_abstract(s->session) = NULL; /* c lives on this stack only */
    libssh2_session_set_blocking(s->session, 0);
    libssh2_keepalive_config(s->session, 1, KEEPALIVE_S);
    if (pthread_create(&s->thread, NULL, pump, s) != 0) {
        vb_error_set(err, VB_ERR_SYSTEM, VB_DOM_SSH, "cannot start the SSH pump thread");
        goto fail;
    }
    s->thread_started = 1;
    *fd_out = pair[0];
    *out = s;
    return 0;
fail:
    if (pair[0] >= 0)
        close(pair[0]);
    if (s->session)
        *libssh2_session_abstract(s->session) = NULL;
    vb_cred_request_clear(&c.kbd_last);
    vb_ssh_close(s);
    return -1;
}

void vb_ssh_close(vb_ssh *s)
{
    if (!s)
        return;
    if (s->thread_started) {
        char b = 1;
        if (write(s->stop[1], &b, 1) < 0) {
            /* full pipe: the pump is already told */
        }
        pthread_join(s->thread, NULL);
    }
    if (s->session) {
        libssh2_session_set_timeout(s->session, CLOSE_TIMEOUT_MS);
        libssh2_session_set_blocking(s->session, 1);
        /* A host that leaves the channel's close unanswered past the timeout
         * is waited for no longer: with the socket shut, libssh2 frees the
         * channel and the session without asking it (a free that times out
         * keeps them, a leak per silent host). */
        if (s->channel && libssh2_channel_free(s->channel) != 0 && s->sock >= 0)
            shutdown(s->sock, SHUT_RDWR);
        libssh2_session_disconnect(s->session, "closed by vbroker");
        if (libssh2_session_free(s->session) != 0 && s->sock >= 0) {
            shutdown(s->sock, SHUT_RDWR);
            libssh2_session_free(s->session);
        }
    }
    if (s->sock >= 0)
        close(s->sock);
    if (s->local >= 0)
        close(s->local);
    if (s->stop[0] >= 0)
        close(s->stop[0]);
    if (s->stop[1] >= 0)
        close(s->stop[1]);
    free(s);
}
