/*
 * vb_sasl_des.c — makes the DIGEST-MD5 plugin's 3DES layer work again, so a
 * login need not take its RC4 layer (docs/security.md, "DIGEST-MD5 layers").
 *
 * Debian's libdigestmd5 (cyrus-sasl 2.1.28) keys its "des" and "3des"
 * layers with DES_key_sched() on 56 key bits spread over 8 bytes without
 * setting the parity bits. Written for OpenSSL 1.x, where DES_key_sched()
 * ignored parity; OpenSSL 3's checks it and refuses almost every such key
 * (-1), so "3des" fails with "failed to init cipher '3des'" and RC4 is the
 * only layer left. RC4 costs a fresh OpenSSL library context and leaves about
 * 23 KB behind per login (bench/README.md).
 *
 * This file defines DES_key_sched in the executable. The plugin is loaded
 * later and its reference resolves to the first definition in the global
 * scope: the executable's (the link exports it, Makefile: EXPORT_DES). It
 * sets the parity bits (which DES never uses: the key schedule is the one
 * OpenSSL 1.x computed) and then calls OpenSSL's checked function, which
 * still refuses the weak keys. Nothing else in the process calls the
 * deprecated function; OpenSSL's own DES code uses DES_set_key_unchecked.
 */
#define OPENSSL_SUPPRESS_DEPRECATED /* the plugin's API is deprecated, not gone */
#include "vb_sasl.h"

#include <dlfcn.h>
#include <openssl/crypto.h>
#include <openssl/des.h>
#include <pthread.h>
#include <string.h>

int DES_key_sched(const_DES_cblock *key, DES_key_schedule *schedule);

int DES_key_sched(const_DES_cblock *key, DES_key_schedule *schedule)
{
    DES_cblock k;
    memcpy(k, key, sizeof k);
    DES_set_odd_parity(&k);
    int rc = DES_set_key_checked(&k, schedule);
    OPENSSL_cleanse(k, sizeof k);
    return rc;
}

static int usable;
static pthread_once_t probed = PTHREAD_ONCE_INIT;

/* What the plugin will get: the first definition in the global scope (the
 * executable's when exported, else OpenSSL's; the plugin's versioned
 * reference takes an unversioned definition of the executable, dlvsym would
 * not), called with a key whose parity is wrong (OpenSSL 3's refuses it). */
static void probe(void)
{
    typedef int (*key_sched_fn)(const_DES_cblock *, DES_key_schedule *);
    key_sched_fn fn = (key_sched_fn)dlsym(RTLD_DEFAULT, "DES_key_sched");
    /* 0123456789abcdef with every parity bit flipped */
    DES_cblock even = { 0x00, 0x22, 0x44, 0x66, 0x88, 0xaa, 0xcc, 0xee };
    DES_key_schedule ks;
    usable = fn && fn(&even, &ks) == 0;
    OPENSSL_cleanse(&ks, sizeof ks);
}

int vb_sasl_3des_usable(void)
{
    pthread_once(&probed, probe);
    return usable;
}
