/* passes/manager.c — the pass registry (from passes.def), the pipeline string parser and canonical
 * printer, and the pass manager: fixpoint groups, verify-each, print-after, timing, statistics.
 * The grammar is in pass.h. Everything a run needs lives in a qo_pm_run on the stack. */
#include "passes/pass_impl.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- registry ------------------------------------------------------------------------------- */

enum {
#define QO_PASS(id, name, flags, summary) PASS_ID_##id,
#define QO_PASS_OPT(id, key, kind, dflt, help)
#include "passes/passes.def"
#undef QO_PASS
#undef QO_PASS_OPT
    NPASSES
};

typedef struct pass_info {
    const char *name;
    unsigned flags;
    const char *summary;
    qo_pass_fn run;
} pass_info;

static const pass_info passes[NPASSES] = {
#define QO_PASS(id, name, flags, summary) [PASS_ID_##id] = {name, flags, summary, qo_pass_##id},
#define QO_PASS_OPT(id, key, kind, dflt, help)
#include "passes/passes.def"
#undef QO_PASS
#undef QO_PASS_OPT
};

typedef struct opt_info {
    int pass;
    const char *key;
    qo_opt_kind kind;
    const char *dflt;
    const char *help;
} opt_info;

static const opt_info opts_table[] = {
#define QO_PASS(id, name, flags, summary)
#define QO_PASS_OPT(id, key, kind, dflt, help) {PASS_ID_##id, key, kind, dflt, help},
#include "passes/passes.def"
#undef QO_PASS
#undef QO_PASS_OPT
    {-1, NULL, QO_OPT_STR, NULL, NULL},
};

#define FIXPOINT_DEFAULT_MAX 10

static int pass_lookup(const char *s, size_t n) {
    for (int i = 0; i < NPASSES; i++)
        if (strlen(passes[i].name) == n && memcmp(passes[i].name, s, n) == 0) return i;
    return -1;
}

/* Index in opts_table of (pass, key), -1 if not declared. */
static int opt_lookup(int pass, const char *key, size_t n) {
    for (int i = 0; opts_table[i].key; i++)
        if (opts_table[i].pass == pass && strlen(opts_table[i].key) == n &&
            memcmp(opts_table[i].key, key, n) == 0)
            return i;
    return -1;
}

static int nopts_of(int pass) {
    int k = 0;
    for (int i = 0; opts_table[i].key; i++) k += opts_table[i].pass == pass;
    return k;
}

/* Position of option table entry `oi` among its pass's options. */
static int opt_slot(int oi) {
    int k = 0;
    for (int i = 0; i < oi; i++) k += opts_table[i].pass == opts_table[oi].pass;
    return k;
}

static const opt_info *opt_of_slot(int pass, int slot) {
    for (int i = 0; opts_table[i].key; i++)
        if (opts_table[i].pass == pass && slot-- == 0) return &opts_table[i];
    return NULL;
}

void qo_pass_print_list(FILE *out) {
    for (int p = 0; p < NPASSES; p++) {
        fprintf(out, "  %-14s %s\n", passes[p].name, passes[p].summary);
        for (int i = 0; opts_table[i].key; i++) {
            const opt_info *o = &opts_table[i];
            if (o->pass != p) continue;
            const char *k = o->kind == QO_OPT_INT ? "int" : o->kind == QO_OPT_BOOL ? "bool" : "string";
            fprintf(out, "      {%s=<%s>}  %s (default %s)\n", o->key, k, o->help, o->dflt);
        }
    }
    fprintf(out, "  %-14s %s\n", "fixpoint{max=N}(...)",
            "repeat the inner pipeline until no pass changes anything (default max 10)");
}

/* ---- pipeline AST --------------------------------------------------------------------------- */

typedef struct pl_elem pl_elem;
typedef struct pl_seq {
    pl_elem *items;
    uint32_t n, cap;
} pl_seq;

struct pl_elem {
    int pass;       /* registry index, -1 = fixpoint group */
    uint32_t col;   /* 1-based column of the name in the pipeline string */
    char **vals;    /* pass options in registry order (malloc'd strings; NULL = default) */
    int nvals;
    int64_t max;    /* fixpoint: iteration bound */
    pl_seq body;    /* fixpoint: inner pipeline */
    /* timing */
    double secs;
    uint32_t runs, changes;
};

static void seq_free(pl_seq *s) {
    for (uint32_t i = 0; i < s->n; i++) {
        pl_elem *e = &s->items[i];
        for (int k = 0; k < e->nvals; k++) qo_free(e->vals[k]);
        qo_free(e->vals);
        seq_free(&e->body);
    }
    qo_free(s->items);
    s->items = NULL;
    s->n = s->cap = 0;
}

