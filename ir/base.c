/* ir/base.c — status names, diagnostics, allocation wrappers, arenas, whole-file IO. */
#include "base.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#ifdef __linux__
#include <stdint.h>
#include <sys/mman.h>
#endif
#include <unistd.h>

const char *qo_status_str(qo_status s) {
    switch (s) {
    case QO_OK: return "ok";
    case QO_ERR_IO: return "io-error";
    case QO_ERR_PARSE: return "parse-error";
    case QO_ERR_INVALID_MODEL: return "invalid-model";
    case QO_ERR_UNSUPPORTED: return "unsupported";
    case QO_ERR_VERIFY: return "verify-error";
    case QO_ERR_PASS: return "pass-error";
    case QO_ERR_USAGE: return "usage-error";
    case QO_ERR_NOMEM: return "out-of-memory";
    case QO_ERR_BACKEND: return "backend-error";
    case QO_ERR_LIMIT: return "limit-exceeded";
    }
    return "unknown-status";
}

_Noreturn void qo_die(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "qopt internal error at %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

/* ---- diagnostics ---------------------------------------------------------------------------- */

void qo_ctx_init(qo_ctx *cx) {
    memset(cx, 0, sizeof *cx);
    cx->max_errors = 20;
}

void qo_loc_format(const qo_loc *loc, char *buf, size_t cap) {
    size_t k = 0;
    buf[0] = 0;
    if (!loc) return;
#define PUT(...)                                                                                   \
    do {                                                                                           \
        int w_ = snprintf(buf + k, cap > k ? cap - k : 0, __VA_ARGS__);                            \
        if (w_ > 0) k += (size_t)w_;                                                               \
        if (k >= cap) k = cap - 1;                                                                 \
    } while (0)
    if (loc->file) PUT("%s", loc->file);
    if (loc->line) {
        PUT(":%u", loc->line);
        if (loc->col) PUT(":%u", loc->col);
    }
    if (loc->node || loc->op) {
        if (loc->file) PUT(": ");
        if (loc->node && loc->node[0]) PUT("node '%s'", loc->node);
        else if (loc->node_index >= 0) PUT("node #%lld", (long long)loc->node_index);
        else PUT("node");
        if (loc->op) PUT(" (%s)", loc->op);
    }
#undef PUT
}

static void default_handler(qo_ctx *cx, qo_diag_kind kind, const qo_loc *loc, const char *msg) {
    static const char *const kinds[] = {"error", "warning", "note", "remark"};
    char where[1024];
    if (cx->quiet && (kind == QO_DIAG_WARNING || kind == QO_DIAG_REMARK)) return;
    qo_loc_format(loc, where, sizeof where);
    if (where[0]) fprintf(stderr, "%s: %s: %s\n", where, kinds[kind], msg);
    else fprintf(stderr, "qopt: %s: %s\n", kinds[kind], msg);
}

static void emit(qo_ctx *cx, qo_diag_kind kind, const qo_loc *loc, const char *fmt, va_list ap) {
    char small[1024];
    char *msg = small;
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    if (n >= (int)sizeof small) {
        msg = qo_malloc((size_t)n + 1);
        vsnprintf(msg, (size_t)n + 1, fmt, ap2);
    }
    va_end(ap2);
    if (kind == QO_DIAG_ERROR) cx->nerrors++;
    if (kind == QO_DIAG_WARNING) cx->nwarnings++;
    if (cx->diag) cx->diag(cx->diag_ud, kind, loc, msg);
    else default_handler(cx, kind, loc, msg);
    if (msg != small) qo_free(msg);
}

qo_status qo_verror(qo_ctx *cx, qo_status code, const qo_loc *loc, const char *fmt, va_list ap) {
    emit(cx, QO_DIAG_ERROR, loc, fmt, ap);
    return code;
}

qo_status qo_error(qo_ctx *cx, qo_status code, const qo_loc *loc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    emit(cx, QO_DIAG_ERROR, loc, fmt, ap);
    va_end(ap);
    return code;
}

void qo_warning(qo_ctx *cx, const qo_loc *loc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    emit(cx, QO_DIAG_WARNING, loc, fmt, ap);
    va_end(ap);
}

void qo_note(qo_ctx *cx, const qo_loc *loc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    emit(cx, QO_DIAG_NOTE, loc, fmt, ap);
    va_end(ap);
}

/* ---- memory --------------------------------------------------------------------------------- */

static void *check(void *p, size_t n) {
    if (!p && n) qo_die(__FILE__, __LINE__, "out of memory allocating %zu bytes", n);
    return p;
}
void *qo_malloc(size_t n) { return check(malloc(n ? n : 1), n); }
void *qo_calloc(size_t n, size_t size) { return check(calloc(n ? n : 1, size ? size : 1), n * size); }
void *qo_realloc(void *p, size_t n) { return check(realloc(p, n ? n : 1), n); }
char *qo_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    return memcpy(qo_malloc(n), s, n);
}
void qo_free(void *p) { free(p); }

#if defined(__SANITIZE_ADDRESS__)
#define QO_BIG_MAP 0 /* heap blocks: AddressSanitizer guards their ends */
#elif defined(__linux__) && defined(MADV_HUGEPAGE)
#define QO_BIG_MAP 1
#else
#define QO_BIG_MAP 0
#endif

