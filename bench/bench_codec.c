/*
 * bench_codec — what the wire codec (proto/) costs per message, nothing more.
 *
 * Two synthetic messages, shaped like real traffic but with made-up bodies
 * (the procedures' bodies are defined as they are implemented):
 *   small — a GET_HOSTNAME-like REPLY: body [hostname]
 *   large — a LIST_DOMAINS-like REPLY: body [[[id, name, uuid, state,
 *           memory_kib, vcpus] x 500]], about 64 KiB on the wire
 * For each, two operations:
 *   encode — vb_enc_begin, body, vb_enc_finish, free the frame
 *   decode — frame reader (the whole frame in one feed), vb_msg_decode (raw
 *            validator + msgpack-c unpack + header), every body field read
 *            through vb_rd_* into a struct, vb_msg_clear
 * Each (message, operation) pair runs a number of timed rounds of a
 * calibrated iteration count; we report the median, min and max over the
 * rounds of the ns per message. No sockets and no I/O: these numbers are the
 * floor under every end-to-end figure, never a substitute for one.
 *
 *   bench_codec [--rounds N] [--json PATH]   (default bench/results/latest.json)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "vb_msg.h"

#define DEFAULT_ROUNDS 7
#define MAX_ROUNDS 101
#define ROUND_TARGET_NS 50000000ull /* each timed round runs about 50 ms */
#define LARGE_DOMAINS 500
#define NAME_LEN 80                 /* makes the large frame about 64 KiB */
#define UUID_LEN 36

#define STR_(x) #x
#define STR(x) STR_(x)
#if defined(__clang__)
#define COMPILER "clang " STR(__clang_major__) "." STR(__clang_minor__) "." STR(__clang_patchlevel__)
#elif defined(__GNUC__)
#define COMPILER "gcc " __VERSION__
#else
#define COMPILER __VERSION__
#endif

static volatile uint64_t sink; /* keeps the optimizer from dropping the work */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, const char *why)
{
    fprintf(stderr, "bench_codec: %s: %s\n", what, why);
    exit(1);
}

/* ---- message contents ---------------------------------------------------- */

typedef struct row {
    int64_t id;
    char name[NAME_LEN + 1];
    char uuid[UUID_LEN + 1];
    uint32_t state;
    uint64_t memory_kib;
    uint32_t vcpus;
} row;

static const char hostname[] = "xen-host-01.lab.example.org";
static row rows[LARGE_DOMAINS];

static void make_rows(void)
{
    for (int i = 0; i < LARGE_DOMAINS; i++) {
        row *r = &rows[i];
        r->id = i % 3 ? i : -1; /* a third shut off */
        /* fixed width: the name is exactly NAME_LEN bytes, "bench-domain-0042-xxx…" */
        char prefix[32];
        int plen = snprintf(prefix, sizeof prefix, "bench-domain-%04d-", i);
        memset(r->name, 'x', NAME_LEN);
        memcpy(r->name, prefix, (size_t)plen);
        r->name[NAME_LEN] = '\0';
        snprintf(r->uuid, sizeof r->uuid, "%08x-0000-4000-8000-%012x", 0x5eed0000u + (unsigned)i,
                 (unsigned)i * 7919u);
        r->state = i % 3 ? 1 : 5;
        r->memory_kib = (uint64_t)(512 + (i % 8) * 512) * 1024;
        r->vcpus = 1 + (uint32_t)(i % 4);
    }
}

static const vb_msg_header reply_hdr_small = { VB_PROG_HOST, VB_PROG_HOST_VERSION, VB_MSG_REPLY, 1,
                                               VB_HOST_PROC_GET_HOSTNAME, VB_STATUS_OK, 0 };
static const vb_msg_header reply_hdr_large = { VB_PROG_HOST, VB_PROG_HOST_VERSION, VB_MSG_REPLY, 2,
                                               VB_HOST_PROC_LIST_DOMAINS, VB_STATUS_OK, 0 };

static void body_small(vb_enc *e)
{
    vb_enc_array(e, 1);
    vb_enc_str(e, hostname);
}

