/* Message decoding and typed field access. */
#include "vb_msg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int header_u32(const msgpack_object *o, const char *field, uint32_t *out, vb_error *err)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > UINT32_MAX)
        return vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_PROTO,
                            "message header field '%s' is not an unsigned 32-bit integer", field);
    *out = (uint32_t)o->via.u64;
    return 0;
}

static int decode_header(vb_msg *msg, const msgpack_object *root, vb_error *err)
{
    static const char *const names[] = { "program", "version", "type", "serial",
                                         "procedure", "status", "conn_id" };
    uint32_t *fields[] = { &msg->hdr.program, &msg->hdr.version, &msg->hdr.type,
                           &msg->hdr.serial, &msg->hdr.procedure, &msg->hdr.status,
                           &msg->hdr.conn_id };
    if (root->type != MSGPACK_OBJECT_ARRAY || root->via.array.size != VB_MSG_HEADER_FIELDS)
        return vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_PROTO,
                            "message is not an array of %u fields", VB_MSG_HEADER_FIELDS);
    for (size_t i = 0; i < 7; i++)
        if (header_u32(&root->via.array.ptr[i], names[i], fields[i], err) < 0)
            return -1;
    if (msg->hdr.type > VB_MSG_TYPE_MAX)
        return vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_PROTO,
                            "unknown message type %u", msg->hdr.type);
    if (msg->hdr.status > VB_STATUS_ERROR)
        return vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_PROTO,
                            "unknown message status %u", msg->hdr.status);
    msg->body = &root->via.array.ptr[7];
    return 0;
}

int vb_msg_decode(vb_msg *msg, uint8_t *payload, size_t len, vb_error *err)
{
    memset(msg, 0, sizeof *msg);
    msg->payload = payload;
    msg->payload_len = len;
    if (vb_msgpack_check(payload, len, VB_MSG_MAX_DEPTH, err) < 0)
        return -1;
    msgpack_unpacked_init(&msg->unpacked);
    msg->unpacked_live = 1;
    size_t off = 0;
    msgpack_unpack_return rc = msgpack_unpack_next(&msg->unpacked, (const char *)payload, len, &off);
    if (rc != MSGPACK_UNPACK_SUCCESS || off != len) /* unreachable after the check; kept as a guard */
        return vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_PROTO, "msgpack decoding failed (%d)", (int)rc);
    return decode_header(msg, &msg->unpacked.data, err);
}

void vb_msg_clear(vb_msg *msg)
{
    if (msg->unpacked_live)
        msgpack_unpacked_destroy(&msg->unpacked);
    vb_frame_free(msg->payload, msg->payload_len);
    memset(msg, 0, sizeof *msg);
}

int vb_msg_check_proc_size(const vb_msg *msg, vb_error *err)
{
    if (msg->hdr.type == VB_MSG_REPLY || msg->hdr.type == VB_MSG_CALLBACK_REPLY)
        return 0;
    const vb_proc_info *info = vb_proto_proc_lookup(msg->hdr.program, msg->hdr.procedure);
    if (!info || msg->payload_len <= info->max_body)
        return 0; /* unknown procedures are the dispatcher's business (NO_SUPPORT) */
    return vb_error_set(err, VB_ERR_TOO_LARGE, VB_DOM_PROTO,
                        "%s message of %zu bytes exceeds its limit of %u bytes",
                        info->name, msg->payload_len, info->max_body);
}

int vb_msg_error_body(const vb_msg *msg, vb_error *out, vb_error *err)
{
    vb_rd rd;
    uint32_t code, domain;
    const char *text;
    size_t text_len;
    if (vb_rd_init(&rd, msg->body, err) < 0 || vb_rd_u32(&rd, &code, err) < 0 ||
        vb_rd_u32(&rd, &domain, err) < 0 || vb_rd_str(&rd, &text, &text_len, err) < 0)
        return vb_error_prefix(err, "error reply"), -1;
    if (text_len >= VB_ERROR_MESSAGE_MAX)
        text_len = VB_ERROR_MESSAGE_MAX - 1;
    out->code = (int)code;
    out->domain = (int)domain;
    if (text_len)
        memcpy(out->message, text, text_len);
    out->message[text_len] = '\0';
    return 0;
}

