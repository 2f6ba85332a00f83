/* ir/base.h — the bottom layer every qopt file includes: status codes, diagnostics, memory helpers.
 *
 * Three error channels, never mixed:
 *   1. qo_status return codes for every fallible library call;
 *   2. diagnostics (qo_error/qo_warning/qo_note) carrying the words, routed to a handler in qo_ctx;
 *   3. QO_ASSERT/QO_UNREACHABLE for bugs in qopt itself (abort, never for bad input).
 * Library code never prints directly and never calls exit(). */
#ifndef QOPT_IR_BASE_H
#define QOPT_IR_BASE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QO_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* ---- status codes --------------------------------------------------------------------------- */
typedef enum qo_status {
    QO_OK = 0,
    QO_ERR_IO,            /* file missing, unreadable, short read/write */
    QO_ERR_PARSE,         /* malformed .qir text or pipeline string */
    QO_ERR_INVALID_MODEL, /* malformed ONNX (bad protobuf, bad sizes, bad references) */
    QO_ERR_UNSUPPORTED,   /* well-formed but outside what qopt handles (IR version, data type, ...) */
    QO_ERR_VERIFY,        /* IR verifier found problems */
    QO_ERR_PASS,          /* a pass failed */
    QO_ERR_USAGE,         /* bad arguments / options from the user */
    QO_ERR_NOMEM,         /* allocation failure */
    QO_ERR_BACKEND,       /* code generation / runtime failure */
    QO_ERR_LIMIT          /* a bound was exceeded (fixpoint iterations, error count) */
} qo_status;

/* Name of a status code, e.g. "invalid-model". Never NULL. */
const char *qo_status_str(qo_status s);

#define QO_TRY(expr)                                                                               \
    do {                                                                                           \
        qo_status qo_try_s_ = (expr);                                                              \
        if (qo_try_s_ != QO_OK) return qo_try_s_;                                                  \
    } while (0)

