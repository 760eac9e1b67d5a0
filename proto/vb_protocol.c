#include "vb_protocol.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* the broker's socket path: vb_path_broker_socket (vb_paths.c) */

#define VB_PROC_ROW(prog, name, num, auth, runs, login, since, body, max)                   \
    { prog, num, #name, auth, VB_RUN_##runs, login, since, VB_BODY_##body, max },

static const vb_proc_info keepalive_procs[] = {
#define VB_X(...) VB_PROC_ROW(VB_PROG_KEEPALIVE, __VA_ARGS__)
    VB_KEEPALIVE_PROCS(VB_X)
#undef VB_X
};
static const vb_proc_info host_procs[] = {
#define VB_X(...) VB_PROC_ROW(VB_PROG_HOST, __VA_ARGS__)
    VB_HOST_PROCS(VB_X)
#undef VB_X
};
static const vb_proc_info broker_procs[] = {
#define VB_X(...) VB_PROC_ROW(VB_PROG_BROKER, __VA_ARGS__)
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

const vb_proc_info *vb_proto_proc_lookup_version(uint32_t program, uint32_t version,
                                                 uint32_t procedure)
{
    const vb_proc_info *info = vb_proto_proc_lookup(program, procedure);
    return info && info->since <= version ? info : NULL;
}

int vb_proto_host_proc_may_log_in(uint32_t procedure)
{
    const vb_proc_info *info = vb_proto_proc_lookup(VB_PROG_HOST, procedure);
    return info && info->logs_in;
}

const char *vb_proto_body_name(enum vb_body body)
{
    static const char *const names[] = {
#define VB_X(name, call, reply) #name,
        VB_BODIES(VB_X)
#undef VB_X
    };
    return (unsigned)body < VB_BODY_COUNT ? names[body] : "UNKNOWN";
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
