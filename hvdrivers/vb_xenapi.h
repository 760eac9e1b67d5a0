/*
 * vb_xenapi.h — the "xenapi" driver: XenAPI hosts (XenServer, XCP-ng) over
 * XML-RPC on HTTPS or HTTP. URI: xenapi://[user@]host[:port]/ with
 * transport=http, cafile=PATH, no_verify=1, timeout=SECONDS.
 *
 * It asks its credential source for the user name and password (service
 * "xenapi://HOST:PORT/"), at open and again whenever the host ends the
 * session, so the source must stay usable for the connection's whole life.
 * It never prints, and never puts a password or a session ref in an error.
 */
#ifndef VB_XENAPI_H
#define VB_XENAPI_H

#include "vb_driver.h"

extern const vb_driver vb_xenapi_driver;
/* The port a XenAPI URI reaches (its own, else 443, or 80 with
 * transport=http); 0 when the URI is not one this driver opens. */
int vb_xenapi_uri_port(const vb_uri *uri);

#endif