static void body_large(vb_enc *e)
{
    vb_enc_array(e, 1);
    vb_enc_array(e, LARGE_DOMAINS);
    for (int i = 0; i < LARGE_DOMAINS; i++) {
        const row *r = &rows[i];
        vb_enc_array(e, 6);
        vb_enc_i64(e, r->id);
        vb_enc_strn(e, r->name, NAME_LEN);
        vb_enc_strn(e, r->uuid, UUID_LEN);
        vb_enc_u64(e, r->state);
        vb_enc_u64(e, r->memory_kib);
        vb_enc_u64(e, r->vcpus);
    }
}

/* ---- typed reads, as a handler would do them ------------------------------ */

static int copy_str(vb_rd *rd, char *dst, size_t cap, vb_error *err)
{
    const char *p;
    size_t len;
    if (vb_rd_str(rd, &p, &len, err) < 0)
        return -1;
    if (!p || len >= cap)
        return vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_PROTO, "bad string field");
    memcpy(dst, p, len);
    dst[len] = '\0';
    return 0;
}

static int read_small(const vb_msg *msg, uint64_t *check, vb_error *err)
{
    vb_rd rd;
    char host[256];
    if (vb_rd_init(&rd, msg->body, err) < 0 || copy_str(&rd, host, sizeof host, err) < 0)
        return -1;
    *check += (uint64_t)strlen(host) + (uint8_t)host[0];
    return 0;
}

static row decoded[LARGE_DOMAINS];

static int read_large(const vb_msg *msg, uint64_t *check, vb_error *err)
{
    vb_rd rd, list;
    if (vb_rd_init(&rd, msg->body, err) < 0 || vb_rd_array(&rd, &list, err) < 0)
        return -1;
    size_t n = 0;
    while (vb_rd_has_more(&list)) {
        vb_rd f;
        uint32_t state, vcpus;
        if (n == LARGE_DOMAINS)
            return vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_PROTO, "too many rows");
        row *r = &decoded[n++];
        if (vb_rd_array(&list, &f, err) < 0 || vb_rd_i64(&f, &r->id, err) < 0 ||
            copy_str(&f, r->name, sizeof r->name, err) < 0 ||
            copy_str(&f, r->uuid, sizeof r->uuid, err) < 0 || vb_rd_u32(&f, &state, err) < 0 ||
            vb_rd_u64(&f, &r->memory_kib, err) < 0 || vb_rd_u32(&f, &vcpus, err) < 0)
            return -1;
        r->state = state;
        r->vcpus = vcpus;
        *check += r->memory_kib + r->vcpus;
    }
    *check += n;
    return 0;
}

/* ---- the two operations ---------------------------------------------------- */

typedef struct bcase {
    const char *name;
    const char *shape;
    const vb_msg_header *hdr;
    void (*body)(vb_enc *);
    int (*read)(const vb_msg *, uint64_t *, vb_error *);
    uint8_t *frame; /* one encoded copy, input of the decode runs */
    size_t frame_len;
} bcase;

static void encode_once(const bcase *c, uint64_t *check)
{
    vb_enc enc;
    uint8_t *frame;
    size_t len;
    vb_error err;
    vb_enc_begin(&enc, c->hdr);
    c->body(&enc);
    if (vb_enc_finish(&enc, VB_FRAME_MAX_POSTAUTH, &frame, &len, &err) < 0)
        die("encode", err.message);
    *check += len + frame[len - 1];
    vb_frame_free(frame, len);
}

static void decode_once(const bcase *c, uint64_t *check)
{
    vb_frame_reader r;
    vb_error err;
    size_t used, plen;
    vb_msg msg;
    vb_frame_reader_init(&r, VB_FRAME_MAX_POSTAUTH);
    if (vb_frame_reader_feed(&r, c->frame, c->frame_len, &used, &err) != VB_FRAME_READY ||
        used != c->frame_len)
        die("frame reader", "frame not complete");
    uint8_t *payload = vb_frame_reader_take(&r, &plen);
    if (vb_msg_decode(&msg, payload, plen, &err) < 0 || c->read(&msg, check, &err) < 0)
        die("decode", err.message);
    *check += msg.hdr.serial;
    vb_msg_clear(&msg);
}

typedef void (*op_fn)(const bcase *, uint64_t *);

