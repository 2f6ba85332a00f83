/* tests/jit/random_ew.c — random elementwise graphs through the JIT, compared bit for bit with the
 * reference interpreter (the oracle; NaN matches NaN).
 *
 *   jit_random_ew [COUNT [SEED]] [-v]
 *
 * Each graph is a chain of 2..8 ops over float32 (unary math and activations, broadcasting binary
 * ops, variadic Sum/Mean/Min/Max, Clip with scalar bounds, Where on a comparison, Cast round trips,
 * QuantizeLinear/DequantizeLinear pairs), with side inputs whose shapes exercise numpy broadcasting
 * corners: ranks 0..5, size-1 dims, dropped leading dims, odd extents (1, 3, 17, 1023). Sometimes an
 * intermediate is also a graph output or read twice (fusion boundaries). Inputs hold random values
 * with some NaN, infinities, signed zeros, ties (x.5) and huge values. Every graph runs through the
 * JIT fused and with no_fusion; each result must equal the interpreter's. Prints "N passed, N failed". */
#include "backends/llvm/jit.h"
#include "runtime/rt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}
static uint32_t pick(uint32_t n) { return rnd() % n; }
static float frand(void) { return ((float)(rnd() % 2000001) / 250000.0f) - 4.0f; }

typedef struct shape {
    int32_t rank;
    int64_t d[QO_MAX_RANK];
} shape;

static int64_t numel(const shape *s) {
    int64_t n = 1;
    for (int32_t i = 0; i < s->rank; i++) n *= s->d[i];
    return n;
}

/* A random output shape, at most ~40k elements. */
static shape rand_shape(void) {
    static const int64_t ext[] = {1, 1, 2, 3, 4, 5, 7, 17, 16, 1023};
    shape s;
    for (;;) {
        s.rank = (int32_t)pick(6);
        for (int32_t i = 0; i < s.rank; i++) s.d[i] = ext[pick(sizeof ext / sizeof *ext)];
        if (numel(&s) <= 40000) return s;
    }
}

/* A shape that broadcasts to s: some dims set to 1, some leading dims dropped. */
static shape bcast_of(const shape *s) {
    shape b = *s;
    int mode = (int)pick(5);
    if (mode == 0) return b; /* same */
    if (mode == 1) {         /* scalar */
        b.rank = 0;
        return b;
    }
    for (int32_t i = 0; i < b.rank; i++)
        if (pick(2)) b.d[i] = 1;
    if (mode == 3 && b.rank) { /* drop leading dims */
        int32_t drop = (int32_t)pick((uint32_t)b.rank + 1);
        memmove(b.d, b.d + drop, (size_t)(b.rank - drop) * sizeof *b.d);
        b.rank -= drop;
    }
    return b;
}

/* A shape s broadcasts with to a bigger one (grows the chain's shape sometimes). */
static shape grow(const shape *s) {
    shape b = *s;
    for (int32_t i = 0; i < b.rank; i++)
        if (b.d[i] == 1 && pick(3) == 0) b.d[i] = 3;
    return numel(&b) <= 40000 ? b : *s;
}

typedef struct gen {
    qo_module *m;
    qo_graph *g;
    int nvals;
    shape in_shapes[64];
    qo_val ins[64];
    int nin;
} gen;

static void name_val(gen *G, qo_val v) {
    char nm[32];
    snprintf(nm, sizeof nm, "t%d", G->nvals++);
    qo_val_set_name(G->g, v, nm);
}

static qo_val add_input(gen *G, const shape *s) {
    char nm[32];
    snprintf(nm, sizeof nm, "x%d", G->nin);
    qo_val v = qo_graph_add_input(G->g, nm, qo_type_tensor(G->m, QO_F32, s->rank, s->d, NULL));
    G->in_shapes[G->nin] = *s;
    G->ins[G->nin++] = v;
    return v;
}

static qo_val add_const(gen *G, int elem, const void *data, size_t nbytes) {
    qo_cref c = qo_const_new(G->m, qo_type_tensor(G->m, (qo_elem)elem, 0, NULL, NULL), data, nbytes, true);
    char nm[32];
    snprintf(nm, sizeof nm, "c%d", G->nvals++);
    return qo_graph_add_const(G->g, nm, c);
}

static qo_val node(gen *G, qo_op op, uint32_t nin, const qo_val *ins) {
    qo_node n = qo_node_new(G->g, op, NULL, NULL, nin, ins, 1);
    qo_val v = qo_node_output(G->g, n, 0);
    name_val(G, v);
    return v;
}

static const qo_op unary[] = {QO_OP_ABS, QO_OP_NEG, QO_OP_SQRT, QO_OP_EXP, QO_OP_LOG, QO_OP_RECIPROCAL, QO_OP_FLOOR,
                              QO_OP_CEIL, QO_OP_ROUND, QO_OP_ERF, QO_OP_TANH, QO_OP_SIGMOID, QO_OP_HARDSIGMOID,
                              QO_OP_HARDSWISH, QO_OP_RELU, QO_OP_LEAKYRELU, QO_OP_ELU, QO_OP_SELU, QO_OP_CELU,
                              QO_OP_SOFTPLUS, QO_OP_SOFTSIGN, QO_OP_SIGN, QO_OP_SIN, QO_OP_COS, QO_OP_ATAN,
                              QO_OP_THRESHOLDEDRELU, QO_OP_MISH, QO_OP_SHRINK, QO_OP_GELU};