typedef struct parser {
    qo_ctx *cx;
    const char *s;
    size_t i;
} parser;

static qo_status perr(parser *p, size_t at, const char *fmt, const char *arg, size_t argn) {
    qo_loc l = {.file = "pipeline", .line = 1, .col = (uint32_t)at + 1, .node_index = -1};
    return qo_error(p->cx, QO_ERR_PARSE, &l, fmt, (int)argn, arg);
}

static void skip_ws(parser *p) {
    while (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n') p->i++;
}

static bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
}

static bool parse_int(const char *s, size_t n, int64_t *out) {
    if (!n || n > 20) return false;
    char buf[24];
    memcpy(buf, s, n);
    buf[n] = 0;
    char *end;
    long long v = strtoll(buf, &end, 10);
    if (*end) return false;
    *out = v;
    return true;
}

static bool parse_bool(const char *s, size_t n, bool *out) {
    if ((n == 4 && !memcmp(s, "true", 4)) || (n == 1 && s[0] == '1')) return *out = true, true;
    if ((n == 5 && !memcmp(s, "false", 5)) || (n == 1 && s[0] == '0')) return *out = false, true;
    return false;
}

/* Normalizes an option value text for its kind (ints in decimal, bools as true/false). */
static char *norm_value(qo_opt_kind kind, const char *v, size_t n, bool *ok) {
    char buf[32];
    *ok = true;
    if (kind == QO_OPT_INT) {
        int64_t x;
        if (!parse_int(v, n, &x)) return *ok = false, NULL;
        snprintf(buf, sizeof buf, "%" PRId64, x);
        return qo_strdup(buf);
    }
    if (kind == QO_OPT_BOOL) {
        bool b;
        if (!parse_bool(v, n, &b)) return *ok = false, NULL;
        return qo_strdup(b ? "true" : "false");
    }
    char *c = qo_malloc(n + 1);
    memcpy(c, v, n);
    c[n] = 0;
    return c;
}

static qo_status parse_seq(parser *p, pl_seq *out, int depth);

/* options := '{' KEY ('=' VALUE)? (' ' KEY ('=' VALUE)?)* '}' ; p->i is at '{'. */
static qo_status parse_options(parser *p, pl_elem *e) {
    p->i++;
    for (;;) {
        skip_ws(p);
        if (p->s[p->i] == '}') {
            p->i++;
            return QO_OK;
        }
        size_t k0 = p->i;
        while (is_name_char(p->s[p->i])) p->i++;
        size_t kn = p->i - k0;
        if (!kn) {
            if (!p->s[p->i]) return perr(p, p->i, "unterminated option list%.*s: expected '}'", "", 0);
            return perr(p, p->i, "expected an option name, found '%.*s'", p->s + p->i, 1);
        }
        const char *val = NULL;
        size_t vn = 0, v0 = p->i;
        if (p->s[p->i] == '=') {
            p->i++;
            v0 = p->i;
            while (p->s[p->i] && p->s[p->i] != ' ' && p->s[p->i] != '}') p->i++;
            val = p->s + v0;
            vn = p->i - v0;
            if (!vn) return perr(p, v0, "option '%.*s' has an empty value", p->s + k0, kn);
        }
        if (e->pass < 0) { /* fixpoint */
            if (kn != 3 || memcmp(p->s + k0, "max", 3))
                return perr(p, k0, "unknown option '%.*s' of 'fixpoint' (known: max)", p->s + k0, kn);
            if (!val || !parse_int(val, vn, &e->max) || e->max < 1)
                return perr(p, val ? v0 : k0, "fixpoint option max needs a positive integer%.*s", "", 0);
            continue;
        }
        int oi = opt_lookup(e->pass, p->s + k0, kn);
        if (oi < 0) {
            char msg[256];
            snprintf(msg, sizeof msg, "unknown option '%%.*s' of pass '%s'", passes[e->pass].name);
            return perr(p, k0, msg, p->s + k0, kn);
        }
        const opt_info *o = &opts_table[oi];
        if (!val && o->kind != QO_OPT_BOOL)
            return perr(p, k0, "option '%.*s' needs a value", p->s + k0, kn);
        bool ok = true;
        char *nv = val ? norm_value(o->kind, val, vn, &ok) : qo_strdup("true");
        if (!val) ok = true;
        if (!ok) {
            return perr(p, v0,
                        o->kind == QO_OPT_INT ? "bad integer value '%.*s'" : "bad boolean value '%.*s' (true/false)",
                        val, vn);
        }
        int slot = opt_slot(oi);
        qo_free(e->vals[slot]);
        e->vals[slot] = nv;
    }
}

