/* ir/parse.c — recursive-descent parser for the .qir text form (grammar: docs/qir.md).
 *
 * One token of lookahead (`P->t`), lexed on demand from `P->pos`. Tensor types are read at the
 * character level (`tensor<1x?"n"x3xf32>` has no token boundaries), everything else by tokens.
 * Errors are reported as `file:line:col: error: message` followed by the source line and a caret;
 * after an error the statement loop skips to the next line at the same brace depth and goes on,
 * up to cx->max_errors. On any error the module is freed and *out is NULL. */
#include "ir.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

enum { T_EOF, T_IDENT, T_NUM, T_STR, T_VAL, T_SYM, T_PUNCT, T_BAD };
enum { P_COLON2 = 'C' }; /* "::" */

typedef struct tok {
    int kind;
    const char *p; /* whole token text */
    size_t n;
    uint32_t line, col;
    int c;     /* punctuation character */
    int depth; /* brace depth before this token */
    bool bol;  /* first token on its line */
} tok;

typedef struct mapent {
    char *path;
    const char *base;
    size_t size;
} mapent;

/* name -> value table of one graph: key = atom id, or (1 << 40 | number) for %N */
typedef struct scope {
    uint64_t *k;
    qo_val *v;
    uint32_t cap, n;
} scope;

typedef struct override {
    qo_val v;
    uint16_t flags;
} override;

typedef struct parser {
    qo_ctx *cx;
    const char *path;
    const char *src;
    size_t len, pos;
    uint32_t line;
    size_t lstart;
    int depth;
    tok t;
    qo_module *m;
    unsigned nerr, maxerr;
    bool stop;
    uint32_t errline;
    uint32_t last_line; /* line of the previous token */
    int nest;
    char *sbuf; /* scratch for decoded strings */
    size_t scap;
    mapent *maps;
    uint32_t nmaps, capmaps;
} parser;

#define MAX_NEST 128

/* ---- diagnostics ---------------------------------------------------------------------------- */