static const qo_op binary[] = {QO_OP_ADD, QO_OP_SUB, QO_OP_MUL, QO_OP_DIV, QO_OP_POW, QO_OP_PRELU,
                               QO_OP_MIN, QO_OP_MAX, QO_OP_SUM, QO_OP_MEAN};

/* Builds one random graph; returns its module. */
static qo_module *build(gen *G) {
    memset(G, 0, sizeof *G);
    G->m = qo_module_new();
    qo_module_set_opset(G->m, "", 20);
    G->g = qo_graph_new(G->m, NULL, 0, "main");
    shape out = rand_shape();
    shape cur = pick(3) == 0 ? bcast_of(&out) : out;
    qo_val x = add_input(G, &cur);
    int nops = 2 + (int)pick(7);
    for (int k = 0; k < nops; k++) {
        int kind = (int)pick(10);
        qo_val y;
        if (kind < 4) {
            qo_op op = unary[pick(sizeof unary / sizeof *unary)];
            y = node(G, op, 1, &x);
            qo_node n = G->g->vals[y].def;
            if (op == QO_OP_LEAKYRELU || op == QO_OP_ELU || op == QO_OP_CELU || op == QO_OP_HARDSIGMOID)
                qo_node_set_attr_float(G->g, n, "alpha", (float)(1 + pick(9)) / 10.0f);
            if (op == QO_OP_GELU && pick(2)) qo_node_set_attr_string(G->g, n, "approximate", "tanh", 4);
        } else if (kind < 8) {
            qo_op op = binary[pick(sizeof binary / sizeof *binary)];
            shape s = pick(4) == 0 && op != QO_OP_PRELU ? grow(&cur) : bcast_of(&cur);
            qo_val b = pick(6) == 0 ? x : add_input(G, &s); /* sometimes x op x */
            qo_val in2[3] = {pick(2) ? x : b, 0, 0};
            in2[1] = in2[0] == x ? b : x;
            uint32_t ni = 2;
            if ((op == QO_OP_SUM || op == QO_OP_MIN || op == QO_OP_MAX || op == QO_OP_MEAN) && pick(2)) {
                shape s2 = bcast_of(&cur);
                in2[2] = add_input(G, &s2);
                ni = 3;
            }
            if (op == QO_OP_PRELU) in2[0] = x; /* slope broadcasts to x */
            if (op == QO_OP_PRELU) in2[1] = b;
            y = node(G, op, ni, in2);
            /* the new shape: broadcast of cur and b's shape */
            shape bs = b == x ? cur : G->in_shapes[G->nin - (ni == 3 ? 2 : 1)];
            shape r = cur.rank >= bs.rank ? cur : bs;
            const shape *o = cur.rank >= bs.rank ? &bs : &cur;
            for (int32_t i = 0; i < o->rank; i++) {
                int64_t e = o->d[i], *t = &r.d[r.rank - o->rank + i];
                if (*t == 1) *t = e;
            }
            cur = r;
        } else if (kind == 8) {
            float lo = -(float)pick(3), hi = (float)pick(4) / 2.0f;
            qo_val cl[3] = {x, add_const(G, QO_F32, &lo, 4), add_const(G, QO_F32, &hi, 4)};
            uint32_t ni = 1 + pick(3);
            if (ni == 2 && pick(2)) cl[1] = 0; /* omitted min */
            y = node(G, QO_OP_CLIP, ni, cl);
        } else {
            int sub = (int)pick(3);
            if (sub == 0) { /* Where(x > b, x, c) */
                shape s = bcast_of(&cur), s2 = bcast_of(&cur);
                qo_val b = add_input(G, &s);
                qo_val cin[2] = {x, b};
                qo_val c = node(G, pick(2) ? QO_OP_GREATER : QO_OP_LESSOREQUAL, 2, cin);
                qo_val w[3] = {c, x, add_input(G, &s2)};
                y = node(G, QO_OP_WHERE, 3, w);
            } else if (sub == 1) { /* Cast round trip through an integer type */
                static const int tos[] = {QO_I32, QO_I8, QO_U8, QO_I64, QO_BOOL, QO_I16};
                qo_val c = node(G, QO_OP_CAST, 1, &x);
                qo_node_set_attr_int(G->g, G->g->vals[c].def, "to", tos[pick(sizeof tos / sizeof *tos)]);
                y = node(G, QO_OP_CAST, 1, &c);
                qo_node_set_attr_int(G->g, G->g->vals[y].def, "to", QO_F32);
            } else { /* QuantizeLinear + DequantizeLinear, per tensor */
                float sc = (float)(1 + pick(8)) / 16.0f;
                uint8_t zpu = (uint8_t)pick(256);
                int8_t zpi = (int8_t)(pick(256) - 128);
                bool s8 = pick(2);
                qo_val q[3] = {x, add_const(G, QO_F32, &sc, 4), s8 ? add_const(G, QO_I8, &zpi, 1) : add_const(G, QO_U8, &zpu, 1)};
                qo_val qv = node(G, QO_OP_QUANTIZELINEAR, 3, q);
                qo_val d[3] = {qv, q[1], q[2]};
                y = node(G, QO_OP_DEQUANTIZELINEAR, 3, d);
            }
        }
        if (pick(8) == 0) qo_graph_add_output(G->g, y); /* an intermediate that is also an output */
        x = y;
    }
    qo_graph_add_output(G->g, x);
    return G->m;
}