static qo_status parse_elem(parser *p, pl_seq *seq, int depth) {
    skip_ws(p);
    size_t n0 = p->i;
    while (is_name_char(p->s[p->i])) p->i++;
    size_t nn = p->i - n0;
    if (!nn) {
        if (!p->s[p->i]) return perr(p, p->i, "expected a pass name at end of pipeline%.*s", "", 0);
        return perr(p, p->i, "expected a pass name, found '%.*s'", p->s + p->i, 1);
    }
    QO_GROW(seq->items, seq->cap, seq->n + 1);
    pl_elem *e = &seq->items[seq->n++];
    memset(e, 0, sizeof *e);
    e->col = (uint32_t)n0 + 1;
    bool fix = nn == 8 && memcmp(p->s + n0, "fixpoint", 8) == 0;
    if (fix) {
        e->pass = -1;
        e->max = FIXPOINT_DEFAULT_MAX;
    } else {
        e->pass = pass_lookup(p->s + n0, nn);
        if (e->pass < 0) return perr(p, n0, "unknown pass '%.*s' (see `qopt passes`)", p->s + n0, nn);
        e->nvals = nopts_of(e->pass);
        e->vals = qo_calloc((size_t)e->nvals + 1, sizeof(char *));
    }
    if (p->s[p->i] == '{') QO_TRY(parse_options(p, e));
    if (fix) {
        skip_ws(p);
        if (p->s[p->i] != '(') return perr(p, p->i, "expected '(' after fixpoint%.*s", "", 0);
        if (depth > 16) return perr(p, p->i, "fixpoint groups nested too deeply%.*s", "", 0);
        p->i++;
        QO_TRY(parse_seq(p, &e->body, depth + 1));
        skip_ws(p);
        if (p->s[p->i] != ')') return perr(p, p->i, "expected ')' to close fixpoint%.*s", "", 0);
        p->i++;
    }
    return QO_OK;
}

static qo_status parse_seq(parser *p, pl_seq *out, int depth) {
    for (;;) {
        QO_TRY(parse_elem(p, out, depth));
        skip_ws(p);
        if (p->s[p->i] != ',') return QO_OK;
        p->i++;
    }
}

static qo_status parse_pipeline(qo_ctx *cx, const char *s, pl_seq *out) {
    parser p = {cx, s, 0};
    memset(out, 0, sizeof *out);
    skip_ws(&p);
    if (!s[p.i]) return QO_OK; /* empty pipeline: nothing to run */
    qo_status st = parse_seq(&p, out, 0);
    if (st == QO_OK) {
        skip_ws(&p);
        if (s[p.i]) st = perr(&p, p.i, "unexpected '%.*s' in pipeline", s + p.i, 1);
    }
    if (st != QO_OK) seq_free(out);
    return st;
}

/* ---- canonical printing --------------------------------------------------------------------- */

typedef struct sbuf {
    char *buf;
    size_t cap, len; /* len may exceed cap: then the output was truncated */
} sbuf;

static void sb_puts(sbuf *b, const char *s) {
    for (; *s; s++, b->len++)
        if (b->len + 1 < b->cap) b->buf[b->len] = *s;
    if (b->cap) b->buf[b->len < b->cap ? b->len : b->cap - 1] = 0;
}

static void print_seq(sbuf *b, const pl_seq *s) {
    for (uint32_t i = 0; i < s->n; i++) {
        const pl_elem *e = &s->items[i];
        if (i) sb_puts(b, ",");
        if (e->pass < 0) {
            sb_puts(b, "fixpoint");
            if (e->max != FIXPOINT_DEFAULT_MAX) {
                char t[40];
                snprintf(t, sizeof t, "{max=%" PRId64 "}", e->max);
                sb_puts(b, t);
            }
            sb_puts(b, "(");
            print_seq(b, &e->body);
            sb_puts(b, ")");
            continue;
        }
        sb_puts(b, passes[e->pass].name);
        bool open = false;
        for (int k = 0; k < e->nvals; k++) {
            const opt_info *o = opt_of_slot(e->pass, k);
            if (!e->vals[k] || strcmp(e->vals[k], o->dflt) == 0) continue; /* defaults are implied */
            sb_puts(b, open ? " " : "{");
            open = true;
            sb_puts(b, o->key);
            sb_puts(b, "=");
            sb_puts(b, e->vals[k]);
        }
        if (open) sb_puts(b, "}");
    }
}

