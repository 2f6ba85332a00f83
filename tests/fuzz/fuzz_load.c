/* tests/fuzz/fuzz_load.c — libFuzzer target: any byte string through qo_onnx_load_buffer must load or
 * fail cleanly (no crash, no leak, no sanitizer report). Also linked with replay_main.c into a plain
 * executable that replays the corpus in the normal test suite. */
#include "frontend/onnx_load.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void quiet(void *ud, qo_diag_kind kind, const qo_loc *loc, const char *msg) {
    (void)ud, (void)kind, (void)loc, (void)msg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    qo_ctx cx;
    qo_ctx_init(&cx);
    cx.diag = quiet;
    qo_module *m = NULL;
    qo_status st = qo_onnx_load_buffer(&cx, "fuzz.onnx", data, size, NULL, &m);
    if (st == QO_OK) {
        /* touch every constant's bytes so a bad borrowed pointer shows up under ASan */
        volatile uint8_t sink = 0;
        for (uint32_t c = 1; c < m->nconsts; c++) {
            const qo_constdata *cd = qo_const_get(m, c);
            if (qo_type_elem(m, cd->type) == QO_STR) continue;
            const uint8_t *p = cd->data;
            for (size_t i = 0; i < cd->nbytes; i++) sink ^= p[i];
        }
        (void)sink;
        qo_module_free(m);
    } else if (m) {
        __builtin_trap(); /* a failed load must leave *out NULL */
    }
    return 0;
}