static void fill(qo_tensor *t) {
    float *p = t->data;
    int64_t n = qo_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        uint32_t r = pick(100);
        if (r == 0) p[i] = NAN;
        else if (r == 1) p[i] = INFINITY;
        else if (r == 2) p[i] = -INFINITY;
        else if (r == 3) p[i] = -0.0f;
        else if (r == 4) p[i] = (float)((int)pick(9) - 4) + 0.5f;
        else if (r == 5) p[i] = pick(2) ? 3e38f : -1e30f;
        else p[i] = frand();
    }
}

static bool same(const qo_tensor *a, const qo_tensor *b, char *why, size_t cap) {
    if (a->elem != b->elem || a->rank != b->rank || a->nbytes != b->nbytes) {
        snprintf(why, cap, "shape/type differs");
        return false;
    }
    for (int32_t d = 0; d < a->rank; d++)
        if (a->dims[d] != b->dims[d]) {
            snprintf(why, cap, "dims differ");
            return false;
        }
    int64_t n = qo_tensor_numel(a);
    for (int64_t i = 0; i < n; i++) {
        float x = ((const float *)a->data)[i], y = ((const float *)b->data)[i];
        if ((isnan(x) && isnan(y)) || !memcmp(&x, &y, 4)) continue;
        snprintf(why, cap, "element %lld: JIT %.9g (%a), interpreter %.9g (%a)", (long long)i, x, x, y, y);
        return false;
    }
    return true;
}

int main(int argc, char **argv) {
    int count = 300, verbose = 0, pos = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-v")) verbose = 1;
        else if (pos++ == 0) count = atoi(argv[i]);
        else rng = strtoull(argv[i], NULL, 0) | 1;
    }
    qo_ctx cx;
    qo_ctx_init(&cx);
    unsigned pass = 0, fail = 0, fused = 0, groups = 0;
    for (int c = 0; c < count; c++) {
        gen G;
        qo_module *m = build(&G);
        const qo_graph *g = qo_module_main(m);
        qo_tensor in[64];
        const qo_tensor *inp[64];
        memset(in, 0, sizeof in);
        for (int i = 0; i < G.nin; i++) {
            qo_tensor_make(&cx, &in[i], QO_F32, G.in_shapes[i].rank, G.in_shapes[i].d);
            fill(&in[i]);
            inp[i] = &in[i];
        }
        uint32_t nout = g->noutputs;
        qo_tensor ref[16], got[16];
        memset(ref, 0, sizeof ref);
        bool ok = qo_interp_run(&cx, m, inp, (uint32_t)G.nin, ref, nout) == QO_OK;
        char why[512] = "";
        if (!ok) snprintf(why, sizeof why, "the interpreter failed");
        for (int fusion = 0; ok && fusion < 2; fusion++) {
            qo_jit_opts o = {.opt_level = -1, .no_fusion = fusion == 1};
            qo_jit *j = NULL;
            memset(got, 0, sizeof got);
            if (qo_jit_compile(&cx, m, &o, &j) != QO_OK) {
                snprintf(why, sizeof why, "compile failed");
                ok = false;
                break;
            }
            if (fusion == 0) {
                qo_jit_stats st;
                qo_jit_get_stats(j, &st);
                fused += st.fused_ops;
                groups += st.fused_groups;
            }
            if (qo_jit_run(j, inp, (uint32_t)G.nin, got, nout) != QO_OK) {
                snprintf(why, sizeof why, "run failed");
                ok = false;
            }
            for (uint32_t k = 0; ok && k < nout; k++) ok = same(&got[k], &ref[k], why, sizeof why);
            if (!ok && fusion) strncat(why, " (no_fusion)", sizeof why - strlen(why) - 1);
            for (uint32_t k = 0; k < nout; k++) qo_tensor_free(&got[k]);
            qo_jit_free(j);
        }
        if (ok) pass++;
        else fail++;
        if (!ok || verbose) {
            printf("%s graph %d: %s\n", ok ? "PASS" : "FAIL", c, why);
            if (!ok) qo_print_module(&cx, m, stdout, NULL);
        }
        for (uint32_t k = 0; k < nout; k++) qo_tensor_free(&ref[k]);
        for (int i = 0; i < G.nin; i++) qo_tensor_free(&in[i]);
        qo_module_free(m);
    }
    printf("fused: %u ops in %u loops over %d graphs\n", fused, groups, count);
    printf("%u passed, %u failed\n", pass, fail);
    return fail ? 1 : 0;
}
