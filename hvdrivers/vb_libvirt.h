/*
 * vb_libvirt.h — the "libvirt" driver: any libvirt host through libvirt's
 * own client library (libvirt.so: virConnectOpenAuth), never a
 * re-implementation of its protocol.
 *
 *   libvirt:LIBVIRT-URI     e.g. libvirt:qemu+ssh://root@h/system,
 *                           libvirt:test+tcp://127.0.0.1:16509/default
 *
 * (util/vb_uri.h parses it as driver "libvirt" with LIBVIRT-URI in path.)
 * libvirt's credential questions (VIR_CRED_*, all items of one SASL step at
 * once) become one vb_cred_request of kind "libvirt" for the service
 * "libvirt:LIBVIRT-URI", target scheme "libvirt" and the URI's host, port
 * and user; three tries, reject() for each refused answer, approve() for
 * the one that worked.
 *
 * Sharing: one libvirt connection per LIBVIRT-URI serves every open of it
 * in the process (the URI names host and user; the broker is one user's),
 * with libvirt keepalive and a close callback on libvirt's event loop (a
 * thread of this driver). A connection found dead (libvirtd restarted, the
 * keepalive gave up, a logout) is replaced by a new login through the
 * opener's credential source at the next open or call. VB_OPEN_PRIVATE
 * opens share nothing. A VB_OPEN_FROM_WIRE open (a client of vbhostd) is
 * refused unless its URI is DRIVER+tcp://HOST[:PORT]/PATH without
 * parameters and this process has no libvirt auth.conf, and its login must
 * have asked its credential source (else it rode this process's own access
 * and is closed): libvirt must never reach a host as the daemon.
 */
#ifndef VB_LIBVIRT_H
#define VB_LIBVIRT_H

#include <stddef.h>
#include <stdint.h>

#include "vb_driver.h"

#define VB_CRED_KIND_LIBVIRT "libvirt" /* a libvirt login (auth.conf SERVICE "libvirt") */

extern const vb_driver vb_libvirt_driver;

/* Close shared connections nobody uses after ms (default 300 s; 0: at once). */
void vb_libvirt_driver_set_idle(uint64_t ms);
/* libvirt keepalive for connections opened from now on: a ping every
 * interval_s, the connection given up after count unanswered (0: off). */
void vb_libvirt_driver_set_keepalive(unsigned interval_s, unsigned count);
/* Close idle and dead shared connections now. */
void vb_libvirt_driver_reap(void);
/* Logout: close the shared connection of "libvirt:URI" (NULL: all); its
 * opens log in again at their next call. Returns how many were closed. */
unsigned vb_libvirt_driver_close_uri(const char *uri_text);
/* The shared connections, for status (endpoint "libvirt:URI", auth_type
 * "libvirt", server_id ""). */
size_t vb_libvirt_driver_list(vb_transport_info *out, size_t max);
/* vbhostd's allow-list check: host and port (default 16509) of a libvirt
 * URI a client may send (DRIVER+tcp://HOST[:PORT]/PATH, no parameters);
 * -1 with err saying what is refused otherwise. */
int vb_libvirt_wire_endpoint(const char *libvirt_uri, char *host, size_t host_len, int *port,
                             vb_error *err);
/* virConnectOpenAuth calls that succeeded (logins), for tests. */
unsigned vb_libvirt_driver_logins(void);

#endif
