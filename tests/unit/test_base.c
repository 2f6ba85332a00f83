/* tests/unit/test_base.c — base layer: status names, diagnostics routing, arena, tables, files. */
#include "test.h"

#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_status_str(void) {
    CHECK_STR(qo_status_str(QO_OK), "ok");
    CHECK_STR(qo_status_str(QO_ERR_IO), "io-error");
    CHECK_STR(qo_status_str(QO_ERR_PARSE), "parse-error");
    CHECK_STR(qo_status_str(QO_ERR_INVALID_MODEL), "invalid-model");
    CHECK_STR(qo_status_str(QO_ERR_UNSUPPORTED), "unsupported");
    CHECK_STR(qo_status_str(QO_ERR_VERIFY), "verify-error");
    CHECK_STR(qo_status_str(QO_ERR_PASS), "pass-error");
    CHECK_STR(qo_status_str(QO_ERR_USAGE), "usage-error");
    CHECK_STR(qo_status_str(QO_ERR_NOMEM), "out-of-memory");
    CHECK_STR(qo_status_str(QO_ERR_BACKEND), "backend-error");
    CHECK_STR(qo_status_str(QO_ERR_LIMIT), "limit-exceeded");
    CHECK_STR(qo_status_str((qo_status)999), "unknown-status");
}

