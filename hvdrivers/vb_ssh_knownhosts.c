/* The SSH transport's host key check: the server's key against our own
 * known_hosts and ~/.ssh/known_hosts; an unknown key is asked about through
 * the credential source (or added, or refused, as known_hosts_verify= and
 * VB_OPEN_FROM_WIRE say) and recorded in our own file. */
#include "vb_ssh_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vb_log.h"
#include "vb_net.h"
#include "vb_paths.h"
#include "vb_textesc.h"

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

int vb_ssh_check_host_key(ssh_ctx *c, vb_error *err)
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
    char *user_file = vb_ssh_home_path(".ssh/known_hosts");
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
                   files[i], vb_ssh_last_error(sess));
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
        if (vb_ssh_new_request(c, &req, VB_CRED_KIND_SSH_HOSTKEY, service, 0, err) < 0)
            goto out;
        if (vb_cred_request_add(&req, VB_CRED_ECHOPROMPT, prompt, challenge, "no") < 0) {
            vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_SSH, "out of memory");
        } else if (vb_driver_ask(c->creds, &req, VB_DOM_SSH, SSH_LOGIN, err) < 0) {
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
                     c->hostpat, vb_ssh_last_error(sess));
    }
out:
    if (kh)
        libssh2_knownhost_free(kh);
    free(own);
    free(user_file);
    free(fp);
    return rc;
}