/* qo_calloc_big on the heap: zeroed, 64-byte aligned, at least 64 bytes. */
static void *big_heap(size_t n) {
    size_t len = n ? (n + 63) / 64 * 64 : 64;
    return memset(check(aligned_alloc(64, len), len), 0, len);
}

#if QO_BIG_MAP
/* The mapping is [p, p + big_len(n)): 2 MB aligned at both ends (the slack of an oversized
 * mapping is unmapped), so qo_free_big can unmap exactly that. */
static size_t big_len(size_t n) { return (n + QO_BIG_MIN - 1) / QO_BIG_MIN * QO_BIG_MIN; }

void *qo_calloc_big(size_t n) {
    if (n < QO_BIG_MIN) return big_heap(n);
    size_t len = big_len(n), span = len + QO_BIG_MIN;
    char *m = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return check(NULL, n);
    char *p = (char *)(((uintptr_t)m + QO_BIG_MIN - 1) & ~(uintptr_t)(QO_BIG_MIN - 1));
    if (p > m) munmap(m, (size_t)(p - m));
    if (m + span > p + len) munmap(p + len, (size_t)(m + span - (p + len)));
    (void)madvise(p, len, MADV_HUGEPAGE); /* advice only: without THP the pages stay 4 KB */
    return p;                             /* fresh anonymous pages read as zero */
}

void qo_free_big(void *p, size_t n) {
    if (!p) return;
    if (n < QO_BIG_MIN) free(p);
    else munmap(p, big_len(n));
}
#else
void *qo_calloc_big(size_t n) { return big_heap(n); }
void qo_free_big(void *p, size_t n) {
    (void)n;
    free(p);
}
#endif

void qo_grow(void **p, uint32_t *cap, uint32_t need, size_t elsize) {
    if (need <= *cap) return;
    uint64_t nc = *cap ? *cap : 8;
    while (nc < need) nc *= 2;
    if (nc > UINT32_MAX) qo_die(__FILE__, __LINE__, "table too large");
    *p = qo_realloc(*p, (size_t)nc * elsize);
    memset((char *)*p + (size_t)*cap * elsize, 0, (size_t)(nc - *cap) * elsize);
    *cap = (uint32_t)nc;
}

struct qo_arena_block {
    qo_arena_block *next;
    size_t cap;
    _Alignas(16) unsigned char data[];
};

void *qo_arena_alloc(qo_arena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (!a->head || a->used + n > a->head->cap) {
        size_t cap = n > 65536 ? n : 65536;
        qo_arena_block *b = qo_malloc(sizeof *b + cap);
        b->next = a->head;
        b->cap = cap;
        a->head = b;
        a->used = 0;
    }
    void *p = a->head->data + a->used;
    a->used += n;
    a->total += n;
    memset(p, 0, n);
    return p;
}

void *qo_arena_memdup(qo_arena *a, const void *p, size_t n) {
    void *q = qo_arena_alloc(a, n);
    if (n) memcpy(q, p, n);
    return q;
}

char *qo_arena_strndup(qo_arena *a, const char *s, size_t n) {
    char *q = qo_arena_alloc(a, n + 1);
    if (n) memcpy(q, s, n);
    q[n] = 0;
    return q;
}

void qo_arena_free(qo_arena *a) {
    qo_arena_block *b = a->head;
    while (b) {
        qo_arena_block *nx = b->next;
        qo_free(b);
        b = nx;
    }
    memset(a, 0, sizeof *a);
}

/* ---- files ---------------------------------------------------------------------------------- */

qo_status qo_read_file(qo_ctx *cx, const char *path, char **out, size_t *len) {
    qo_loc loc = {.file = path, .node_index = -1};
    FILE *f = fopen(path, "rb");
    if (!f) return qo_error(cx, QO_ERR_IO, &loc, "cannot open: %s", strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = qo_malloc(cap);
    for (;;) {
        if (n + 1 >= cap) buf = qo_realloc(buf, cap *= 2);
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        qo_free(buf);
        return qo_error(cx, QO_ERR_IO, &loc, "read error");
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return QO_OK;
}

qo_status qo_write_file_atomic(qo_ctx *cx, const char *path, const void *data, size_t len) {
    qo_loc loc = {.file = path, .node_index = -1};
    size_t pl = strlen(path);
    char *tmp = qo_malloc(pl + 32);
    snprintf(tmp, pl + 32, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        qo_status s = qo_error(cx, QO_ERR_IO, &loc, "cannot create temporary file: %s", strerror(errno));
        qo_free(tmp);
        return s;
    }
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR) continue;
            break;
        }
        p += w;
        left -= (size_t)w;
    }
    int err = left ? errno : 0;
    if (close(fd) != 0 && !err) err = errno;
    if (!err) {
        mode_t um = umask(0);
        umask(um);
        chmod(tmp, 0666 & ~um);
    }
    if (!err && rename(tmp, path) != 0) err = errno;
    if (err) {
        unlink(tmp);
        qo_free(tmp);
        return qo_error(cx, QO_ERR_IO, &loc, "cannot write: %s", strerror(err));
    }
    qo_free(tmp);
    return QO_OK;
}
