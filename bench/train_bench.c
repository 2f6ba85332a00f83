/* bench/train_bench.c — median time of one compiled training step (forward + cross-entropy + backward
 * + SGD(lr 0.01, momentum 0.9)), batch = the first axis of X, as in Brevitas's figures
 * (shared/peers/README.md "brevitas/nets"). With SPEC arguments the model is first quantized as
 * `qopt quantize` does (calibrated on X) and the step is quantization-aware.
 * Usage: train_bench MODEL.onnx X.npy THREADS STEPS [WEIGHTS_SPEC ACTS_SPEC [KEY=VALUE ...]] */
#include "frontend/onnx_load.h"
#include "passes/pass.h"
#include "passes/quant/quantize.h"
#include "passes/train/trainer.h"
#include "runtime/npy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: train_bench MODEL X.npy THREADS STEPS [WSPEC ASPEC [KEY=VALUE ...]]\n");
        return 2;
    }
    qo_ctx cx;
    qo_ctx_init(&cx);
    qo_module *m;
    qo_tensor x, y = {0};
    int threads = atoi(argv[3]), steps = atoi(argv[4]);
    if (qo_onnx_load(&cx, argv[1], &m) || qo_npy_read(&cx, argv[2], &x)) return 1;
    double t0 = now();
    qo_status s;
    if (argc > 6) {
        qo_quantize_opts o = {.weights = argv[5], .acts = argv[6], .calib = argv[2], .batch = x.dims[0],
                              .no_report = true, .no_bias_correction = true, .threads = threads,
                              .set = (const char *const *)argv + 7, .nset = (uint32_t)(argc - 7)};
        s = qo_quantize(&cx, m, &o, NULL);
    } else {
        s = qo_pipeline_run(&cx, m, "canonicalize,shape-infer,const-fold,fold-bn,dce,shape-infer", NULL);
    }
    qo_trainer *tr = NULL;
    qo_train_opts to = {.optimizer = QO_OPTIM_SGD, .lr = 0.01f, .momentum = 0.9f, .threads = threads,
                        .learn_scales = true};
    if (!s) s = qo_trainer_new(&cx, m, x.dims[0], &to, &tr);
    double t1 = now();
    int64_t n = x.dims[0];
    if (!s) s = qo_tensor_make(&cx, &y, QO_I64, 1, &n);
    uint64_t r = 1;
    for (int64_t i = 0; !s && i < n; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        ((int64_t *)y.data)[i] = (int64_t)((r >> 33) % 10);
    }
    double *ms = calloc((size_t)steps, sizeof(double));
    float loss = 0;
    for (int i = 0; !s && i < 3; i++) s = qo_trainer_step(tr, &x, &y, 0.01f, &loss, NULL);
    double c0 = cpu_now();
    for (int i = 0; !s && i < steps; i++) {
        double a = now();
        s = qo_trainer_step(tr, &x, &y, 0.01f, &loss, NULL);
        ms[i] = 1e3 * (now() - a);
    }
    double cpu = steps > 0 ? 1e3 * (cpu_now() - c0) / steps : 0;
    if (!s) {
        qsort(ms, (size_t)steps, sizeof *ms, cmpd);
        printf("%s %s: step median %.2f ms (min %.2f, max %.2f) over %d steps, batch %lld, threads %d; "
               "cpu %.2f ms/step; build+compile %.2f s, final loss %.4f\n",
               argv[1], argc > 6 ? "QAT" : "float", ms[steps / 2], ms[0], ms[steps - 1], steps, (long long)n, threads,
               cpu, t1 - t0, (double)loss);
    }
    free(ms);
    qo_trainer_free(tr);
    qo_module_free(m);
    qo_tensor_free(&x);
    qo_tensor_free(&y);
    return s ? 1 : 0;
}
