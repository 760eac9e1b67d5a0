#include "vb_protocol.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* the broker's socket path: vb_path_broker_socket (vb_paths.c) */

static const vb_proc_info keepalive_procs[] = {
#define VB_X(name, num, auth, max) { VB_PROG_KEEPALIVE, num, #name, auth, max },
    VB_KEEPALIVE_PROCS(VB_X)
#undef VB_X
};
static const vb_proc_info host_procs[] = {
#define VB_X(name, num, auth, max) { VB_PROG_HOST, num, #name, auth, max },
    VB_HOST_PROCS(VB_X)
#undef VB_X
};
static const vb_proc_info broker_procs[] = {
#define VB_X(name, num, auth, max) { VB_PROG_BROKER, num, #name, auth, max },
    VB_BROKER_PROCS(VB_X)
#undef VB_X
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const vb_proc_info *find_proc(const vb_proc_info *table, size_t n, uint32_t procedure)
{
    for (size_t i = 0; i < n; i++)
        if (table[i].number == procedure)
            return &table[i];
    return NULL;
}

const vb_proc_info *vb_proto_proc_lookup(uint32_t program, uint32_t procedure)
{
    switch (program) {
    case VB_PROG_KEEPALIVE: return find_proc(keepalive_procs, COUNT(keepalive_procs), procedure);
    case VB_PROG_HOST:      return find_proc(host_procs, COUNT(host_procs), procedure);
    case VB_PROG_BROKER:    return find_proc(broker_procs, COUNT(broker_procs), procedure);
    default:                return NULL;
    }
}

uint32_t vb_proto_program_version(uint32_t program)
{
    switch (program) {
#define VB_X(name, num, ver) case num: return ver;
    VB_PROGRAMS(VB_X)
#undef VB_X
    default: return 0;
    }
}

int vb_proto_host_proc_may_log_in(uint32_t procedure)
{
    switch (procedure) {
    case VB_HOST_PROC_OPEN:
    case VB_HOST_PROC_GET_HOSTNAME:
    case VB_HOST_PROC_LIST_DOMAINS:
    case VB_HOST_PROC_DOMAIN_START:
    case VB_HOST_PROC_DOMAIN_SHUTDOWN:
        return 1;
    default: /* AUTH_*, TOKEN_*, CLOSE, CRED_*: never */
        return 0;
    }
}

const char *vb_proto_program_name(uint32_t program)
{
    switch (program) {
#define VB_X(name, num, ver) case num: return #name;
    VB_PROGRAMS(VB_X)
#undef VB_X
    default: return "UNKNOWN";
    }
}

const char *vb_proto_error_code_name(int code)
{
    switch (code) {
#define VB_X(name, num, str) case num: return #name;
    VB_ERROR_CODES(VB_X)
#undef VB_X
    default: return "UNKNOWN";
    }
}

const char *vb_proto_error_code_text(int code)
{
    switch (code) {
#define VB_X(name, num, str) case num: return str;
    VB_ERROR_CODES(VB_X)
#undef VB_X
    default: return "unknown error";
    }
}

const char *vb_proto_error_domain_name(int domain)
{
    switch (domain) {
#define VB_X(name, num, str) case num: return str;
    VB_ERROR_DOMAINS(VB_X)
#undef VB_X
    default: return "unknown";
    }
}

const char *vb_proto_msg_type_name(uint32_t type)
{
    static const char *const names[] = { "CALL", "REPLY", "CALLBACK", "CALLBACK_REPLY", "EVENT" };
    return type <= VB_MSG_TYPE_MAX ? names[type] : "UNKNOWN";
}