static uint64_t run_iters(op_fn op, const bcase *c, uint64_t iters)
{
    uint64_t check = 0;
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < iters; i++)
        op(c, &check);
    uint64_t t1 = now_ns();
    sink += check;
    return t1 - t0;
}

/* Enough iterations that one round takes about ROUND_TARGET_NS (and warms up). */
static uint64_t calibrate(op_fn op, const bcase *c)
{
    uint64_t iters = 1, t;
    while ((t = run_iters(op, c, iters)) < ROUND_TARGET_NS / 8 && iters < (1ull << 30))
        iters *= 2;
    uint64_t per = t / iters ? t / iters : 1;
    uint64_t want = ROUND_TARGET_NS / per;
    return want ? want : 1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct result {
    const bcase *c;
    const char *op;
    uint64_t iters;
    double ns[MAX_ROUNDS];
    double median, min, max;
} result;

static void measure(result *res, const bcase *c, const char *opname, op_fn op, int rounds)
{
    memset(res, 0, sizeof *res);
    res->c = c;
    res->op = opname;
    res->iters = calibrate(op, c);
    double sorted[MAX_ROUNDS];
    for (int i = 0; i < rounds; i++) {
        res->ns[i] = (double)run_iters(op, c, res->iters) / (double)res->iters;
        sorted[i] = res->ns[i];
    }
    qsort(sorted, (size_t)rounds, sizeof sorted[0], cmp_double);
    res->min = sorted[0];
    res->max = sorted[rounds - 1];
    res->median = rounds % 2 ? sorted[rounds / 2]
                             : (sorted[rounds / 2 - 1] + sorted[rounds / 2]) / 2.0;
}

/* ---- output ---------------------------------------------------------------- */

static void cpu_model(char *out, size_t cap)
{
    snprintf(out, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && colon) {
            colon++;
            while (*colon == ' ' || *colon == '\t')
                colon++;
            colon[strcspn(colon, "\n")] = '\0';
            snprintf(out, cap, "%s", colon);
            break;
        }
    }
    fclose(f);
}

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

/* mkdir -p for the directory part of path */
static int make_parent_dirs(const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return -1;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return 0;
}