static void test_diagnostics(void) {
    qo_ctx cx;
    qt_diags d;
    qt_ctx(&cx, &d);
    qo_loc l = {.file = "m.onnx", .node = "conv1", .op = "Conv", .node_index = 3};
    CHECK_EQ(qo_error(&cx, QO_ERR_INVALID_MODEL, &l, "bad %d", 7), QO_ERR_INVALID_MODEL);
    qo_warning(&cx, NULL, "w");
    qo_note(&cx, NULL, "n");
    CHECK_EQ(cx.nerrors, 1);
    CHECK_EQ(cx.nwarnings, 1);
    CHECK_EQ(d.n, 3);
    CHECK_STR(d.text[0], "m.onnx: node 'conv1' (Conv): bad 7");
    CHECK_EQ(d.kind[1], QO_DIAG_WARNING);
    CHECK_EQ(d.kind[2], QO_DIAG_NOTE);
    /* unnamed node falls back to its index; text locations print line:col */
    char buf[256];
    qo_loc l2 = {.file = "m.onnx", .node = "", .op = "Relu", .node_index = 4};
    qo_loc_format(&l2, buf, sizeof buf);
    CHECK_STR(buf, "m.onnx: node #4 (Relu)");
    qo_loc l3 = {.file = "x.qir", .line = 12, .col = 5, .node_index = -1};
    qo_loc_format(&l3, buf, sizeof buf);
    CHECK_STR(buf, "x.qir:12:5");
    /* long messages are not truncated */
    char big[3000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    qt_ctx(&cx, &d);
    qo_error(&cx, QO_ERR_IO, NULL, "%s", big);
    CHECK_EQ(strlen(d.text[0]), sizeof d.text[0] - 1); /* collector buffer bound, message was longer */
}

static void test_arena(void) {
    qo_arena a = {0};
    unsigned char *p = qo_arena_alloc(&a, 3);
    CHECK(((uintptr_t)p & 15) == 0);
    CHECK_EQ(p[0] | p[1] | p[2], 0);
    unsigned char *q = qo_arena_alloc(&a, 1);
    CHECK(((uintptr_t)q & 15) == 0);
    CHECK(q >= p + 16); /* rounded to 16 */
    CHECK_EQ(a.total, 32);
    /* bigger than a block: its own block, zeroed */
    unsigned char *big = qo_arena_alloc(&a, 200000);
    CHECK(((uintptr_t)big & 15) == 0);
    bool zero = true;
    for (size_t i = 0; i < 200000; i++) zero &= big[i] == 0;
    CHECK(zero);
    memset(big, 0xff, 200000);
    /* many small allocations across block boundaries stay distinct */
    int *last = NULL;
    bool distinct = true;
    for (int i = 0; i < 10000; i++) {
        int *x = qo_arena_alloc(&a, sizeof(int));
        *x = i;
        if (last && *last != i - 1) distinct = false;
        last = x;
    }
    CHECK(distinct);
    const char src[] = "ab\0cd";
    char *s = qo_arena_strndup(&a, src, 2);
    CHECK_STR(s, "ab");
    char *md = qo_arena_memdup(&a, src, sizeof src);
    CHECK(memcmp(md, src, sizeof src) == 0);
    qo_arena_free(&a);
    CHECK(a.head == NULL);
    CHECK_EQ(a.total, 0);
}

static void test_grow(void) {
    int *t = NULL;
    uint32_t cap = 0;
    QO_GROW(t, cap, 3);
    CHECK(cap >= 3);
    for (uint32_t i = 0; i < cap; i++) CHECK_EQ(t[i], 0);
    t[0] = 42;
    uint32_t old = cap;
    QO_GROW(t, cap, old + 1);
    CHECK(cap > old);
    CHECK_EQ(t[0], 42);
    CHECK_EQ(t[cap - 1], 0);
    qo_free(t);
}

/* qo_calloc_big: zeroed, 64-byte aligned, every byte writable, for sizes on both sides of
 * QO_BIG_MIN (the mapped path is 2 MB aligned on Linux outside AddressSanitizer builds). */
static void test_calloc_big(void) {
    size_t sizes[] = {0, 1, 4096 + 3, QO_BIG_MIN - 1, QO_BIG_MIN, 3 * QO_BIG_MIN + 5};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        unsigned char *p = qo_calloc_big(n);
        CHECK(p != NULL);
        CHECK(((uintptr_t)p & 63) == 0);
#if defined(__linux__) && !defined(__SANITIZE_ADDRESS__)
        if (n >= QO_BIG_MIN) CHECK(((uintptr_t)p & (QO_BIG_MIN - 1)) == 0);
#endif
        bool zero = true;
        for (size_t i = 0; i < n; i++) zero = zero && p[i] == 0;
        CHECK(zero);
        memset(p, 0xA5, n);
        CHECK(n == 0 || (p[0] == 0xA5 && p[n - 1] == 0xA5));
        qo_free_big(p, n);
    }
}

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void test_files(void) {
    qo_ctx cx;
    qt_diags d;
    qt_ctx(&cx, &d);
    char dir[] = "/tmp/qo_test_base_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256], sub[256], bad[256];
    snprintf(path, sizeof path, "%s/out.bin", dir);
    const char data[] = "hello\0world";
    CHECK_EQ(qo_write_file_atomic(&cx, path, data, sizeof data), QO_OK);
    char *buf = NULL;
    size_t len = 0;
    CHECK_EQ(qo_read_file(&cx, path, &buf, &len), QO_OK);
    CHECK_EQ(len, sizeof data);
    CHECK(buf && memcmp(buf, data, sizeof data) == 0);
    qo_free(buf);
    CHECK_EQ(count_entries(dir), 1); /* no temporary left behind */
    /* overwrite replaces the content */
    CHECK_EQ(qo_write_file_atomic(&cx, path, "x", 1), QO_OK);
    CHECK_EQ(qo_read_file(&cx, path, &buf, &len), QO_OK);
    CHECK_EQ(len, 1);
    qo_free(buf);
    struct stat st;
    mode_t um = umask(0);
    umask(um);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == (0666 & ~um)); /* like open(O_CREAT, 0666) */
    /* into a directory that does not exist: IO error naming the path, nothing created */
    snprintf(bad, sizeof bad, "%s/nope/out.bin", dir);
    qt_ctx(&cx, &d);
    CHECK_EQ(qo_write_file_atomic(&cx, bad, data, sizeof data), QO_ERR_IO);
    CHECK_EQ(cx.nerrors, 1);
    CHECK(d.n == 1 && strstr(d.text[0], bad) != NULL);
    CHECK_EQ(count_entries(dir), 1);
    /* rename fails (target is a non-empty directory): the temporary is removed */
    snprintf(sub, sizeof sub, "%s/sub", dir);
    CHECK(mkdir(sub, 0700) == 0);
    char inner[300];
    snprintf(inner, sizeof inner, "%s/keep", sub);
    CHECK_EQ(qo_write_file_atomic(&cx, inner, "k", 1), QO_OK);
    qt_ctx(&cx, &d);
    CHECK_EQ(qo_write_file_atomic(&cx, sub, data, sizeof data), QO_ERR_IO);
    CHECK_EQ(count_entries(dir), 2); /* out.bin and sub only */
    CHECK_EQ(count_entries(sub), 1);
    /* reading a missing file */
    qt_ctx(&cx, &d);
    CHECK_EQ(qo_read_file(&cx, bad, &buf, &len), QO_ERR_IO);
    CHECK(d.n == 1 && strstr(d.text[0], "nope/out.bin"));
    unlink(inner);
    rmdir(sub);
    unlink(path);
    CHECK(rmdir(dir) == 0);
}

int main(void) {
    RUN(test_status_str);
    RUN(test_diagnostics);
    RUN(test_arena);
    RUN(test_grow);
    RUN(test_calloc_big);
    RUN(test_files);
    return qt_finish();
}