qo_status qo_pipeline_canonical(qo_ctx *cx, const char *pipeline, char *buf, size_t cap) {
    pl_seq s;
    QO_TRY(parse_pipeline(cx, pipeline, &s));
    sbuf b = {buf, cap, 0};
    if (cap) buf[0] = 0;
    print_seq(&b, &s);
    seq_free(&s);
    if (b.len >= cap)
        return qo_error(cx, QO_ERR_LIMIT, NULL, "canonical pipeline needs %zu bytes, buffer has %zu",
                        b.len + 1, cap);
    return QO_OK;
}

/* ---- statistics ----------------------------------------------------------------------------- */

typedef struct stat_entry {
    int pass;
    char *counter;
    int64_t value;
} stat_entry;

struct qo_pm_stats {
    stat_entry *e;
    uint32_t n, cap;
};

void qo_pass_stat(qo_pass_ctx *pc, const char *counter, int64_t delta) {
    qo_pm_stats *st = pc->stats;
    if (!st) return;
    for (uint32_t i = 0; i < st->n; i++)
        if (st->e[i].pass == pc->pass && strcmp(st->e[i].counter, counter) == 0) {
            st->e[i].value += delta;
            return;
        }
    QO_GROW(st->e, st->cap, st->n + 1);
    st->e[st->n].pass = pc->pass;
    st->e[st->n].counter = qo_strdup(counter);
    st->e[st->n].value = delta;
    st->n++;
}

static const char *opt_value(const qo_pass_ctx *pc, const char *key, qo_opt_kind kind) {
    int oi = opt_lookup(pc->pass, key, strlen(key));
    QO_ASSERT(oi >= 0 && opts_table[oi].kind == kind);
    const char *v = pc->optvals ? pc->optvals[opt_slot(oi)] : NULL;
    return v ? v : opts_table[oi].dflt;
}

int64_t qo_pass_opt_int(const qo_pass_ctx *pc, const char *key) {
    return strtoll(opt_value(pc, key, QO_OPT_INT), NULL, 10);
}

bool qo_pass_opt_bool(const qo_pass_ctx *pc, const char *key) {
    return strcmp(opt_value(pc, key, QO_OPT_BOOL), "true") == 0;
}

const char *qo_pass_opt_str(const qo_pass_ctx *pc, const char *key) {
    return opt_value(pc, key, QO_OPT_STR);
}

/* ---- running -------------------------------------------------------------------------------- */

typedef struct pm_run {
    qo_ctx *cx;
    qo_module *m;
    qo_pm_opts o;
    FILE *rep;
    qo_pm_stats stats;
} pm_run;