int vb_reply_error(const vb_msg *reply, vb_error *err)
{
    vb_error server_err;
    if (vb_msg_error_body(reply, &server_err, err) < 0)
        return -1;
    if (server_err.code == VB_ERR_OK)
        server_err.code = VB_ERR_PROTOCOL;
    if (!server_err.message[0])
        snprintf(server_err.message, sizeof server_err.message,
                 "the server reported an error without a message (%s)",
                 vb_proto_error_code_name(server_err.code));
    vb_error_copy(err, &server_err);
    return -1;
}

/* ---- typed reader ------------------------------------------------------- */

int vb_rd_init(vb_rd *rd, const msgpack_object *array, vb_error *err)
{
    memset(rd, 0, sizeof *rd);
    if (!array || array->type != MSGPACK_OBJECT_ARRAY)
        return vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_PROTO, "message body is not an array");
    rd->items = array->via.array.ptr;
    rd->count = array->via.array.size;
    return 0;
}

int vb_rd_has_more(const vb_rd *rd)
{
    return rd->next < rd->count;
}

static const msgpack_object *next_field(vb_rd *rd, vb_error *err)
{
    if (rd->next >= rd->count) {
        vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_PROTO,
                     "message body has %u field(s); field %u is missing", rd->count, rd->next + 1);
        return NULL;
    }
    return &rd->items[rd->next++];
}

static int wrong_type(const vb_rd *rd, const char *want, vb_error *err)
{
    return vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_PROTO,
                        "message body field %u is not %s", rd->next, want);
}

int vb_rd_u64(vb_rd *rd, uint64_t *out, vb_error *err)
{
    const msgpack_object *o = next_field(rd, err);
    if (!o)
        return -1;
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return wrong_type(rd, "an unsigned integer", err);
    *out = o->via.u64;
    return 0;
}

int vb_rd_u32(vb_rd *rd, uint32_t *out, vb_error *err)
{
    uint64_t v;
    if (vb_rd_u64(rd, &v, err) < 0)
        return -1;
    if (v > UINT32_MAX)
        return wrong_type(rd, "an unsigned 32-bit integer", err);
    *out = (uint32_t)v;
    return 0;
}

int vb_rd_i64(vb_rd *rd, int64_t *out, vb_error *err)
{
    const msgpack_object *o = next_field(rd, err);
    if (!o)
        return -1;
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        *out = o->via.i64;
    else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX)
        *out = (int64_t)o->via.u64;
    else
        return wrong_type(rd, "a signed 64-bit integer", err);
    return 0;
}

int vb_rd_bool(vb_rd *rd, int *out, vb_error *err)
{
    const msgpack_object *o = next_field(rd, err);
    if (!o)
        return -1;
    if (o->type != MSGPACK_OBJECT_BOOLEAN)
        return wrong_type(rd, "a boolean", err);
    *out = o->via.boolean ? 1 : 0;
    return 0;
}

int vb_rd_str(vb_rd *rd, const char **ptr, size_t *len, vb_error *err)
{
    const msgpack_object *o = next_field(rd, err);
    if (!o)
        return -1;
    if (o->type == MSGPACK_OBJECT_NIL) {
        *ptr = NULL;
        *len = 0;
        return 0;
    }
    if (o->type != MSGPACK_OBJECT_STR)
        return wrong_type(rd, "a string", err);
    /* msgpack-c leaves the pointer of an empty string unset: "" is not nil */
    *ptr = o->via.str.size ? o->via.str.ptr : "";
    *len = o->via.str.size;
    return 0;
}

int vb_rd_strdup(vb_rd *rd, size_t max_len, char **out, vb_error *err)
{
    const char *p;
    size_t len;
    *out = NULL;
    if (vb_rd_str(rd, &p, &len, err) < 0)
        return -1;
    if (!p)
        return 0;
    if (len > max_len)
        return vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_PROTO,
                            "message body field %u is longer than %zu bytes", rd->next, max_len);
    if (memchr(p, '\0', len))
        return vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_PROTO,
                            "message body field %u contains a NUL byte", rd->next);
    char *copy = malloc(len + 1);
    if (!copy)
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_PROTO, "out of memory");
    memcpy(copy, p, len);
    copy[len] = '\0';
    *out = copy;
    return 0;
}

