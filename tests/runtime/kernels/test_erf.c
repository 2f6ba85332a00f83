/* tests/runtime/kernels/test_erf.c — qo_erff (runtime/ref/erf.h), the erf of the reference kernels,
 * the JIT and the GELU epilogue, against glibc's erff and the correctly rounded erf (double erf
 * rounded to float): at most 2 ulp on a dense sweep of the non-negative floats (every 61st bit
 * pattern, plus every float in [0.9, 1.1] and [3.8, 4] around the branch points), exactly odd,
 * and right on the special values. Prints "N passed, N failed". */
#include "runtime/ref/erf.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int npass, nfail;

static int64_t ord(float f) { /* monotone integer image of a float */
    int32_t i;
    memcpy(&i, &f, 4);
    return i < 0 ? -(int64_t)(i & 0x7fffffff) : i;
}

static int64_t worst_libm, worst_cr;
static float at_libm, at_cr;
static uint64_t nsym;

static void one(float x) {
    float r = qo_erff(x), l = erff(x), c = (float)erf((double)x), n = qo_erff(-x);
    int64_t d1 = llabs(ord(r) - ord(l)), d2 = llabs(ord(r) - ord(c));
    if (d1 > worst_libm) worst_libm = d1, at_libm = x;
    if (d2 > worst_cr) worst_cr = d2, at_cr = x;
    if (n != -r) nsym++;
}

static void check(int ok, const char *what) {
    if (ok) npass++;
    else nfail++, printf("FAIL %s\n", what);
}

int main(void) {
    uint64_t n = 0;
    for (uint64_t b = 0; b < 0x7f800000u; b += 61, n++) {
        uint32_t u = (uint32_t)b;
        float x;
        memcpy(&x, &u, 4);
        one(x);
    }
    for (float x = 0.9f; x <= 1.1f; x = nextafterf(x, 2.0f), n++) one(x);
    for (float x = 3.8f; x <= 4.0f; x = nextafterf(x, 5.0f), n++) one(x);
    printf("%llu inputs: worst %lld ulp from erff (at %.9g), %lld ulp from the rounded erf (at %.9g)\n",
           (unsigned long long)n, (long long)worst_libm, at_libm, (long long)worst_cr, at_cr);
    check(worst_libm <= 2, "more than 2 ulp from glibc erff");
    check(worst_cr <= 2, "more than 2 ulp from the correctly rounded erf");
    check(nsym == 0, "qo_erff(-x) != -qo_erff(x)");
    float nz = qo_erff(-0.0f);
    check(nz == 0.0f && signbit(nz), "erf(-0) = -0");
    check(qo_erff(0.0f) == 0.0f && !signbit(qo_erff(0.0f)), "erf(0) = 0");
    check(qo_erff(INFINITY) == 1.0f && qo_erff(-INFINITY) == -1.0f, "erf(+-Inf) = +-1");
    check(isnan(qo_erff(NAN)), "erf(NaN) = NaN");
    check(qo_erff(3.40282347e+38f) == 1.0f, "erf(FLT_MAX) = 1");
    check(llabs(ord(qo_erff(1e-30f)) - ord(erff(1e-30f))) <= 1 && llabs(ord(qo_erff(1e-42f)) - ord(erff(1e-42f))) <= 1,
          "tiny and subnormal x: within 1 ulp of erff");
    printf("%d passed, %d failed\n", npass, nfail);
    return nfail != 0;
}