static double now_secs(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static bool in_list(const char *list, const char *name) {
    if (!list) return false;
    size_t n = strlen(name);
    for (const char *s = list; *s;) {
        while (*s == ',' || *s == ' ') s++;
        const char *e = s;
        while (*e && *e != ',' && *e != ' ') e++;
        if ((size_t)(e - s) == n && memcmp(s, name, n) == 0) return true;
        s = e;
    }
    return false;
}

static qo_status run_pass(pm_run *r, pl_elem *e, bool *changed) {
    const pass_info *pi = &passes[e->pass];
    qo_pass_ctx pc = {.cx = r->cx, .m = r->m, .pass = e->pass, .name = pi->name,
                      .optvals = (const char *const *)e->vals, .stats = &r->stats};
    double t0 = now_secs();
    qo_status st = QO_OK;
    unsigned nerr0 = r->cx->nerrors;
    if (pi->flags & QO_PASS_MODULE) {
        if (r->m->ngraphs) st = pi->run(&pc, r->m->graphs[0]);
    } else {
        uint32_t ng = r->m->ngraphs; /* graphs a pass creates are not visited by it */
        for (uint32_t gi = 0; gi < ng && st == QO_OK; gi++) st = pi->run(&pc, r->m->graphs[gi]);
    }
    e->secs += now_secs() - t0;
    e->runs++;
    e->changes += pc.changed;
    if (st != QO_OK) {
        if (r->cx->nerrors == nerr0)
            qo_error(r->cx, st, NULL, "pass '%s' failed (%s)", pi->name, qo_status_str(st));
        return st;
    }
    *changed = pc.changed;
    if (r->o.verify_each && e->pass != PASS_ID_verify) {
        st = qo_verify(r->cx, r->m);
        if (st != QO_OK)
            return qo_error(r->cx, QO_ERR_VERIFY, NULL, "IR verification failed after pass '%s'", pi->name);
    }
    bool want = r->o.print_after_all || in_list(r->o.print_after, pi->name) ||
                (r->o.print_after_change && pc.changed);
    if (want) {
        fprintf(r->rep, "// -----// IR after %s%s //----- //\n", pi->name, pc.changed ? "" : " (unchanged)");
        QO_TRY(qo_print_module(r->cx, r->m, r->rep, NULL));
    }
    return QO_OK;
}

static qo_status run_seq(pm_run *r, pl_seq *s, bool *changed, const char **last_changer);

static qo_status run_fixpoint(pm_run *r, pl_elem *e, bool *changed) {
    double t0 = now_secs();
    for (int64_t it = 1;; it++) {
        bool ch = false;
        const char *who = NULL;
        QO_TRY(run_seq(r, &e->body, &ch, &who));
        e->runs++;
        if (!ch) break;
        *changed = true;
        e->changes++;
        if (it >= e->max) {
            qo_loc l = {.file = "pipeline", .line = 1, .col = e->col, .node_index = -1};
            return qo_error(r->cx, QO_ERR_LIMIT, &l,
                            "fixpoint did not converge in %" PRId64 " iterations: pass '%s' kept changing the IR",
                            e->max, who ? who : "?");
        }
    }
    e->secs += now_secs() - t0;
    return QO_OK;
}

static qo_status run_seq(pm_run *r, pl_seq *s, bool *changed, const char **last_changer) {
    for (uint32_t i = 0; i < s->n; i++) {
        pl_elem *e = &s->items[i];
        bool ch = false;
        if (e->pass < 0) {
            QO_TRY(run_fixpoint(r, e, &ch));
            if (ch && last_changer) *last_changer = "fixpoint";
        } else {
            QO_TRY(run_pass(r, e, &ch));
            if (ch && last_changer) *last_changer = passes[e->pass].name;
        }
        *changed |= ch;
    }
    return QO_OK;
}

static void print_timing(FILE *f, const pl_seq *s, int depth, double *total) {
    for (uint32_t i = 0; i < s->n; i++) {
        const pl_elem *e = &s->items[i];
        const char *name = e->pass < 0 ? "fixpoint" : passes[e->pass].name;
        fprintf(f, "  %10.3f  %6u  %7u  %*s%s\n", e->secs * 1e3, e->runs, e->changes, depth * 2, "", name);
        if (depth == 0) *total += e->secs;
        if (e->pass < 0) print_timing(f, &e->body, depth + 1, total);
    }
}

qo_status qo_pipeline_run(qo_ctx *cx, qo_module *m, const char *pipeline, const qo_pm_opts *opts) {
    pl_seq s;
    QO_TRY(parse_pipeline(cx, pipeline, &s));
    pm_run r = {.cx = cx, .m = m};
    if (opts) r.o = *opts;
    r.rep = r.o.report ? r.o.report : stderr;
    /* print-after names must be passes: a typo would otherwise silently print nothing */
    if (r.o.print_after) {
        for (const char *p = r.o.print_after; *p;) {
            while (*p == ',' || *p == ' ') p++;
            const char *q = p;
            while (*q && *q != ',' && *q != ' ') q++;
            if (q > p && pass_lookup(p, (size_t)(q - p)) < 0) {
                seq_free(&s);
                return qo_error(cx, QO_ERR_USAGE, NULL, "print-after: unknown pass '%.*s'", (int)(q - p), p);
            }
            p = q;
        }
    }
    bool changed = false;
    qo_status st = run_seq(&r, &s, &changed, NULL);
    if (r.o.timing) {
        double total = 0;
        fprintf(r.rep, "===-- pass timing --===\n  %10s  %6s  %7s  %s\n", "time(ms)", "runs", "changed", "pass");
        print_timing(r.rep, &s, 0, &total);
        fprintf(r.rep, "  %10.3f  %6s  %7s  total\n", total * 1e3, "", "");
    }
    if (r.o.stats) {
        fprintf(r.rep, "===-- pass statistics --===\n");
        for (uint32_t i = 0; i < r.stats.n; i++)
            fprintf(r.rep, "  %-14s %-24s %" PRId64 "\n", passes[r.stats.e[i].pass].name, r.stats.e[i].counter,
                    r.stats.e[i].value);
    }
    for (uint32_t i = 0; i < r.stats.n; i++) qo_free(r.stats.e[i].counter);
    qo_free(r.stats.e);
    seq_free(&s);
    return st;
}

/* ---- the verify pass ------------------------------------------------------------------------ */

qo_status qo_pass_verify(qo_pass_ctx *pc, qo_graph *g) {
    (void)g;
    return qo_verify(pc->cx, pc->m);
}