int vb_rd_bin(vb_rd *rd, const uint8_t **ptr, size_t *len, vb_error *err)
{
    const msgpack_object *o = next_field(rd, err);
    if (!o)
        return -1;
    if (o->type == MSGPACK_OBJECT_NIL) {
        *ptr = NULL;
        *len = 0;
    } else if (o->type == MSGPACK_OBJECT_BIN) { /* empty: pointer unset, see vb_rd_str */
        *ptr = o->via.bin.size ? (const uint8_t *)o->via.bin.ptr : (const uint8_t *)"";
        *len = o->via.bin.size;
    } else if (o->type == MSGPACK_OBJECT_STR) {
        *ptr = o->via.str.size ? (const uint8_t *)o->via.str.ptr : (const uint8_t *)"";
        *len = o->via.str.size;
    } else {
        return wrong_type(rd, "binary data", err);
    }
    return 0;
}

int vb_rd_array(vb_rd *rd, vb_rd *sub, vb_error *err)
{
    const msgpack_object *o = next_field(rd, err);
    if (!o)
        return -1;
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return wrong_type(rd, "an array", err);
    return vb_rd_init(sub, o, err);
}

int vb_rd_skip(vb_rd *rd, vb_error *err)
{
    return next_field(rd, err) ? 0 : -1;
}

uint32_t vb_msg_answer_type(uint32_t request_type)
{
    return request_type == VB_MSG_CALLBACK ? VB_MSG_CALLBACK_REPLY : VB_MSG_REPLY;
}

/* The order is the contract (docs/protocol.md §5.7): an outside client
 * learns which answer wins from it, and both daemons must agree. */
vb_intake vb_msg_server_intake(const vb_msg *msg, vb_error *err)
{
    const vb_msg_header *h = &msg->hdr;
    /* a PING over its size (5.5) is no PING: refused as a CALL, ignored as an EVENT */
    int ping = h->program == VB_PROG_KEEPALIVE && h->procedure == VB_KEEPALIVE_PROC_PING &&
               vb_msg_check_proc_size(msg, err) == 0;
    switch (h->type) {
    case VB_MSG_REPLY: return VB_INTAKE_IGNORE; /* a server sends no CALL a REPLY could answer */
    case VB_MSG_CALLBACK_REPLY: return VB_INTAKE_CALLBACK_REPLY;
    case VB_MSG_EVENT: return ping ? VB_INTAKE_PING : VB_INTAKE_IGNORE;
    default: break; /* CALL, CALLBACK: requests, each owed exactly one answer */
    }
    if (h->type == VB_MSG_CALLBACK) {
        vb_error_set(err, VB_ERR_NO_SUPPORT, VB_DOM_RPC,
                     "a server takes no CALLBACK: callbacks go from the server to its client");
        return VB_INTAKE_REFUSE;
    }
    if (h->serial == 0) {
        vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_RPC,
                     "serial 0 is reserved for a server's refusal of the connection; number "
                     "calls from 1 (closing this connection)");
        return VB_INTAKE_REFUSE_CLOSE;
    }
    if (h->status != VB_STATUS_OK) {
        vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_RPC, "a CALL must carry status OK, not %u",
                     h->status);
        return VB_INTAKE_REFUSE;
    }
    if (ping)
        return VB_INTAKE_PING;
    if (h->program == VB_PROG_KEEPALIVE && h->procedure == VB_KEEPALIVE_PROC_PING)
        return VB_INTAKE_REFUSE; /* TOO_LARGE, set above */
    if (h->program == VB_PROG_KEEPALIVE) {
        vb_error_set(err, VB_ERR_NO_SUPPORT, VB_DOM_RPC,
                     "KEEPALIVE procedure %u is not a request this server answers (only PING)",
                     h->procedure);
        return VB_INTAKE_REFUSE;
    }
    return VB_INTAKE_CALL;
}