static int write_json(const char *path, const result *res, size_t n, int rounds, const char *cpu,
                      const char *build)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (make_parent_dirs(path) < 0)
        return -1;
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    fprintf(f, "{\n  \"benchmark\": \"codec\",\n  \"scope\": \"proto/ only: encode and decode in "
               "memory, no sockets\",\n  \"unit\": \"ns per message\",\n");
    fprintf(f, "  \"rounds\": %d,\n  \"timestamp\": %lld,\n  \"cpu\": ", rounds,
            (long long)time(NULL));
    json_string(f, cpu);
    fprintf(f, ",\n  \"compiler\": ");
    json_string(f, COMPILER);
    fprintf(f, ",\n  \"build\": ");
    json_string(f, build);
    fprintf(f, ",\n  \"results\": [\n");
    for (size_t i = 0; i < n; i++) {
        const result *r = &res[i];
        fprintf(f, "    {\"case\": ");
        json_string(f, r->c->name);
        fprintf(f, ", \"shape\": ");
        json_string(f, r->c->shape);
        fprintf(f, ", \"op\": ");
        json_string(f, r->op);
        fprintf(f, ", \"frame_bytes\": %zu, \"iterations_per_round\": %llu,\n", r->c->frame_len,
                (unsigned long long)r->iters);
        fprintf(f, "     \"median_ns\": %.1f, \"min_ns\": %.1f, \"max_ns\": %.1f, \"rounds_ns\": [",
                r->median, r->min, r->max);
        for (int k = 0; k < rounds; k++)
            fprintf(f, "%s%.1f", k ? ", " : "", r->ns[k]);
        fprintf(f, "]}%s\n", i + 1 < n ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    if (fclose(f) != 0)
        return -1;
    return rename(tmp, path);
}

#if defined(__SANITIZE_ADDRESS__)
#define BENCH_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BENCH_SANITIZED 1
#endif
#endif
#ifdef BENCH_SANITIZED
static const char build_kind[] = "sanitized (ASan/UBSan): numbers are not meaningful";
#elif defined(__OPTIMIZE__)
static const char build_kind[] = "optimized";
#else
static const char build_kind[] = "unoptimized: numbers are not meaningful";
#endif

int main(int argc, char **argv)
{
    int rounds = DEFAULT_ROUNDS;
    const char *json_path = "bench/results/latest.json";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            rounds = atoi(argv[++i]);
            if (rounds < 1 || rounds > MAX_ROUNDS)
                die("--rounds", "must be 1..101");
        } else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc) {
            json_path = argv[++i];
        } else {
            fprintf(stderr, "usage: %s [--rounds N] [--json PATH]\n", argv[0]);
            return 2;
        }
    }

    make_rows();
    bcase cases[] = {
        { "small", "GET_HOSTNAME-like REPLY: [hostname]", &reply_hdr_small, body_small, read_small,
          NULL, 0 },
        { "large", "LIST_DOMAINS-like REPLY: [[6-field row] x 500]", &reply_hdr_large, body_large,
          read_large, NULL, 0 },
    };
    enum { NCASES = sizeof cases / sizeof cases[0] };

    /* Encode each message once, and check that it decodes to what was encoded. */
    for (size_t i = 0; i < NCASES; i++) {
        vb_enc enc;
        vb_error err;
        vb_enc_begin(&enc, cases[i].hdr);
        cases[i].body(&enc);
        if (vb_enc_finish(&enc, VB_FRAME_MAX_POSTAUTH, &cases[i].frame, &cases[i].frame_len, &err) < 0)
            die("encode", err.message);
        uint64_t check = 0;
        decode_once(&cases[i], &check);
    }
    for (size_t i = 0; i < LARGE_DOMAINS; i++)
        if (decoded[i].id != rows[i].id || strcmp(decoded[i].name, rows[i].name) != 0 ||
            strcmp(decoded[i].uuid, rows[i].uuid) != 0 || decoded[i].state != rows[i].state ||
            decoded[i].memory_kib != rows[i].memory_kib || decoded[i].vcpus != rows[i].vcpus ||
            strlen(rows[i].name) != NAME_LEN || strlen(rows[i].uuid) != UUID_LEN)
            die("self-check", "the large message does not decode to what was encoded");

    char cpu[256];
    cpu_model(cpu, sizeof cpu);
    printf("codec micro-benchmark: proto/ only (in-memory encode/decode, no sockets)\n");
    printf("cpu: %s\ncompiler: %s\nbuild: %s\nrounds: %d (about %llu ms each); ns per message\n\n",
           cpu, COMPILER, build_kind, rounds, (unsigned long long)(ROUND_TARGET_NS / 1000000));

    result res[2 * NCASES];
    size_t nres = 0;
    for (size_t i = 0; i < NCASES; i++) {
        measure(&res[nres++], &cases[i], "encode", encode_once, rounds);
        measure(&res[nres++], &cases[i], "decode", decode_once, rounds);
    }

    printf("%-6s %-7s %8s %12s %12s %12s %12s %10s\n", "case", "op", "frame B", "iters/round",
           "median ns", "min ns", "max ns", "MB/s");
    for (size_t i = 0; i < nres; i++) {
        const result *r = &res[i];
        printf("%-6s %-7s %8zu %12llu %12.1f %12.1f %12.1f %10.1f\n", r->c->name, r->op,
               r->c->frame_len, (unsigned long long)r->iters, r->median, r->min, r->max,
               (double)r->c->frame_len * 1000.0 / r->median);
    }
    printf("\nsmall = %s\nlarge = %s\n", cases[0].shape, cases[1].shape);
    printf("frame B = bytes on the wire, 4-byte length prefix included\n");
    printf("decode = frame reader + vb_msgpack_check + msgpack-c unpack + header + vb_rd_* reads\n");

    if (write_json(json_path, res, nres, rounds, cpu, build_kind) < 0) {
        fprintf(stderr, "bench_codec: cannot write %s: %s\n", json_path, strerror(errno));
        return 1;
    }
    printf("json: %s\n", json_path);
    for (size_t i = 0; i < NCASES; i++)
        vb_frame_free(cases[i].frame, cases[i].frame_len);
    return 0;
}
