/* bench/load_bench.c — time and peak memory of qo_onnx_load on one model.
 * usage: load_bench MODEL [REPEAT]   prints: median seconds, peak RSS bytes, file bytes, and a
 * checksum over every constant byte (so the weights are really reachable, not just mapped). */
#include "frontend/onnx_load.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: load_bench MODEL [REPEAT]\n");
        return 1;
    }
    int rep = argc > 2 ? atoi(argv[2]) : 5;
    if (rep < 1) rep = 1;
    double *t = calloc((size_t)rep, sizeof *t);
    uint64_t sum = 0;
    qo_ctx cx;
    qo_ctx_init(&cx);
    for (int r = 0; r < rep; r++) {
        double t0 = now();
        qo_module *m;
        if (qo_onnx_load(&cx, argv[1], &m) != QO_OK) return 1;
        t[r] = now() - t0;
        if (r == 0) /* touch one byte per 4 KiB page of every constant */
            for (uint32_t c = 1; c < m->nconsts; c++) {
                const qo_constdata *cd = qo_const_get(m, c);
                if (qo_type_elem(m, cd->type) == QO_STR) continue;
                const unsigned char *p = cd->data;
                for (size_t i = 0; i < cd->nbytes; i += 4096) sum += p[i];
            }
        qo_module_free(m);
    }
    qsort(t, (size_t)rep, sizeof *t, cmp_d);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    struct stat st;
    stat(argv[1], &st);
    printf("median_s %.6f\npeak_rss_bytes %ld\nfile_bytes %lld\nchecksum %llu\n", t[rep / 2],
           ru.ru_maxrss * 1024L, (long long)st.st_size, (unsigned long long)sum);
    free(t);
    return 0;
}
