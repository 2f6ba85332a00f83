/* tests/ir/test_float_print.c — float printing in the .qir text, through the public API.
 *
 * 300,000 random f32 bit patterns (uniform over all 2^32, so NaN payloads, denormals, ±0 and
 * ±inf all occur) plus hand-picked edges go into FLOATS attributes; the module is printed,
 * parsed back and every float must come back bit-identical, in decimal and in hex_floats mode.
 * For the decimal text the shortest-form property is checked independently of the printer: the
 * printed significant digits must round-trip through strtof, and one digit fewer (rounded by
 * printf %.*e) must not. */
#include "ir/ir.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define N 300000
#define PER_NODE 10000

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

/* Significant decimal digits of a printed decimal literal ("0.0125" -> 3, "100.0" -> 1). */
static int sig_digits(const char *s, size_t n) {
    char d[64];
    int k = 0;
    for (size_t i = 0; i < n && s[i] != 'e' && s[i] != 'E'; i++)
        if (s[i] >= '0' && s[i] <= '9' && k < 63) d[k++] = s[i];
    int a = 0;
    while (a < k && d[a] == '0') a++;
    while (k > a && d[k - 1] == '0') k--;
    return k - a;
}

int main(void) {
    static const uint32_t edges[] = {0x00000000, 0x80000000, 0x00000001, 0x80000001, 0x007fffff, 0x00800000,
                                     0x7f7fffff, 0xff7fffff, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000,
                                     0x7f800001, 0x7fbfffff, 0xffffffff, 0x3f800000, 0x3dcccccd, 0x4b000001,
                                     0x33d6bf95, 0x5f800000, 0x42c80000};
    uint32_t *bits = malloc(sizeof(uint32_t) * N);
    size_t ne = sizeof edges / sizeof *edges;
    for (size_t i = 0; i < N; i++) bits[i] = i < ne ? edges[i] : rnd();

    qo_ctx cx;
    qo_ctx_init(&cx);
    qo_module *m = qo_module_new();
    qo_graph *g = qo_graph_new(m, NULL, 0, "main");
    uint32_t nn = (N + PER_NODE - 1) / PER_NODE;
    for (uint32_t k = 0; k < nn; k++) {
        qo_node n = qo_node_new(g, QO_OP_UNKNOWN, "t", "Floats", 0, NULL, 0);
        qo_attr a = {.name = qo_intern(m, "v"), .kind = QO_ATTR_FLOATS};
        a.n = k + 1 < nn ? PER_NODE : (uint32_t)(N - (size_t)k * PER_NODE);
        a.u.fs = (const float *)(bits + (size_t)k * PER_NODE);
        qo_node_set_attr(g, n, &a);
        qo_node_set_attr_float(g, n, "f", *(const float *)&bits[k]);
    }
    unsigned pass = 0, fail = 0;
    for (int hex = 0; hex < 2; hex++) {
        qo_print_opts o = {.hex_floats = hex};
        char *t;
        qo_module *m2 = NULL;
        if (qo_print_module_str(&cx, m, &o, &t) || qo_parse_module(&cx, "floats.qir", t, strlen(t), &m2)) {
            printf("print/parse failed (hex=%d)\n", hex);
            return 1;
        }
        qo_graph *g2 = qo_module_main(m2);
        size_t i = 0;
        unsigned bad = 0;
        QO_FOR_EACH_NODE(g2, n) {
            const qo_attr *a = qo_node_attr(g2, n, "v");
            for (uint32_t j = 0; j < a->n; j++, i++) {
                uint32_t b;
                memcpy(&b, &a->u.fs[j], 4);
                if (b != bits[i] && bad++ < 10) printf("mismatch (hex=%d): %08x came back as %08x\n", hex, bits[i], b);
            }
        }
        if (i != N) bad++;
        bad ? fail++ : pass++;
        printf("%s: %zu floats round-tripped bit-exactly in %s mode (%u mismatches)\n", bad ? "FAIL" : "ok", i,
               hex ? "hex" : "decimal", bad);
        if (!hex) {
            /* shortest-digits check on every finite decimal literal of the text */
            unsigned checked = 0, longer = 0;
            for (const char *p = strstr(t, "v = ["); p; p = strstr(p, "v = [")) {
                p += 5;
                for (;;) {
                    size_t l = strcspn(p, ",]");
                    if (!memchr(p, 'n', l)) { /* skip inf/nan spellings */
                        char buf[64];
                        memcpy(buf, p, l);
                        buf[l] = 0;
                        float f = strtof(buf, NULL);
                        int sd = sig_digits(buf, l);
                        if (sd > 1) {
                            char fewer[64];
                            snprintf(fewer, sizeof fewer, "%.*e", sd - 2, (double)f);
                            float g2f = strtof(fewer, NULL);
                            if (memcmp(&g2f, &f, 4) == 0 && longer++ < 10)
                                printf("not shortest: %s (also %s)\n", buf, fewer);
                        }
                        checked++;
                    }
                    p += l;
                    if (*p == ']') break;
                    p += 2;
                }
            }
            longer ? fail++ : pass++;
            printf("%s: %u decimal literals are shortest (%u too long)\n", longer ? "FAIL" : "ok", checked, longer);
        }
        free(t);
        qo_module_free(m2);
    }
    qo_module_free(m);
    free(bits);
    printf("%u passed, %u failed\n", pass, fail);
    return fail ? 1 : 0;
}