static void perr(parser *P, const char *at, const char *fmt, ...) QO_PRINTF(3, 4);
static void perr(parser *P, const char *at, const char *fmt, ...) {
    if (P->stop) return;
    if (at < P->src) at = P->src;
    if (at > P->src + P->len) at = P->src + P->len;
    /* line and column by scanning from the start: errors are few */
    uint32_t line = 1;
    const char *ls = P->src;
    for (const char *s = P->src; s < at; s++)
        if (*s == '\n') line++, ls = s + 1;
    const char *le = ls;
    while (le < P->src + P->len && *le != '\n') le++;
    size_t col = (size_t)(at - ls) + 1;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* source line window of at most 120 characters around the column, then a caret */
    size_t lw = (size_t)(le - ls), from = 0, w = lw;
    if (lw > 120) {
        from = col > 60 ? col - 60 : 0;
        if (from + 120 > lw) from = lw - 120;
        w = 120;
    }
    char snip[128], caret[128];
    for (size_t i = 0; i < w; i++) {
        unsigned char c = (unsigned char)ls[from + i];
        snip[i] = c == '\t' ? ' ' : (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    snip[w] = 0;
    size_t cc = col - 1 - from;
    if (cc > w) cc = w;
    memset(caret, ' ', cc);
    caret[cc] = '^';
    caret[cc + 1] = 0;
    qo_loc loc = {.file = P->path ? P->path : "<input>", .line = line, .col = (uint32_t)col, .node_index = -1};
    qo_error(P->cx, QO_ERR_PARSE, &loc, "%s\n%s\n%s", msg, snip, caret);
    P->errline = line;
    if (++P->nerr >= P->maxerr) {
        qo_error(P->cx, QO_ERR_LIMIT, &loc, "too many errors, stopping");
        P->stop = true;
    }
}

/* ---- lexer ---------------------------------------------------------------------------------- */

static int ch(const parser *P, size_t i) { return P->pos + i < P->len ? (unsigned char)P->src[P->pos + i] : 0; }
static bool is_digit(int c) { return c >= '0' && c <= '9'; }
static bool is_xdigit(int c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
static bool id_start(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool id_char(int c) { return id_start(c) || is_digit(c); }

static void skip_ws(parser *P) {
    while (P->pos < P->len) {
        int c = ch(P, 0);
        if (c == '\n') {
            P->line++;
            P->pos++;
            P->lstart = P->pos;
        } else if (c == ' ' || c == '\t' || c == '\r') {
            P->pos++;
        } else if (c == '/' && ch(P, 1) == '/') {
            while (P->pos < P->len && ch(P, 0) != '\n') P->pos++;
        } else {
            break;
        }
    }
}

/* Scans a quoted string starting at P->pos (on the '"'); returns false if unterminated. */
static bool scan_string(parser *P) {
    P->pos++;
    while (P->pos < P->len) {
        int c = ch(P, 0);
        if (c == '"') {
            P->pos++;
            return true;
        }
        if (c == '\n') return false;
        if (c == '\\' && P->pos + 1 < P->len && ch(P, 1) != '\n') P->pos++;
        P->pos++;
    }
    return false;
}

static void scan_number(parser *P) {
    if (ch(P, 0) == '-') P->pos++;
    if (ch(P, 0) == '0' && (ch(P, 1) == 'x' || ch(P, 1) == 'X')) {
        P->pos += 2;
        while (is_xdigit(ch(P, 0)) || ch(P, 0) == '.') P->pos++;
        if (ch(P, 0) == 'p' || ch(P, 0) == 'P') {
            P->pos++;
            if (ch(P, 0) == '+' || ch(P, 0) == '-') P->pos++;
            while (is_digit(ch(P, 0))) P->pos++;
        }
        return;
    }
    while (is_digit(ch(P, 0))) P->pos++;
    if (ch(P, 0) == '.') {
        P->pos++;
        while (is_digit(ch(P, 0))) P->pos++;
    }
    if ((ch(P, 0) == 'e' || ch(P, 0) == 'E') &&
        (is_digit(ch(P, 1)) || ((ch(P, 1) == '+' || ch(P, 1) == '-') && is_digit(ch(P, 2))))) {
        P->pos += 2;
        while (is_digit(ch(P, 0))) P->pos++;
    }
}

static void next(parser *P) {
    skip_ws(P);
    tok *t = &P->t;
    t->p = P->src + P->pos;
    t->line = P->line;
    t->col = (uint32_t)(P->pos - P->lstart + 1);
    t->depth = P->depth;
    t->bol = P->line != P->last_line;
    P->last_line = P->line;
    t->c = 0;
    if (P->pos >= P->len) {
        t->kind = T_EOF;
        t->n = 0;
        return;
    }
    size_t start = P->pos;
    int c = ch(P, 0);
    if (id_start(c)) {
        while (id_char(ch(P, 0))) P->pos++;
        t->kind = T_IDENT;
    } else if (is_digit(c) || (c == '-' && is_digit(ch(P, 1)))) {
        scan_number(P);
        t->kind = T_NUM;
    } else if (c == '"') {
        t->kind = scan_string(P) ? T_STR : T_BAD;
    } else if (c == '%' || c == '@') {
        P->pos++;
        t->kind = c == '%' ? T_VAL : T_SYM;
        if (ch(P, 0) == '"') {
            if (!scan_string(P)) t->kind = T_BAD;
        } else if (is_digit(ch(P, 0))) {
            while (is_digit(ch(P, 0))) P->pos++;
        } else if (id_start(ch(P, 0))) {
            while (id_char(ch(P, 0)) || ch(P, 0) == '.') P->pos++;
        } else {
            t->kind = T_BAD;
        }
    } else if (c == ':' && ch(P, 1) == ':') {
        P->pos += 2;
        t->kind = T_PUNCT;
        t->c = P_COLON2;
    } else if (strchr("(){}[]<>,=:-?*!", c)) {
        P->pos++;
        t->kind = T_PUNCT;
        t->c = c;
        if (c == '{') P->depth++;
        if (c == '}' && P->depth > 0) P->depth--;
    } else {
        P->pos++;
        t->kind = T_BAD;
    }
    t->n = P->pos - start;
}

static bool is_p(const parser *P, int c) { return P->t.kind == T_PUNCT && P->t.c == c; }
static bool is_kw(const parser *P, const char *kw) {
    size_t n = strlen(kw);
    return P->t.kind == T_IDENT && P->t.n == n && memcmp(P->t.p, kw, n) == 0;
}

/* Short description of the current token for messages. */
static const char *tokdesc(const parser *P, char *buf, size_t cap) {
    const tok *t = &P->t;
    if (t->kind == T_EOF) return "end of input";
    if (t->kind == T_BAD && t->p[0] == '"') return "unterminated string";
    if (t->kind == T_BAD && (t->p[0] == '%' || t->p[0] == '@')) {
        snprintf(buf, cap, "'%c' not followed by a name", t->p[0]);
        return buf;
    }
    size_t n = t->n > 40 ? 40 : t->n;
    char tmp[48];
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t->p[i];
        tmp[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    tmp[n] = 0;
    snprintf(buf, cap, "'%s%s'", tmp, t->n > 40 ? "..." : "");
    return buf;
}

/* Number of bytes in the hex string token P->t (quotes included); reports an odd digit count. */
static bool hex_token_len(parser *P, size_t *nbytes) {
    size_t nd = P->t.n - 2;
    if (nd % 2) {
        perr(P, P->t.p, "hex string has an odd number of digits");
        return false;
    }
    *nbytes = nd / 2;
    return true;
}

/* Decodes the hex string token P->t (of an even digit count) into module-arena bytes; NULL after
 * reporting "bad hex digit<what>" with the caret on the offending digit. Does not advance. */
static unsigned char *hex_token_decode(parser *P, qo_module *m, const char *what) {
    const char *s = P->t.p + 1;
    size_t nd = P->t.n - 2;
    unsigned char *buf = qo_arena_alloc(&m->arena, nd / 2);
    for (size_t i = 0; i < nd; i += 2) {
        int hi = s[i], lo = s[i + 1];
        if (!is_xdigit(hi) || !is_xdigit(lo)) {
            perr(P, s + i + (is_xdigit(hi) ? 1 : 0), "bad hex digit%s", what);
            return NULL;
        }
        hi = is_digit(hi) ? hi - '0' : (hi | 32) - 'a' + 10;
        lo = is_digit(lo) ? lo - '0' : (lo | 32) - 'a' + 10;
        buf[i / 2] = (unsigned char)(hi << 4 | lo);
    }
    return buf;
}

static bool expected(parser *P, const char *what) {
    char b[96];
    perr(P, P->t.p, "expected %s, found %s", what, tokdesc(P, b, sizeof b));
    return false;
}

static bool expect_p(parser *P, int c) {
    if (is_p(P, c)) {
        next(P);
        return true;
    }
    char w[8] = {'\'', (char)c, '\'', 0};
    if (c == P_COLON2) strcpy(w, "'::'");
    return expected(P, w);
}

static bool expect_kw(parser *P, const char *kw) {
    if (is_kw(P, kw)) {
        next(P);
        return true;
    }
    char w[64];
    snprintf(w, sizeof w, "'%s'", kw);
    return expected(P, w);
}

/* Decodes a quoted string whose opening quote is at s (already scanned, so terminated) into the
 * scratch buffer. Returns false after reporting a bad escape. */
static bool decode_at(parser *P, const char *s, const char **out, size_t *outn) {
    size_t need = 0;
    const char *e = s + 1;
    while (*e != '"') {
        if (*e == '\\') e++;
        e++;
        need++;
    }
    if (need + 1 > P->scap) {
        P->scap = need + 64;
        P->sbuf = qo_realloc(P->sbuf, P->scap);
    }
    size_t k = 0;
    for (const char *q = s + 1; *q != '"'; q++) {
        if (*q != '\\') {
            P->sbuf[k++] = *q;
            continue;
        }
        q++;
        switch (*q) {
        case '\\': P->sbuf[k++] = '\\'; break;
        case '"': P->sbuf[k++] = '"'; break;
        case 'n': P->sbuf[k++] = '\n'; break;
        case 't': P->sbuf[k++] = '\t'; break;
        case 'r': P->sbuf[k++] = '\r'; break;
        case 'x':
            if (is_xdigit((unsigned char)q[1]) && is_xdigit((unsigned char)q[2])) {
                char hx[3] = {q[1], q[2], 0};
                P->sbuf[k++] = (char)strtol(hx, NULL, 16);
                q += 2;
                break;
            }
            perr(P, q - 1, "bad escape: \\x needs two hex digits");
            return false;
        default: perr(P, q - 1, "unknown escape sequence '\\%c'", *q); return false;
        }
    }
    P->sbuf[k] = 0;
    *out = P->sbuf;
    *outn = k;
    return true;
}

/* Current token must be a string: interns it and advances. */
static bool take_str_atom(parser *P, qo_atom *a) {
    if (P->t.kind != T_STR) return expected(P, "a string");
    const char *s;
    size_t n;
    if (!decode_at(P, P->t.p, &s, &n)) return false;
    *a = qo_intern_n(P->m, s, n);
    next(P);
    return true;
}

/* `(` STRING `)` */
static bool paren_str(parser *P, qo_atom *a) {
    return expect_p(P, '(') && take_str_atom(P, a) && expect_p(P, ')');
}

/* ---- numbers -------------------------------------------------------------------------------- */

static bool num_is_float(const tok *t) {
    bool hex = t->n > 2 && (t->p[t->p[0] == '-'] == '0') &&
               (t->p[(t->p[0] == '-') + 1] == 'x' || t->p[(t->p[0] == '-') + 1] == 'X');
    for (size_t i = 0; i < t->n; i++) {
        char c = t->p[i];
        if (c == '.' || c == 'p' || c == 'P' || (!hex && (c == 'e' || c == 'E'))) return true;
    }
    return false;
}

static bool take_int(parser *P, int64_t *out) {
    if (P->t.kind != T_NUM || num_is_float(&P->t) || P->t.n > 40) return expected(P, "an integer");
    char buf[48];
    memcpy(buf, P->t.p, P->t.n);
    buf[P->t.n] = 0;
    bool neg = buf[0] == '-';
    const char *s = buf + neg;
    int base = (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) ? 16 : 10;
    errno = 0;
    char *end;
    unsigned long long u = strtoull(s, &end, base);
    if (*end || errno == ERANGE || end == s || (base == 16 && end == s + 2) ||
        u > (neg ? (unsigned long long)INT64_MAX + 1 : (unsigned long long)INT64_MAX)) {
        perr(P, P->t.p, "integer literal out of range");
        return false;
    }
    *out = neg ? (int64_t)(0 - u) : (int64_t)u;
    next(P);
    return true;
}

static bool take_int_range(parser *P, int64_t lo, int64_t hi, int64_t *out) {
    const char *at = P->t.p;
    if (!take_int(P, out)) return false;
    if (*out < lo || *out > hi) {
        perr(P, at, "integer %lld out of range [%lld, %lld]", (long long)*out, (long long)lo, (long long)hi);
        return false;
    }
    return true;
}

static bool take_float(parser *P, float *out) {
    bool neg = false;
    const char *at = P->t.p;
    if (is_p(P, '-')) {
        neg = true;
        next(P);
        if (!is_kw(P, "inf") && !is_kw(P, "nan")) return expected(P, "'inf' or 'nan' after '-'");
    }
    if (is_kw(P, "inf")) {
        *out = neg ? -INFINITY : INFINITY;
        next(P);
        return true;
    }
    if (is_kw(P, "nan")) {
        uint32_t b = neg ? 0xffc00000u : 0x7fc00000u;
        next(P);
        if (!neg && is_p(P, '(')) {
            next(P);
            int64_t v;
            if (!take_int_range(P, 0, 0xffffffffll, &v) || !expect_p(P, ')')) return false;
            b = (uint32_t)v;
            float f;
            memcpy(&f, &b, 4);
            if (!isnan(f)) {
                perr(P, at, "nan(0x%08x) is not a NaN bit pattern", b);
                return false;
            }
        }
        memcpy(out, &b, 4);
        return true;
    }
    if (P->t.kind != T_NUM || P->t.n > 60) return expected(P, "a floating-point number");
    char buf[64];
    memcpy(buf, P->t.p, P->t.n);
    buf[P->t.n] = 0;
    char *end;
    *out = strtof(buf, &end);
    if (*end) {
        perr(P, P->t.p, "malformed number '%s'", buf);
        return false;
    }
    next(P);
    return true;
}

/* ---- scopes --------------------------------------------------------------------------------- */

static qo_val *scope_slot(scope *s, uint64_t key, bool insert) {
    if (insert && (s->n + 1) * 2 > s->cap) {
        uint32_t ncap = s->cap ? s->cap * 2 : 64;
        uint64_t *nk = qo_calloc(ncap, sizeof *nk);
        qo_val *nv = qo_calloc(ncap, sizeof *nv);
        for (uint32_t i = 0; i < s->cap; i++)
            if (s->k[i]) {
                uint32_t h = (uint32_t)(s->k[i] * 0x9e3779b97f4a7c15ull >> 32) & (ncap - 1);
                while (nk[h]) h = (h + 1) & (ncap - 1);
                nk[h] = s->k[i];
                nv[h] = s->v[i];
            }
        qo_free(s->k);
        qo_free(s->v);
        s->k = nk;
        s->v = nv;
        s->cap = ncap;
    }
    if (!s->cap) return NULL;
    uint32_t h = (uint32_t)(key * 0x9e3779b97f4a7c15ull >> 32) & (s->cap - 1);
    while (s->k[h]) {
        if (s->k[h] == key) return &s->v[h];
        h = (h + 1) & (s->cap - 1);
    }
    if (!insert) return NULL;
    s->k[h] = key;
    s->n++;
    return &s->v[h];
}

static void scope_free(scope *s) {
    qo_free(s->k);
    qo_free(s->v);
}

/* Key and name of the current %value token (advances). */
static bool take_val_key(parser *P, uint64_t *key, qo_atom *name, const char **at) {
    *at = P->t.p;
    if (P->t.kind != T_VAL) return expected(P, "a value ('%name')");
    const char *s = P->t.p + 1;
    size_t n = P->t.n - 1;
    if (s[0] == '"') {
        const char *d;
        size_t dn;
        if (!decode_at(P, s, &d, &dn)) return false;
        if (!dn) {
            perr(P, P->t.p, "empty value name");
            return false;
        }
        *name = qo_intern_n(P->m, d, dn);
        *key = *name;
    } else if (is_digit((unsigned char)s[0])) {
        if (n > 9) {
            perr(P, P->t.p, "value number too large");
            return false;
        }
        uint64_t v = 0;
        for (size_t i = 0; i < n; i++) v = v * 10 + (uint64_t)(s[i] - '0');
        *name = 0;
        *key = (1ull << 40) | v;
    } else {
        *name = qo_intern_n(P->m, s, n);
        *key = *name;
    }
    next(P);
    return true;
}

#define POISON UINT32_MAX /* value whose defining statement had an error: uses are not reported again */

static void poison(scope *sc, uint64_t key) {
    qo_val *slot = scope_slot(sc, key, true);
    if (!*slot) *slot = POISON;
}

static bool define_val(parser *P, scope *sc, uint64_t key, const char *at, qo_val v) {
    qo_val *slot = scope_slot(sc, key, true);
    if (*slot && *slot != POISON) {
        perr(P, at, "redefinition of value '%.*s'", (int)(strcspn(at, " ,:=)\n") > 60 ? 60 : strcspn(at, " ,:=)\n")), at);
        return false;
    }
    *slot = v;
    return true;
}

/* Operand: %value (must be defined) or `_` (omitted, 0). */
static bool take_operand(parser *P, scope *sc, qo_val *out) {
    if (is_kw(P, "_")) {
        next(P);
        *out = 0;
        return true;
    }
    uint64_t key;
    qo_atom name;
    const char *at;
    size_t n = P->t.n;
    if (!take_val_key(P, &key, &name, &at)) return false;
    qo_val *slot = scope_slot(sc, key, false);
    if (!slot) {
        perr(P, at, "use of undefined value '%.*s'", (int)(n > 60 ? 60 : n), at);
        return false;
    }
    *out = *slot == POISON ? 0 : *slot;
    return true;
}

/* ---- types ---------------------------------------------------------------------------------- */

static bool parse_type(parser *P, qo_type *out);
static bool parse_constant(parser *P, qo_type ctx, qo_cref *out, bool allow_none);

/* Element name: the qo_elem_name spellings, `undef`, or `elemN`. Returns -1 if unknown. */
static int elem_from_word(const char *s, size_t n) {
    if (n == 5 && memcmp(s, "undef", 5) == 0) return QO_UNDEF;
    if (n > 4 && n < 8 && memcmp(s, "elem", 4) == 0) {
        int v = 0;
        for (size_t i = 4; i < n; i++) {
            if (!is_digit((unsigned char)s[i])) return -1;
            v = v * 10 + (s[i] - '0');
        }
        return v <= 255 ? v : -1;
    }
    qo_elem e = qo_elem_from_name(s, n);
    return e == QO_UNDEF ? -1 : (int)e;
}

static bool take_elem(parser *P, int *e) {
    if (P->t.kind != T_IDENT) return expected(P, "an element type");
    *e = elem_from_word(P->t.p, P->t.n);
    if (*e < 0) {
        perr(P, P->t.p, "unknown element type '%.*s'", (int)(P->t.n > 40 ? 40 : P->t.n), P->t.p);
        return false;
    }
    next(P);
    return true;
}

static bool type_start(const parser *P) {
    if (is_p(P, '?')) return true;
    if (P->t.kind != T_IDENT || ch(P, 0) != '<') return false;
    return is_kw(P, "tensor") || is_kw(P, "sparse") || is_kw(P, "seq") || is_kw(P, "opt") || is_kw(P, "map");
}

/* After `!q<` in token mode; leaves the closing '>' as the current token without advancing. */
static bool parse_quant(parser *P, qo_quant *q, int *elem) {
    memset(q, 0, sizeof *q);
    if (P->t.kind != T_IDENT || (P->t.p[0] != 'i' && P->t.p[0] != 'u') || P->t.n < 2 || P->t.n > 4)
        return expected(P, "a storage type like 'i8' or 'u4'");
    unsigned bits = 0;
    for (size_t i = 1; i < P->t.n; i++) {
        if (!is_digit((unsigned char)P->t.p[i])) return expected(P, "a storage type like 'i8' or 'u4'");
        bits = bits * 10 + (unsigned)(P->t.p[i] - '0');
    }
    if (bits > 255) {
        perr(P, P->t.p, "quantized storage width %u out of range", bits);
        return false;
    }
    q->bits = (uint8_t)bits;
    q->is_signed = P->t.p[0] == 'i';
    next(P);
    if (!expect_p(P, ':') || !take_elem(P, elem)) return false;
    for (;;) {
        if (is_kw(P, "narrow")) q->narrow = 1;
        else if (is_kw(P, "pow2")) q->pow2 = 1;
        else if (is_kw(P, "per_axis")) q->per_axis = 1;
        else break;
        next(P);
    }
    int64_t zp;
    if (!expect_p(P, ',') || !take_float(P, &q->scale) || !expect_p(P, ',') ||
        !take_int_range(P, INT32_MIN, INT32_MAX, &zp))
        return false;
    q->zp = (int32_t)zp;
    while (is_p(P, ',')) {
        next(P);
        if (P->t.kind != T_IDENT) return expected(P, "a quantization field (round, axis, scales, zps)");
        tok key = P->t;
        next(P);
        if (!expect_p(P, '=')) return false;
        int64_t v;
        if (key.n == 5 && memcmp(key.p, "round", 5) == 0) {
            if (P->t.kind == T_NUM) {
                if (!take_int_range(P, 0, 255, &v)) return false;
                q->round = (uint8_t)v;
            } else {
                char nm[32];
                if (P->t.kind != T_IDENT || P->t.n >= sizeof nm) return expected(P, "a rounding mode");
                memcpy(nm, P->t.p, P->t.n);
                nm[P->t.n] = 0;
                int r = qo_round_from_name(nm);
                if (r < 0) {
                    perr(P, P->t.p, "unknown rounding mode '%s'", nm);
                    return false;
                }
                q->round = (uint8_t)r;
                next(P);
            }
        } else if (key.n == 4 && memcmp(key.p, "axis", 4) == 0) {
            if (!take_int_range(P, INT16_MIN, INT16_MAX, &v)) return false;
            q->axis = (int16_t)v;
        } else if (key.n == 6 && memcmp(key.p, "scales", 6) == 0) {
            if (!parse_constant(P, 0, &q->scales, true)) return false;
        } else if (key.n == 3 && memcmp(key.p, "zps", 3) == 0) {
            if (!parse_constant(P, 0, &q->zps, true)) return false;
        } else {
            perr(P, key.p, "unknown quantization field '%.*s'", (int)(key.n > 40 ? 40 : key.n), key.p);
            return false;
        }
    }
    if (!is_p(P, '>')) return expected(P, "'>' to close '!q<'");
    return true;
}

/* tensor<...> / sparse<...> body at the character level; P->pos is on the '<'. */
static bool parse_tensor_type(parser *P, bool sparse, qo_type *out) {
    P->pos++;
    int64_t *dims = NULL;
    qo_atom *syms = NULL;
    uint32_t rank = 0, cap = 0, capsym = 0;
    bool unknown_rank = false, anysym = false, ok = false;
    qo_quant q;
    bool has_q = false;
    int elem = 0;
    for (;;) {
        int c = ch(P, 0);
        const char *at = P->src + P->pos;
        if (c == '*' && rank == 0 && !unknown_rank) {
            P->pos++;
            if (ch(P, 0) != 'x') {
                perr(P, P->src + P->pos, "expected 'x' after '*'");
                goto done;
            }
            P->pos++;
            unknown_rank = true;
            continue;
        }
        if (!(is_digit(c) || c == '?' || (c == '-' && is_digit(ch(P, 1))))) break;
        if (unknown_rank) {
            perr(P, at, "a tensor of unknown rank ('*') has no dimensions");
            goto done;
        }
        int64_t d = -1;
        if (c == '?') {
            P->pos++;
        } else {
            bool neg = c == '-';
            if (neg) P->pos++;
            uint64_t u = 0;
            while (is_digit(ch(P, 0))) {
                if (u > (uint64_t)INT64_MAX / 10) {
                    perr(P, at, "dimension out of range");
                    goto done;
                }
                u = u * 10 + (uint64_t)(ch(P, 0) - '0');
                P->pos++;
            }
            if (u > (uint64_t)INT64_MAX) {
                perr(P, at, "dimension out of range");
                goto done;
            }
            d = neg ? -(int64_t)u : (int64_t)u;
        }
        qo_atom sym = 0;
        if (ch(P, 0) == '"') {
            size_t s0 = P->pos;
            if (!scan_string(P)) {
                perr(P, P->src + s0, "unterminated string");
                goto done;
            }
            const char *s;
            size_t n;
            if (!decode_at(P, P->src + s0, &s, &n)) goto done;
            sym = qo_intern_n(P->m, s, n);
            anysym |= sym != 0;
        }
        if (ch(P, 0) != 'x') {
            perr(P, P->src + P->pos, "expected 'x' after a dimension");
            goto done;
        }
        P->pos++;
        if (rank >= 1u << 20) {
            perr(P, at, "too many dimensions");
            goto done;
        }
        QO_GROW(dims, cap, rank + 1);
        QO_GROW(syms, capsym, rank + 1);
        dims[rank] = d;
        syms[rank] = sym;
        rank++;
    }
    if (ch(P, 0) == '!' && ch(P, 1) == 'q' && ch(P, 2) == '<') {
        P->pos += 3;
        next(P);
        if (!parse_quant(P, &q, &elem)) goto done;
        has_q = true; /* P->pos is right after the quant's '>' */
    } else {
        size_t s0 = P->pos;
        while (id_char(ch(P, 0))) P->pos++;
        if (P->pos == s0) {
            perr(P, P->src + s0, "expected a dimension or an element type");
            goto done;
        }
        elem = elem_from_word(P->src + s0, P->pos - s0);
        if (elem < 0) {
            perr(P, P->src + s0, "unknown element type '%.*s'", (int)(P->pos - s0 > 40 ? 40 : P->pos - s0),
                 P->src + s0);
            goto done;
        }
    }
    if (ch(P, 0) != '>') {
        perr(P, P->src + P->pos, "expected '>' to close the %s type", sparse ? "sparse" : "tensor");
        goto done;
    }
    P->pos++;
    next(P);
    int32_t r = unknown_rank ? -1 : (int32_t)rank;
    *out = sparse ? qo_type_sparse(P->m, (qo_elem)elem, r, dims, anysym ? syms : NULL)
                  : qo_type_tensor(P->m, (qo_elem)elem, r, dims, anysym ? syms : NULL);
    if (has_q) *out = qo_type_with_quant(P->m, *out, &q);
    ok = true;
done:
    qo_free(dims);
    qo_free(syms);
    return ok;
}

static bool parse_type(parser *P, qo_type *out) {
    if (is_p(P, '?')) {
        next(P);
        *out = 0;
        return true;
    }
    if (!type_start(P)) return expected(P, "a type");
    if (++P->nest > MAX_NEST) {
        perr(P, P->t.p, "types nested too deeply");
        P->nest--;
        return false;
    }
    bool ok = false;
    if (is_kw(P, "tensor") || is_kw(P, "sparse")) {
        ok = parse_tensor_type(P, is_kw(P, "sparse"), out);
    } else if (is_kw(P, "seq") || is_kw(P, "opt")) {
        bool seq = is_kw(P, "seq");
        P->pos++; /* '<' */
        next(P);
        qo_type inner;
        if (parse_type(P, &inner) && expect_p(P, '>')) {
            *out = seq ? qo_type_sequence(P->m, inner) : qo_type_optional(P->m, inner);
            ok = true;
        }
    } else { /* map */
        P->pos++;
        next(P);
        int key;
        qo_type inner;
        if (take_elem(P, &key) && expect_p(P, ',') && parse_type(P, &inner) && expect_p(P, '>')) {
            *out = qo_type_map(P->m, (qo_elem)key, inner);
            ok = true;
        }
    }
    P->nest--;
    return ok;
}

/* ---- constants ------------------------------------------------------------------------------ */

static bool map_file(parser *P, const char *at, const char *path, uint64_t off, uint64_t len, const void **out) {
    mapent *me = NULL;
    for (uint32_t i = 0; i < P->nmaps; i++)
        if (strcmp(P->maps[i].path, path) == 0) me = &P->maps[i];
    if (!me) {
        int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        int err = errno;
        if (fd < 0 && path[0] != '/' && P->path && strchr(P->path, '/')) {
            /* relative to the .qir file's directory */
            size_t dl = (size_t)(strrchr(P->path, '/') - P->path);
            char *alt = qo_malloc(dl + strlen(path) + 2);
            memcpy(alt, P->path, dl);
            alt[dl] = '/';
            strcpy(alt + dl + 1, path);
            fd = open(alt, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
            qo_free(alt);
        }
        if (fd < 0) {
            perr(P, at, "cannot open constant data file '%s': %s", path, strerror(err));
            return false;
        }
        struct stat st;
        if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            close(fd);
            perr(P, at, "constant data file '%s' is not a regular file", path);
            return false;
        }
        const char *base = "";
        size_t size = (size_t)st.st_size;
        if (size) {
            void *mp = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
            if (mp == MAP_FAILED) {
                int e = errno;
                close(fd);
                perr(P, at, "cannot map constant data file '%s': %s", path, strerror(e));
                return false;
            }
            qo_module_add_mapping(P->m, mp, size);
            base = mp;
        }
        close(fd);
        QO_GROW(P->maps, P->capmaps, P->nmaps + 1);
        me = &P->maps[P->nmaps++];
        me->path = qo_strdup(path);
        me->base = base;
        me->size = size;
    }
    if (off > me->size || len > me->size - off) {
        perr(P, at, "constant data file '%s' is too short: need bytes [%llu, %llu), file has %zu bytes", path,
             (unsigned long long)off, (unsigned long long)(off + len), me->size);
        return false;
    }
    *out = me->base + off;
    return true;
}

/* `offset=N, length=N )` tail shared by file(...) and ext(...) */
static bool take_off_len(parser *P, int64_t *off, int64_t *len, int64_t lo) {
    return expect_p(P, ',') && expect_kw(P, "offset") && expect_p(P, '=') && take_int_range(P, lo, INT64_MAX, off) &&
           expect_p(P, ',') && expect_kw(P, "length") && expect_p(P, '=') && take_int_range(P, lo, INT64_MAX, len) &&
           expect_p(P, ')');
}

static bool put_number(parser *P, int elem, unsigned char *dst, const char *at) {
    switch (elem) {
    case QO_F32: {
        float f;
        if (!take_float(P, &f)) return false;
        memcpy(dst, &f, 4);
        return true;
    }
    case QO_F64: {
        float f; /* f64 lists are a convenience only: written through float */
        if (!take_float(P, &f)) return false;
        double d = f;
        memcpy(dst, &d, 8);
        return true;
    }
    default: break;
    }
    int64_t v;
    if (!take_int(P, &v)) return false;
    int bits = qo_elem_bits(elem);
    bool sgn = elem == QO_I8 || elem == QO_I16 || elem == QO_I32 || elem == QO_I64;
    if (elem == QO_BOOL && (v < 0 || v > 1)) {
        perr(P, at, "bool element must be 0 or 1");
        return false;
    }
    if (bits < 64 && (sgn ? (v < -(1ll << (bits - 1)) || v >= (1ll << (bits - 1))) : (v < 0 || v >= (1ll << bits)))) {
        perr(P, at, "integer %lld does not fit the element type %s", (long long)v, qo_elem_name(elem));
        return false;
    }
    uint64_t u = (uint64_t)v;
    for (int i = 0; i < bits / 8; i++) dst[i] = (unsigned char)(u >> (8 * i));
    return true;
}

static bool parse_constant(parser *P, qo_type ctx, qo_cref *out, bool allow_none) {
    const char *at = P->t.p;
    if (allow_none && is_kw(P, "none")) {
        next(P);
        *out = 0;
        return true;
    }
    qo_type ty = ctx;
    if (type_start(P) && !parse_type(P, &ty)) return false;
    const qo_typedata *td = qo_type_get(P->m, ty);
    int64_t numel = qo_type_numel(P->m, ty);
    if (!td || td->kind != QO_TY_TENSOR || numel < 0) {
        perr(P, at, "a constant needs a static tensor type");
        return false;
    }
    int elem = td->elem;
    size_t want = qo_elem_storage(elem, numel);
    qo_module *m = P->m;
    qo_cref c = 0;
    const char *pat = P->t.p;
    if (is_kw(P, "hex")) {
        next(P);
        if (P->t.kind != T_STR) return expected(P, "a hex string after 'hex'");
        if (elem == QO_STR) {
            perr(P, pat, "string tensors are written as a list of strings, not hex");
            return false;
        }
        size_t nbytes;
        if (!hex_token_len(P, &nbytes)) return false;
        if (nbytes != want || qo_elem_bits(elem) == 0) {
            perr(P, pat, "constant of %s type with %lld elements needs %zu bytes, got %zu",
                 qo_elem_name(elem) ? qo_elem_name(elem) : "unknown", (long long)numel, want, nbytes);
            return false;
        }
        unsigned char *buf = hex_token_decode(P, m, " in constant data");
        if (!buf) return false;
        next(P);
        c = qo_const_new(m, ty, buf, nbytes, false);
        qo_const_get_mut(m, c)->storage = QO_CONST_OWNED; /* the bytes live in the module arena */
    } else if (is_p(P, '[')) {
        next(P);
        int64_t cnt = 0;
        if (elem == QO_STR) {
            qo_bytes *ss = NULL;
            uint32_t cap = 0;
            bool ok = true;
            while (!is_p(P, ']')) {
                if (cnt && !expect_p(P, ',')) {
                    ok = false;
                    break;
                }
                qo_atom a;
                if (cnt >= INT32_MAX || !take_str_atom(P, &a)) {
                    ok = false;
                    break;
                }
                QO_GROW(ss, cap, (uint32_t)cnt + 1);
                ss[cnt].p = qo_str(m, a);
                ss[cnt].n = qo_strlen(m, a);
                cnt++;
            }
            if (ok && cnt != numel) {
                perr(P, pat, "string constant has %lld elements, its type has %lld", (long long)cnt, (long long)numel);
                ok = false;
            }
            if (ok) {
                next(P);
                c = qo_const_new(m, ty, ss ? (const void *)ss : (const void *)"", (size_t)cnt * sizeof(qo_bytes), true);
            }
            qo_free(ss);
            if (!ok) return false;
        } else {
            int bits = qo_elem_bits(elem);
            bool okelem = elem == QO_F32 || elem == QO_F64 || elem == QO_BOOL ||
                          (bits >= 8 && bits <= 64 && elem != QO_F16 && elem != QO_BF16 && elem != QO_C64 &&
                           elem != QO_C128 && !(elem >= QO_F8E4M3FN && elem <= QO_F8E5M2FNUZ));
            if (!okelem) {
                perr(P, pat, "list literals are not supported for %s constants; use hex\"...\"",
                     qo_elem_name(elem) ? qo_elem_name(elem) : "this element type");
                return false;
            }
            unsigned char *buf = qo_arena_alloc(&m->arena, want);
            while (!is_p(P, ']')) {
                if (cnt && !expect_p(P, ',')) return false;
                if (cnt >= numel) {
                    perr(P, P->t.p, "too many elements for a constant with %lld elements", (long long)numel);
                    return false;
                }
                if (!put_number(P, elem, buf + (size_t)cnt * (size_t)(bits / 8), P->t.p)) return false;
                cnt++;
            }
            if (cnt != numel) {
                perr(P, P->t.p, "constant has %lld elements, its type has %lld", (long long)cnt, (long long)numel);
                return false;
            }
            next(P);
            c = qo_const_new(m, ty, buf, want, false);
            qo_const_get_mut(m, c)->storage = QO_CONST_OWNED;
        }
    } else if (is_kw(P, "file")) {
        next(P);
        qo_atom path;
        int64_t off, len;
        const char *fat = P->t.p;
        if (!expect_p(P, '(') || !take_str_atom(P, &path) || !take_off_len(P, &off, &len, 0)) return false;
        if (elem == QO_STR || (uint64_t)len != want) {
            perr(P, fat, "file(...) length %lld does not match the %zu bytes of the constant's type", (long long)len,
                 want);
            return false;
        }
        const void *data;
        if (!map_file(P, fat, qo_str(m, path), (uint64_t)off, (uint64_t)len, &data)) return false;
        c = qo_const_new(m, ty, data, (size_t)len, false);
        qo_constdata *cd = qo_const_get_mut(m, c);
        cd->file = path;
        cd->file_offset = (uint64_t)off;
    } else if (is_kw(P, "elided")) {
        perr(P, pat, "cannot parse an elided constant: this text was printed with elide_bytes set; print it "
                     "again without eliding to get re-parseable text");
        return false;
    } else {
        return expected(P, "constant data (hex\"...\", [...] or file(...))");
    }
    if (is_kw(P, "ext")) {
        next(P);
        qo_atom loc;
        int64_t off, len;
        if (!expect_p(P, '(') || !take_str_atom(P, &loc) || !take_off_len(P, &off, &len, INT64_MIN)) return false;
        qo_constdata *cd = qo_const_get_mut(m, c);
        cd->ext_location = loc;
        cd->ext_offset = off;
        cd->ext_length = len;
    }
    *out = c;
    return true;
}

/* ---- graphs ----------------------------------------------------------------------------------- */

typedef struct vann {
    qo_type type;
    bool info, has_flags;
    qo_atom doc;
    uint16_t flags;
    const char *at;
} vann;

typedef struct gctx {
    qo_graph *g;
    scope sc;
    override *ov;
    uint32_t nov, capov;
    bool returned;
} gctx;

static bool parse_vtype(parser *P, vann *a) {
    memset(a, 0, sizeof *a);
    a->at = P->t.p;
    if (!parse_type(P, &a->type)) return false;
    for (;;) {
        if (is_kw(P, "info")) {
            next(P);
            a->info = true;
        } else if (is_kw(P, "doc")) {
            next(P);
            if (!paren_str(P, &a->doc)) return false;
        } else if (is_kw(P, "flags")) {
            next(P);
            int64_t f;
            if (!expect_p(P, '(') || !take_int_range(P, 0, 0xffff, &f) || !expect_p(P, ')')) return false;
            a->has_flags = true;
            a->flags = (uint16_t)f;
        } else {
            return true;
        }
    }
}

static void apply_vann(gctx *gc, qo_val v, const vann *a) {
    qo_value *vd = &gc->g->vals[v];
    vd->type = a->type;
    if (a->info) vd->flags |= QO_VAL_INFO;
    vd->doc = a->doc;
    if (a->has_flags) {
        QO_GROW(gc->ov, gc->capov, gc->nov + 1);
        gc->ov[gc->nov].v = v;
        gc->ov[gc->nov].flags = a->flags;
        gc->nov++;
    }
}

static bool parse_graph(parser *P, qo_graph *parent, qo_node pnode, uint32_t *gindex);

typedef struct attrvec {
    qo_attr *a;
    uint32_t n, cap;
} attrvec;

static bool kw_in(const tok *t, const char *kw) {
    size_t n = strlen(kw);
    return t->kind == T_IDENT && t->n == n && memcmp(t->p, kw, n) == 0;
}

/* List payload of an attribute: `[` elements `]`; `kind` is preset by a typed prefix (ints[...]) or
 * QO_ATTR_UNDEF to infer it from the first element. */
static bool parse_attr_list(parser *P, qo_graph *g, qo_node n, qo_attr *a, int kind) {
    qo_module *m = P->m;
    if (!expect_p(P, '[')) return false;
    void *buf = NULL;
    uint32_t cnt = 0, cap = 0;
    size_t esz = 8;
    bool ok = true;
    bool fixed = kind != QO_ATTR_UNDEF;
    int64_t *ints = NULL; /* ints, or float bits in the low 4 bytes */
    uint32_t capi = 0;
    while (!is_p(P, ']')) {
        if (cnt && !expect_p(P, ',')) {
            ok = false;
            break;
        }
        if (cnt >= (1u << 28)) {
            perr(P, P->t.p, "list too long");
            ok = false;
            break;
        }
        int ek;
        if (P->t.kind == T_NUM || is_p(P, '-') || is_kw(P, "inf") || is_kw(P, "nan"))
            ek = (P->t.kind == T_NUM && !num_is_float(&P->t)) ? QO_ATTR_INTS : QO_ATTR_FLOATS;
        else if (P->t.kind == T_STR) ek = QO_ATTR_STRINGS;
        else if (is_kw(P, "graph")) ek = QO_ATTR_GRAPHS;
        else if (type_start(P) || is_kw(P, "none")) ek = QO_ATTR_TENSORS;
        else {
            ok = expected(P, "a list element");
            break;
        }
        bool numeric = ek == QO_ATTR_INTS || ek == QO_ATTR_FLOATS;
        if (kind == QO_ATTR_UNDEF) kind = ek;
        bool kind_numeric = kind == QO_ATTR_INTS || kind == QO_ATTR_FLOATS;
        if (ek != kind && !(numeric && kind_numeric)) {
            perr(P, P->t.p, "list element does not match the list's kind (%s)", qo_attr_kind_name(kind));
            ok = false;
            break;
        }
        if (numeric) {
            QO_GROW(ints, capi, cnt + 1);
            if (kind == QO_ATTR_INTS && ek == QO_ATTR_FLOATS) {
                if (fixed) {
                    perr(P, P->t.p, "float element in an ints[] list");
                    ok = false;
                    break;
                }
                for (uint32_t i = 0; i < cnt; i++) { /* an inferred ints list turns into floats */
                    float f = (float)ints[i];
                    ints[i] = 0;
                    memcpy(&ints[i], &f, 4);
                }
                kind = QO_ATTR_FLOATS;
            }
            if (kind == QO_ATTR_INTS) {
                if (!take_int(P, &ints[cnt])) {
                    ok = false;
                    break;
                }
            } else {
                float f;
                if (ek == QO_ATTR_INTS) { /* an integer written in a floats list */
                    int64_t v;
                    if (!take_int(P, &v)) {
                        ok = false;
                        break;
                    }
                    f = (float)v;
                } else if (!take_float(P, &f)) {
                    ok = false;
                    break;
                }
                ints[cnt] = 0;
                memcpy(&ints[cnt], &f, 4);
            }
            cnt++;
            continue;
        }
        if (ek == QO_ATTR_STRINGS) {
            esz = sizeof(qo_bytes);
            qo_atom s;
            if (!take_str_atom(P, &s)) {
                ok = false;
                break;
            }
            QO_GROW(*(qo_bytes **)&buf, cap, cnt + 1);
            ((qo_bytes *)buf)[cnt].p = qo_str(m, s);
            ((qo_bytes *)buf)[cnt].n = qo_strlen(m, s);
        } else if (ek == QO_ATTR_TENSORS) {
            esz = sizeof(qo_cref);
            qo_cref c;
            if (!parse_constant(P, 0, &c, true)) {
                ok = false;
                break;
            }
            QO_GROW(*(qo_cref **)&buf, cap, cnt + 1);
            ((qo_cref *)buf)[cnt] = c;
        } else {
            esz = sizeof(uint32_t);
            uint32_t gi;
            if (!parse_graph(P, g, n, &gi)) {
                ok = false;
                break;
            }
            QO_GROW(*(uint32_t **)&buf, cap, cnt + 1);
            ((uint32_t *)buf)[cnt] = gi;
        }
        cnt++;
    }
    if (ok) {
        next(P); /* ']' */
        if (kind == QO_ATTR_UNDEF) {
            perr(P, P->t.p, "empty list needs a kind prefix (ints[], floats[], strings[], tensors[], graphs[])");
            ok = false;
        }
    }
    if (ok) {
        a->kind = (uint8_t)kind;
        a->n = cnt;
        if (kind == QO_ATTR_INTS) {
            int64_t *dst = qo_arena_alloc(&m->arena, sizeof(int64_t) * cnt);
            if (cnt) memcpy(dst, ints, sizeof(int64_t) * cnt);
            a->u.is = dst;
        } else if (kind == QO_ATTR_FLOATS) {
            float *dst = qo_arena_alloc(&m->arena, sizeof(float) * cnt);
            for (uint32_t i = 0; i < cnt; i++) memcpy(&dst[i], &ints[i], 4);
            a->u.fs = dst;
        } else {
            void *dst = qo_arena_alloc(&m->arena, esz * cnt);
            if (cnt) memcpy(dst, buf, esz * cnt);
            a->u.is = dst; /* same union slot for every list pointer */
            if (kind == QO_ATTR_STRINGS) a->u.ss = dst;
            else if (kind == QO_ATTR_TENSORS) a->u.ts = dst;
            else a->u.gs = dst;
        }
    }
    qo_free(buf);
    qo_free(ints);
    return ok;
}

static bool parse_attr(parser *P, qo_graph *g, qo_node n, qo_attr *a) {
    qo_module *m = P->m;
    memset(a, 0, sizeof *a);
    if (P->t.kind == T_IDENT) {
        a->name = qo_intern_n(m, P->t.p, P->t.n);
        next(P);
    } else if (P->t.kind == T_STR) {
        if (!take_str_atom(P, &a->name)) return false;
    } else {
        return expected(P, "an attribute name");
    }
    if (!a->name) {
        perr(P, P->t.p, "empty attribute name");
        return false;
    }
    if (!expect_p(P, '=')) return false;
    tok t = P->t;
    if (t.kind == T_NUM && !num_is_float(&t)) {
        a->kind = QO_ATTR_INT;
        if (!take_int(P, &a->u.i)) return false;
    } else if (t.kind == T_NUM || is_p(P, '-') || kw_in(&t, "inf") || kw_in(&t, "nan")) {
        a->kind = QO_ATTR_FLOAT;
        if (!take_float(P, &a->u.f)) return false;
    } else if (t.kind == T_STR) {
        a->kind = QO_ATTR_STRING;
        qo_atom s;
        if (!take_str_atom(P, &s)) return false;
        a->u.s.p = qo_str(m, s);
        a->u.s.n = qo_strlen(m, s);
    } else if (is_p(P, '[')) {
        if (!parse_attr_list(P, g, n, a, QO_ATTR_UNDEF)) return false;
    } else if (kw_in(&t, "ints") || kw_in(&t, "floats") || kw_in(&t, "strings") || kw_in(&t, "tensors") ||
               kw_in(&t, "graphs")) {
        int k = kw_in(&t, "ints") ? QO_ATTR_INTS : kw_in(&t, "floats") ? QO_ATTR_FLOATS
              : kw_in(&t, "strings") ? QO_ATTR_STRINGS : kw_in(&t, "tensors") ? QO_ATTR_TENSORS : QO_ATTR_GRAPHS;
        a->kind = (uint8_t)k; /* marks the kind as fixed */
        next(P);
        if (!parse_attr_list(P, g, n, a, k)) return false;
    } else if (kw_in(&t, "graph")) {
        a->kind = QO_ATTR_GRAPH;
        if (!parse_graph(P, g, n, &a->u.g)) return false;
    } else if (kw_in(&t, "undef")) {
        next(P);
        a->kind = QO_ATTR_UNDEF;
    } else if (type_start(P) || kw_in(&t, "none")) {
        a->kind = QO_ATTR_TENSOR;
        if (!parse_constant(P, 0, &a->u.t, true)) return false;
    } else if (kw_in(&t, "sparse_tensor") || kw_in(&t, "sparse_tensors") || kw_in(&t, "type_proto") ||
               kw_in(&t, "type_protos")) {
        a->kind = kw_in(&t, "sparse_tensor") ? QO_ATTR_SPARSE_TENSOR : kw_in(&t, "sparse_tensors") ? QO_ATTR_SPARSE_TENSORS
                : kw_in(&t, "type_proto") ? QO_ATTR_TYPE_PROTO : QO_ATTR_TYPE_PROTOS;
        next(P);
        int64_t cnt;
        if (!expect_p(P, '(') || !take_int_range(P, 0, UINT32_MAX, &cnt) || !expect_p(P, ')')) return false;
        a->n = (uint32_t)cnt;
        if (!is_kw(P, "hex")) return expected(P, "hex\"...\"");
        next(P);
        if (P->t.kind != T_STR) return expected(P, "a hex string");
        size_t nbytes;
        if (!hex_token_len(P, &nbytes)) return false;
        const char *buf = (const char *)hex_token_decode(P, m, "");
        if (!buf) return false;
        a->u.raw.p = buf;
        a->u.raw.n = nbytes;
        next(P);
    } else {
        return expected(P, "an attribute value");
    }
    for (;;) {
        if (is_kw(P, "ref")) {
            next(P);
            if (!paren_str(P, &a->ref_attr_name)) return false;
        } else if (is_kw(P, "doc")) {
            next(P);
            if (!paren_str(P, &a->doc)) return false;
        } else {
            return true;
        }
    }
}

static int attr_cmp_m(const qo_module *m, const qo_attr *x, const qo_attr *y) {
    size_t nx = qo_strlen(m, x->name), ny = qo_strlen(m, y->name);
    int c = memcmp(qo_str(m, x->name), qo_str(m, y->name), nx < ny ? nx : ny);
    return c ? c : (nx < ny ? -1 : nx > ny);
}

typedef struct resv {
    bool omitted;
    uint64_t key;
    qo_atom name;
    const char *at;
} resv;

static bool parse_node(parser *P, gctx *gc) {
    qo_graph *g = gc->g;
    qo_module *m = P->m;
    tok start = P->t;
    resv *res = NULL;
    uint32_t nres = 0, capres = 0;
    qo_val *ins = NULL;
    uint32_t nin = 0, capin = 0;
    attrvec av = {0};
    bool ok = false;
    if (P->t.kind == T_VAL || is_kw(P, "_")) {
        for (;;) {
            QO_GROW(res, capres, nres + 1);
            resv *r = &res[nres];
            if (is_kw(P, "_")) {
                r->omitted = true;
                r->at = P->t.p;
                next(P);
            } else if (!take_val_key(P, &r->key, &r->name, &r->at)) {
                goto done;
            }
            nres++;
            if (nres > 65535) {
                perr(P, start.p, "too many results");
                goto done;
            }
            if (!is_p(P, ',')) break;
            next(P);
        }
        if (!expect_p(P, '=')) goto done;
    }
    /* op */
    qo_atom dom = 0, ot = 0;
    const char *opat = P->t.p;
    if (P->t.kind == T_IDENT) {
        ot = qo_intern_n(m, P->t.p, P->t.n);
        next(P);
    } else if (P->t.kind == T_STR) {
        qo_atom s;
        if (!take_str_atom(P, &s)) goto done;
        if (is_p(P, P_COLON2)) {
            next(P);
            dom = s;
            if (!take_str_atom(P, &ot)) goto done;
        } else {
            const char *str = qo_str(m, s);
            size_t sn = qo_strlen(m, s);
            const char *dot = NULL;
            for (size_t i = 0; i < sn; i++)
                if (str[i] == '.') dot = str + i;
            if (dot) {
                dom = qo_intern_n(m, str, (size_t)(dot - str));
                ot = qo_intern_n(m, dot + 1, sn - (size_t)(dot - str) - 1);
            } else {
                ot = s;
            }
        }
    } else {
        expected(P, nres ? "an op name" : "a statement (node, 'const', 'capture', 'doc' or 'return')");
        goto done;
    }
    if (!ot) {
        perr(P, opat, "empty op type");
        goto done;
    }
    if (!expect_p(P, '(')) goto done;
    while (!is_p(P, ')')) {
        if (nin && !expect_p(P, ',')) goto done;
        QO_GROW(ins, capin, nin + 1);
        if (!take_operand(P, &gc->sc, &ins[nin])) goto done;
        nin++;
    }
    next(P);
    qo_node n = qo_node_new(g, qo_op_lookup(qo_str(m, dom), qo_str(m, ot)), qo_str(m, dom), qo_str(m, ot), nin,
                            ins, nres);
    g->nodes[n].domain = dom;
    g->nodes[n].op_type = ot;
    g->nodes[n].line = start.line;
    g->nodes[n].col = start.col;
    for (uint32_t i = 0; i < nres; i++) {
        if (res[i].omitted) {
            qo_node_drop_output(g, n, i);
            continue;
        }
        qo_val v = qo_node_output(g, n, i);
        g->vals[v].name = res[i].name;
        if (!define_val(P, &gc->sc, res[i].key, res[i].at, v)) goto done;
    }
    /* attributes */
    if (is_p(P, '{')) {
        next(P);
        while (!is_p(P, '}')) {
            if (av.n && !expect_p(P, ',')) goto done;
            QO_GROW(av.a, av.cap, av.n + 1);
            const char *aat = P->t.p;
            if (!parse_attr(P, g, n, &av.a[av.n])) goto done;
            for (uint32_t i = 0; i < av.n; i++)
                if (av.a[i].name == av.a[av.n].name) {
                    perr(P, aat, "duplicate attribute '%s'", qo_str(m, av.a[av.n].name));
                    goto done;
                }
            av.n++;
        }
        next(P);
        /* keep the IR invariant (sorted by name); insertion sort is stable and lists are short */
        for (uint32_t i = 1; i < av.n; i++)
            for (uint32_t j = i; j > 0 && attr_cmp_m(m, &av.a[j - 1], &av.a[j]) > 0; j--) {
                qo_attr t = av.a[j];
                av.a[j] = av.a[j - 1];
                av.a[j - 1] = t;
            }
        QO_GROW(g->attrs, g->capattrs, g->nattrs + av.n + 1);
        if (av.n) memcpy(&g->attrs[g->nattrs], av.a, sizeof(qo_attr) * av.n);
        g->nodes[n].attr0 = g->nattrs;
        g->nodes[n].nattr = av.n;
        g->nattrs += av.n;
    }
    /* result types */
    uint32_t npresent = 0;
    for (uint32_t i = 0; i < nres; i++) npresent += !res[i].omitted;
    if (is_p(P, ':')) {
        next(P);
        uint32_t k = 0;
        for (uint32_t i = 0; i < nres; i++) {
            if (res[i].omitted) continue;
            if (k && !expect_p(P, ',')) goto done;
            vann a;
            if (!parse_vtype(P, &a)) goto done;
            apply_vann(gc, qo_node_output(g, n, i), &a);
            k++;
        }
        if (!k) {
            perr(P, P->t.p, "node has no results to type");
            goto done;
        }
        if (is_p(P, ',')) {
            perr(P, P->t.p, "more result types than results (%u)", npresent);
            goto done;
        }
    }
    if (is_kw(P, "loc")) {
        next(P);
        if (!paren_str(P, &g->nodes[n].name)) goto done;
    }
    if (is_kw(P, "doc")) {
        next(P);
        if (!paren_str(P, &g->nodes[n].doc)) goto done;
    }
    ok = true;
done:
    if (!ok)
        for (uint32_t i = 0; i < nres; i++)
            if (!res[i].omitted && res[i].key) poison(&gc->sc, res[i].key);
    qo_free(res);
    qo_free(ins);
    qo_free(av.a);
    return ok;
}

static bool parse_stmt(parser *P, gctx *gc) {
    qo_graph *g = gc->g;
    if (is_kw(P, "doc")) {
        next(P);
        return paren_str(P, &g->doc);
    }
    if (is_kw(P, "capture")) {
        next(P);
        uint64_t key;
        qo_atom name;
        const char *at;
        vann a;
        if (!take_val_key(P, &key, &name, &at) || !expect_p(P, ':') || !parse_vtype(P, &a)) return false;
        qo_val v = qo_graph_add_capture(g, "", a.type);
        g->vals[v].name = name;
        apply_vann(gc, v, &a);
        return define_val(P, &gc->sc, key, at, v);
    }
    if (is_kw(P, "const")) {
        next(P);
        uint64_t key;
        qo_atom name;
        const char *at;
        if (!take_val_key(P, &key, &name, &at)) return false;
        if (!is_p(P, ':')) { /* an input that is also an initializer */
            qo_val *slot = scope_slot(&gc->sc, key, false);
            if (!slot) {
                perr(P, at, "'const' without a type must name an input of this graph");
                return false;
            }
            if (*slot == POISON) return false; /* its definition already had an error */
            for (uint32_t i = 0; i < g->nconsts; i++)
                if (g->consts[i] == *slot) {
                    perr(P, at, "value is already listed as a constant");
                    return false;
                }
            g->vals[*slot].flags |= QO_VAL_CONST;
            QO_GROW(g->consts, g->capconsts, g->nconsts + 1);
            g->consts[g->nconsts++] = *slot;
            return true;
        }
        next(P);
        vann a;
        qo_cref c;
        if (!parse_vtype(P, &a) || !expect_p(P, '=') || !parse_constant(P, a.type, &c, false)) {
            poison(&gc->sc, key);
            return false;
        }
        qo_val v = qo_graph_add_const(g, "", c);
        g->vals[v].name = name;
        apply_vann(gc, v, &a);
        return define_val(P, &gc->sc, key, at, v);
    }
    if (is_kw(P, "return")) {
        const char *at = P->t.p;
        uint32_t line = P->t.line;
        next(P);
        if (gc->returned) {
            perr(P, at, "second 'return' in a graph");
            return false;
        }
        gc->returned = true;
        if (is_p(P, '}') || P->t.line != line) return true;
        for (;;) {
            qo_val v;
            if (!take_operand(P, &gc->sc, &v)) return false;
            qo_graph_add_output(g, v);
            if (!is_p(P, ',')) return true;
            next(P);
        }
    }
    if (gc->returned) {
        perr(P, P->t.p, "statement after 'return'");
        return false;
    }
    return parse_node(P, gc);
}

/* Skips to a token that starts a later line at brace depth `depth`, or to the '}' closing it. */
static void recover(parser *P, int depth) {
    while (P->t.kind != T_EOF) {
        if (P->t.depth < depth) return;
        if (P->t.depth == depth && ((P->t.line > P->errline && P->t.bol) || is_p(P, '}'))) return;
        next(P);
    }
}

static bool parse_graph(parser *P, qo_graph *parent, qo_node pnode, uint32_t *gindex) {
    qo_module *m = P->m;
    if (!expect_kw(P, "graph")) return false;
    if (P->t.kind != T_SYM) return expected(P, "a graph name ('@name')");
    qo_atom gname;
    const char *s = P->t.p + 1;
    if (s[0] == '"') {
        const char *d;
        size_t dn;
        if (!decode_at(P, s, &d, &dn)) return false;
        gname = qo_intern_n(m, d, dn);
    } else {
        gname = qo_intern_n(m, s, P->t.n - 1);
    }
    next(P);
    if (++P->nest > MAX_NEST) {
        perr(P, P->t.p, "graphs nested too deeply");
        P->nest--;
        return false;
    }
    qo_graph *g = qo_graph_new(m, parent, pnode, "");
    g->name = gname;
    *gindex = g->index;
    gctx gc = {.g = g};
    bool ok = false;
    if (!expect_p(P, '(')) goto done;
    while (!is_p(P, ')')) {
        if (g->ninputs && !expect_p(P, ',')) goto done;
        uint64_t key;
        qo_atom name;
        const char *at;
        vann a;
        if (!take_val_key(P, &key, &name, &at) || !expect_p(P, ':') || !parse_vtype(P, &a)) goto done;
        qo_val v = qo_graph_add_input(g, "", a.type);
        g->vals[v].name = name;
        apply_vann(&gc, v, &a);
        if (!define_val(P, &gc.sc, key, at, v)) goto done;
        if (is_p(P, '=')) {
            next(P);
            if (!parse_constant(P, a.type, &g->vals[v].cref, false)) goto done;
        }
    }
    next(P);
    if (!is_p(P, '{')) {
        expected(P, "'{'");
        goto done;
    }
    int depth = P->t.depth + 1;
    next(P);
    unsigned nerr0 = P->nerr;
    while (!is_p(P, '}') && P->t.kind != T_EOF && !P->stop) {
        if (!parse_stmt(P, &gc)) recover(P, depth);
        if (P->t.depth < depth) break;
    }
    if (!expect_p(P, '}')) goto done;
    for (uint32_t i = 0; i < gc.nov; i++) g->vals[gc.ov[i].v].flags = gc.ov[i].flags;
    ok = P->nerr == nerr0;
done:
    P->nest--;
    scope_free(&gc.sc);
    qo_free(gc.ov);
    return ok;
}

/* ---- module --------------------------------------------------------------------------------- */

static bool parse_module_item(parser *P) {
    qo_module *m = P->m;
    if (is_kw(P, "graph")) {
        uint32_t gi;
        return parse_graph(P, NULL, 0, &gi);
    }
    if (is_kw(P, "opset")) {
        next(P);
        qo_atom d;
        int64_t v;
        if (!take_str_atom(P, &d) || !expect_p(P, '=') || !take_int(P, &v)) return false;
        QO_GROW(m->opsets, m->capopsets, m->nopsets + 1);
        m->opsets[m->nopsets].domain = d;
        m->opsets[m->nopsets].version = v;
        m->nopsets++;
        return true;
    }
    if (is_kw(P, "prop")) {
        next(P);
        qo_atom k, v;
        if (!take_str_atom(P, &k) || !expect_p(P, '=') || !take_str_atom(P, &v)) return false;
        QO_GROW(m->props, m->capprops, m->nprops + 1);
        m->props[m->nprops].key = k;
        m->props[m->nprops].value = v;
        m->nprops++;
        return true;
    }
    if (is_kw(P, "function")) {
        next(P);
        if (!expect_kw(P, "hex")) return false;
        if (P->t.kind != T_STR) return expected(P, "a hex string");
        size_t nbytes;
        if (!hex_token_len(P, &nbytes)) return false;
        const char *buf = (const char *)hex_token_decode(P, m, "");
        if (!buf) return false;
        next(P);
        QO_GROW(m->functions, m->capfunctions, m->nfunctions + 1);
        m->functions[m->nfunctions].p = buf;
        m->functions[m->nfunctions].n = nbytes;
        m->nfunctions++;
        return true;
    }
    static const char *const strkeys[] = {"producer_name", "producer_version", "domain", "doc"};
    qo_atom *strfields[] = {&m->producer_name, &m->producer_version, &m->domain, &m->doc};
    for (int i = 0; i < 4; i++)
        if (is_kw(P, strkeys[i])) {
            next(P);
            return expect_p(P, '=') && take_str_atom(P, strfields[i]);
        }
    if (is_kw(P, "ir_version") || is_kw(P, "model_version")) {
        int64_t *f = is_kw(P, "ir_version") ? &m->ir_version : &m->model_version;
        next(P);
        return expect_p(P, '=') && take_int(P, f);
    }
    return expected(P, "a module item (ir_version, producer_name, producer_version, domain, model_version, doc, "
                       "opset, prop, function, graph)");
}

/* Contract in ir.h: parses `len` bytes of .qir text (no NUL terminator needed); reports every error
 * up to cx->max_errors; on success *out owns a new module whose source_path is `path`. */
qo_status qo_parse_module(qo_ctx *cx, const char *path, const char *text, size_t len, qo_module **out) {
    parser P = {.cx = cx, .path = path, .src = text, .len = len, .line = 1};
    P.maxerr = cx->max_errors ? cx->max_errors : 20;
    P.m = qo_module_new();
    *out = NULL;
    if (path) P.m->source_path = qo_intern(P.m, path);
    next(&P);
    if (expect_kw(&P, "module")) {
        if (!is_p(&P, '{')) {
            expected(&P, "'{'");
        } else {
            int depth = P.t.depth + 1;
            next(&P);
            while (!is_p(&P, '}') && P.t.kind != T_EOF && !P.stop) {
                if (!parse_module_item(&P)) recover(&P, depth);
                if (P.t.depth < depth) break;
            }
            if (expect_p(&P, '}') && P.t.kind != T_EOF) expected(&P, "end of input after the module");
        }
    }
    for (uint32_t i = 0; i < P.nmaps; i++) qo_free(P.maps[i].path);
    qo_free(P.maps);
    qo_free(P.sbuf);
    if (P.nerr) {
        qo_module_free(P.m);
        return QO_ERR_PARSE;
    }
    *out = P.m;
    return QO_OK;
}