/* ---- internal invariants -------------------------------------------------------------------- */
_Noreturn void qo_die(const char *file, int line, const char *fmt, ...) QO_PRINTF(3, 4);
#define QO_ASSERT(c)                                                                               \
    do {                                                                                           \
        if (!(c)) qo_die(__FILE__, __LINE__, "assertion failed: %s", #c);                          \
    } while (0)
#define QO_UNREACHABLE() qo_die(__FILE__, __LINE__, "unreachable")

/* ---- locations and diagnostics -------------------------------------------------------------- */
/* Where a diagnostic points. Either text (file + line/col, line > 0) or model (file + node/op).
 * All strings are borrowed: they must stay valid until the diagnostic call returns. */
typedef struct qo_loc {
    const char *file; /* .onnx or .qir path, or NULL */
    uint32_t line;    /* 1-based; 0 = not a text location */
    uint32_t col;     /* 1-based; 0 = unknown */
    const char *node; /* ONNX node name (may be "" for unnamed), or NULL */
    const char *op;   /* op_type, or NULL */
    int64_t node_index; /* index of the node in its graph, -1 if unknown */
} qo_loc;

typedef enum qo_diag_kind { QO_DIAG_ERROR, QO_DIAG_WARNING, QO_DIAG_NOTE, QO_DIAG_REMARK } qo_diag_kind;

/* Handler for one formatted diagnostic. msg has no trailing newline. */
typedef void (*qo_diag_fn)(void *ud, qo_diag_kind kind, const qo_loc *loc, const char *msg);

/* Per-session context: diagnostics routing and counters. No global mutable state exists outside it. */
typedef struct qo_ctx {
    qo_diag_fn diag;     /* NULL = default handler printing to stderr */
    void *diag_ud;
    unsigned nerrors;    /* errors reported so far */
    unsigned nwarnings;
    unsigned max_errors; /* callers that accumulate errors stop after this many (default 20) */
    bool quiet;          /* default handler: drop warnings/remarks */
} qo_ctx;

/* Initializes cx with the default stderr handler. */
void qo_ctx_init(qo_ctx *cx);

/* Reports an error and returns `code`, so `return qo_error(cx, QO_ERR_PARSE, &loc, ...)` is idiomatic.
 * loc may be NULL. Default rendering:
 *   model.onnx: node 'conv1' (Conv): error: kernel_shape has 3 entries, expected 2
 *   x.qir:12:5: error: unknown op 'Foo' */
qo_status qo_error(qo_ctx *cx, qo_status code, const qo_loc *loc, const char *fmt, ...) QO_PRINTF(4, 5);
qo_status qo_verror(qo_ctx *cx, qo_status code, const qo_loc *loc, const char *fmt, va_list ap);
void qo_warning(qo_ctx *cx, const qo_loc *loc, const char *fmt, ...) QO_PRINTF(3, 4);
void qo_note(qo_ctx *cx, const qo_loc *loc, const char *fmt, ...) QO_PRINTF(3, 4);

/* Formats a location the way the default handler does ("f.onnx: node 'x' (Conv)") into buf. */
void qo_loc_format(const qo_loc *loc, char *buf, size_t cap);

/* ---- memory --------------------------------------------------------------------------------- */
/* Allocation wrappers: abort with a message on exhaustion (documented limitation: qopt does not
 * recover from out-of-memory). qo_calloc zeroes. */
void *qo_malloc(size_t n);
void *qo_calloc(size_t n, size_t size);
void *qo_realloc(void *p, size_t n);
char *qo_strdup(const char *s);
void qo_free(void *p);

/* Large zeroed working memory touched again and again (a compiled graph's arena, kernel scratch).
 * From QO_BIG_MIN bytes on Linux: an anonymous mapping aligned to 2 MB with MADV_HUGEPAGE, so the
 * kernel may back it with transparent huge pages where the system allows them on request
 * ("madvise" mode, Debian's default): one TLB entry per 2 MB instead of 512. (ResNet-8's training
 * step walks a 50 MB arena; in a virtual machine each TLB miss costs a nested walk.) Smaller sizes
 * and other systems (and AddressSanitizer builds): the heap. Always 64-byte aligned. Free with
 * qo_free_big and the same n. */
#define QO_BIG_MIN ((size_t)2 << 20)
void *qo_calloc_big(size_t n);
void qo_free_big(void *p, size_t n);

/* Grows a table *p of element size `elsize` so that it holds at least `need` elements; *cap is the
 * current capacity in elements and is updated. New elements are zeroed. */
void qo_grow(void **p, uint32_t *cap, uint32_t need, size_t elsize);
#define QO_GROW(ptr, cap, need) qo_grow((void **)&(ptr), &(cap), (need), sizeof(*(ptr)))

/* Bump arena: chained blocks; everything freed at once. Allocations are 16-byte aligned, zeroed. */
typedef struct qo_arena_block qo_arena_block;
typedef struct qo_arena {
    qo_arena_block *head;
    size_t used;  /* bytes used in head */
    size_t total; /* bytes handed out over the arena's life (statistics) */
} qo_arena;
void *qo_arena_alloc(qo_arena *a, size_t n);
void *qo_arena_memdup(qo_arena *a, const void *p, size_t n);
char *qo_arena_strndup(qo_arena *a, const char *s, size_t n); /* NUL-terminated copy */
void qo_arena_free(qo_arena *a);

/* A byte string that may contain NULs (ONNX string attributes and string tensors). */
typedef struct qo_bytes {
    const char *p;
    size_t n;
} qo_bytes;

/* Reads a whole file into a malloc'd buffer (NUL-terminated, length in *len). Reports an IO error
 * naming the path on failure. */
qo_status qo_read_file(qo_ctx *cx, const char *path, char **out, size_t *len);

/* Writes `len` bytes to `path` atomically: a temporary file in the same directory, then rename.
 * On failure nothing is left behind at `path` or in the temporary. */
qo_status qo_write_file_atomic(qo_ctx *cx, const char *path, const void *data, size_t len);

#endif
