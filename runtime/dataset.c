/* runtime/dataset.c — .npy / .npz / directory sample streams (see dataset.h). The .npz reader uses
 * libzip (members may be stored or deflated; they are read sequentially, never inflated whole). */
#include "runtime/dataset.h"

#include "runtime/npy.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zip.h>

typedef struct part {
    char *path;        /* file (npy/dir) */
    int64_t samples;   /* samples in this part */
    size_t data_off;   /* byte offset of the data */
} part;

typedef struct stream {
    char *label;       /* for messages: "file" or "archive[member]" */
    qo_tensor shape;   /* elem + full shape (dims[0] = total samples) */
    size_t sample_bytes;
    part *parts;
    uint32_t nparts;
    /* reading position */
    uint32_t cur;      /* current part */
    int64_t pos;       /* samples read within it */
    FILE *f;           /* npy / dir */
    zip_t *za;         /* npz (shared by every stream of the dataset, owned by the dataset) */
    zip_int64_t zidx;  /* member index */
    zip_file_t *zf;
} stream;

struct qo_dataset {
    char *path;
    uint32_t n;
    stream *s;
    zip_t *za;
    int64_t count;
};

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static qo_status ioerr(qo_ctx *cx, const char *path, const char *what) {
    qo_loc l = {.file = path, .node_index = -1};
    return qo_error(cx, QO_ERR_IO, &l, "%s: %s", what, strerror(errno));
}

/* Reads the header of an open .npy stream: sets *shape and *off. `rd` reads n bytes. */
typedef int (*read_fn)(void *h, void *buf, size_t n); /* 0 ok */

static int file_read(void *h, void *buf, size_t n) { return fread(buf, 1, n, (FILE *)h) == n ? 0 : -1; }
static int zip_read(void *h, void *buf, size_t n) {
    zip_int64_t k = zip_fread((zip_file_t *)h, buf, n);
    return k == (zip_int64_t)n ? 0 : -1;
}

static qo_status read_header(qo_ctx *cx, const char *label, read_fn rd, void *h, uint64_t file_len, qo_tensor *shape,
                             size_t *off) {
    qo_loc l = {.file = label, .node_index = -1};
    uint8_t pre[12];
    if (file_len < 10 || rd(h, pre, 10)) return qo_error(cx, QO_ERR_PARSE, &l, "not a .npy file (too short)");
    size_t hoff = 10, hlen;
    if (pre[6] == 1) hlen = (size_t)pre[8] | (size_t)pre[9] << 8;
    else {
        if (rd(h, pre + 10, 2)) return qo_error(cx, QO_ERR_PARSE, &l, "truncated .npy header");
        hoff = 12;
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    }
    if (hlen > (1u << 24) || hoff + hlen > file_len)
        return qo_error(cx, QO_ERR_PARSE, &l, "truncated or oversized .npy header");
    uint8_t *buf = qo_malloc(hoff + hlen);
    memcpy(buf, pre, hoff);
    qo_status st = QO_OK;
    if (rd(h, buf + hoff, hlen)) st = qo_error(cx, QO_ERR_PARSE, &l, "truncated .npy header");
    else st = qo_npy_header(cx, label, buf, hoff + hlen, file_len, shape, off);
    qo_free(buf);
    return st;
}

static qo_status shape_str_err(qo_ctx *cx, const char *label, const qo_tensor *t, const char *why) {
    char sh[200];
    size_t k = 0;
    sh[0] = 0;
    for (int32_t i = 0; i < t->rank && k < sizeof sh; i++)
        k += (size_t)snprintf(sh + k, sizeof sh - k, "%s%" PRId64, i ? ", " : "", t->dims[i]);
    qo_loc l = {.file = label, .node_index = -1};
    return qo_error(cx, QO_ERR_USAGE, &l, "array of shape (%s): %s", sh, why);
}

/* Adds a part with array shape t to s, checking it against the previous parts. */
static qo_status add_part(qo_ctx *cx, stream *s, const char *path, qo_tensor t, size_t off, int32_t want_rank,
                          bool dir) {
    if (dir && want_rank >= 0 && t.rank == want_rank - 1) { /* one sample without the batch axis */
        memmove(t.dims + 1, t.dims, sizeof(int64_t) * (size_t)t.rank);
        t.dims[0] = 1;
        t.rank++;
    }
    if (t.rank < 1) return shape_str_err(cx, path, &t, "expected samples along axis 0, got a scalar");
    if (want_rank >= 0 && t.rank != want_rank) {
        char why[96];
        snprintf(why, sizeof why, "expected rank %d (samples along axis 0)", want_rank);
        return shape_str_err(cx, path, &t, why);
    }
    if (s->nparts) {
        bool same = t.elem == s->shape.elem && t.rank == s->shape.rank;
        for (int32_t i = 1; same && i < t.rank; i++) same = t.dims[i] == s->shape.dims[i];
        if (!same) return shape_str_err(cx, path, &t, "its sample shape or dtype differs from the first file's");
        s->shape.dims[0] += t.dims[0];
    } else {
        s->shape = t;
        s->sample_bytes = qo_rt_elem_size(t.elem);
        for (int32_t i = 1; i < t.rank; i++) s->sample_bytes *= (size_t)t.dims[i];
    }
    s->parts = qo_realloc(s->parts, sizeof(part) * (s->nparts + 1));
    s->parts[s->nparts++] = (part){qo_strdup(path), t.dims[0], off};
    return QO_OK;
}

static qo_status open_npy_part(qo_ctx *cx, stream *s, const char *path, int32_t want_rank, bool dir) {
    FILE *f = fopen(path, "rb");
    if (!f) return ioerr(cx, path, "cannot open");
    struct stat st;
    qo_tensor t;
    size_t off = 0;
    qo_status r = fstat(fileno(f), &st) ? ioerr(cx, path, "cannot stat")
                                        : read_header(cx, path, file_read, f, (uint64_t)st.st_size, &t, &off);
    fclose(f);
    if (r != QO_OK) return r;
    return add_part(cx, s, path, t, off, want_rank, dir);
}

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static qo_status open_npz_member(qo_ctx *cx, qo_dataset *d, stream *s, const char *name, int32_t want_rank) {
    zip_int64_t nent = zip_get_num_entries(d->za, 0), idx = -1;
    char want[512];
    if (name) {
        snprintf(want, sizeof want, "%s.npy", name);
        idx = zip_name_locate(d->za, want, 0);
        if (idx < 0) idx = zip_name_locate(d->za, name, 0);
    } else if (nent == 1) {
        idx = 0;
    } else {
        idx = zip_name_locate(d->za, "x.npy", 0);
    }
    qo_loc l = {.file = d->path, .node_index = -1};
    if (idx < 0) {
        char have[512] = "";
        size_t k = 0;
        for (zip_int64_t i = 0; i < nent && k < sizeof have - 64; i++)
            k += (size_t)snprintf(have + k, sizeof have - k, "%s%s", i ? ", " : "", zip_get_name(d->za, (zip_uint64_t)i, 0));
        return qo_error(cx, QO_ERR_USAGE, &l, "the archive has no array '%s' (it holds: %s)", name ? name : "x", have);
    }
    zip_stat_t zs;
    zip_stat_init(&zs);
    if (zip_stat_index(d->za, (zip_uint64_t)idx, 0, &zs) || !(zs.valid & ZIP_STAT_SIZE))
        return qo_error(cx, QO_ERR_PARSE, &l, "cannot read archive member %" PRId64, (int64_t)idx);
    char label[1024];
    snprintf(label, sizeof label, "%s[%s]", d->path, zs.name);
    s->label = qo_strdup(label);
    s->za = d->za;
    s->zidx = idx;
    zip_file_t *zf = zip_fopen_index(d->za, (zip_uint64_t)idx, 0);
    if (!zf) return qo_error(cx, QO_ERR_PARSE, &l, "cannot open archive member '%s': %s", zs.name, zip_strerror(d->za));
    qo_tensor t;
    size_t off = 0;
    qo_status r = read_header(cx, label, zip_read, zf, zs.size, &t, &off);
    zip_fclose(zf);
    if (r != QO_OK) return r;
    return add_part(cx, s, label, t, off, want_rank, false);
}

qo_status qo_dataset_open(qo_ctx *cx, const char *path, uint32_t narr, const char *const *names,
                          const int32_t *want_rank, qo_dataset **out) {
    *out = NULL;
    qo_loc l = {.file = path, .node_index = -1};
    struct stat st;
    if (stat(path, &st)) return ioerr(cx, path, "cannot open calibration data");
    qo_dataset *d = qo_calloc(1, sizeof *d);
    d->path = qo_strdup(path);
    d->n = narr;
    d->s = qo_calloc(narr ? narr : 1, sizeof(stream));
    qo_status r = QO_OK;
    if (S_ISDIR(st.st_mode)) {
        if (narr != 1) {
            r = qo_error(cx, QO_ERR_USAGE, &l, "a directory of .npy files feeds single-input models only (this one has %u inputs; use a .npz)", narr);
            goto fail;
        }
        DIR *dp = opendir(path);
        if (!dp) {
            r = ioerr(cx, path, "cannot open directory");
            goto fail;
        }
        char **files = NULL;
        uint32_t nf = 0;
        struct dirent *e;
        while ((e = readdir(dp))) {
            if (e->d_name[0] == '.' || !ends_with(e->d_name, ".npy")) continue;
            files = qo_realloc(files, sizeof(char *) * (nf + 1));
            size_t n = strlen(path) + strlen(e->d_name) + 2;
            files[nf] = qo_malloc(n);
            snprintf(files[nf++], n, "%s/%s", path, e->d_name);
        }
        closedir(dp);
        qsort(files, nf, sizeof *files, cmp_str);
        d->s[0].label = qo_strdup(path);
        for (uint32_t i = 0; i < nf && r == QO_OK; i++)
            r = open_npy_part(cx, &d->s[0], files[i], want_rank ? want_rank[0] : -1, true);
        for (uint32_t i = 0; i < nf; i++) qo_free(files[i]);
        qo_free(files);
        if (r != QO_OK) goto fail;
        if (!nf) {
            r = qo_error(cx, QO_ERR_USAGE, &l, "the directory holds no .npy files");
            goto fail;
        }
    } else if (ends_with(path, ".npz")) {
        int err = 0;
        d->za = zip_open(path, ZIP_RDONLY, &err);
        if (!d->za) {
            zip_error_t ze;
            zip_error_init_with_code(&ze, err);
            r = qo_error(cx, QO_ERR_PARSE, &l, "not a readable .npz (zip) archive: %s", zip_error_strerror(&ze));
            zip_error_fini(&ze);
            goto fail;
        }
        for (uint32_t i = 0; i < narr && r == QO_OK; i++)
            r = open_npz_member(cx, d, &d->s[i], names ? names[i] : NULL, want_rank ? want_rank[i] : -1);
        if (r != QO_OK) goto fail;
    } else {
        if (narr != 1) {
            r = qo_error(cx, QO_ERR_USAGE, &l, "a .npy file feeds single-input models only (this one has %u inputs; use a .npz with one array per input)", narr);
            goto fail;
        }
        d->s[0].label = qo_strdup(path);
        r = open_npy_part(cx, &d->s[0], path, want_rank ? want_rank[0] : -1, false);
        if (r != QO_OK) goto fail;
    }
    d->count = narr ? d->s[0].shape.dims[0] : 0;
    for (uint32_t i = 1; i < narr; i++)
        if (d->s[i].shape.dims[0] != d->count) {
            r = qo_error(cx, QO_ERR_USAGE, &l, "arrays '%s' and '%s' hold different numbers of samples (%" PRId64 " and %" PRId64 ")",
                         d->s[0].label, d->s[i].label, d->count, d->s[i].shape.dims[0]);
            goto fail;
        }
    *out = d;
    return QO_OK;
fail:
    qo_dataset_free(d);
    return r;
}

int64_t qo_dataset_count(const qo_dataset *d) { return d->count; }

void qo_dataset_shape(const qo_dataset *d, uint32_t i, qo_tensor *shape) { *shape = d->s[i].shape; }

static void close_part(stream *s) {
    if (s->f) fclose(s->f);
    if (s->zf) zip_fclose(s->zf);
    s->f = NULL;
    s->zf = NULL;
}

/* Opens part s->cur positioned at its data. */
static qo_status open_cur(qo_ctx *cx, stream *s) {
    part *p = &s->parts[s->cur];
    if (s->za) {
        s->zf = zip_fopen_index(s->za, (zip_uint64_t)s->zidx, 0);
        if (!s->zf) {
            qo_loc l = {.file = s->label, .node_index = -1};
            return qo_error(cx, QO_ERR_IO, &l, "cannot reopen the archive member");
        }
        char skip[4096];
        for (size_t left = p->data_off; left;) {
            size_t k = left < sizeof skip ? left : sizeof skip;
            if (zip_read(s->zf, skip, k)) {
                qo_loc l = {.file = s->label, .node_index = -1};
                return qo_error(cx, QO_ERR_IO, &l, "read error");
            }
            left -= k;
        }
        return QO_OK;
    }
    s->f = fopen(p->path, "rb");
    if (!s->f) return ioerr(cx, p->path, "cannot open");
    if (fseeko(s->f, (off_t)p->data_off, SEEK_SET)) return ioerr(cx, p->path, "cannot seek");
    return QO_OK;
}

/* Reads k samples of stream s into dst. */
static qo_status read_samples(qo_ctx *cx, stream *s, int64_t k, uint8_t *dst) {
    while (k > 0) {
        part *p = &s->parts[s->cur];
        if (s->pos == p->samples) {
            close_part(s);
            s->cur++;
            s->pos = 0;
            continue;
        }
        if (!s->f && !s->zf) QO_TRY(open_cur(cx, s));
        int64_t take = p->samples - s->pos < k ? p->samples - s->pos : k;
        size_t nb = (size_t)take * s->sample_bytes;
        int bad = s->zf ? zip_read(s->zf, dst, nb) : file_read(s->f, dst, nb);
        if (bad) {
            qo_loc l = {.file = s->za ? s->label : p->path, .node_index = -1};
            return qo_error(cx, QO_ERR_IO, &l, "read error (file changed or truncated?)");
        }
        if (s->shape.elem == QO_BOOL)
            for (size_t i = 0; i < nb; i++) dst[i] = dst[i] != 0;
        dst += nb;
        k -= take;
        s->pos += take;
    }
    return QO_OK;
}

qo_status qo_dataset_next(qo_ctx *cx, qo_dataset *d, int64_t batch, qo_tensor *out, int64_t *n) {
    *n = 0;
    if (!d->n) return QO_OK;
    stream *s0 = &d->s[0];
    int64_t done = 0;
    for (uint32_t i = 0; i < s0->cur && i < s0->nparts; i++) done += s0->parts[i].samples;
    done += s0->pos;
    int64_t k = d->count - done < batch ? d->count - done : batch;
    if (k <= 0) return QO_OK;
    for (uint32_t i = 0; i < d->n; i++) {
        stream *s = &d->s[i];
        qo_tensor *t = &out[i];
        bool same = t->data && t->elem == s->shape.elem && t->rank == s->shape.rank && t->dims[0] == k;
        for (int32_t j = 1; same && j < t->rank; j++) same = t->dims[j] == s->shape.dims[j];
        if (!same) {
            qo_tensor_free(t);
            int64_t dims[QO_MAX_RANK];
            memcpy(dims, s->shape.dims, sizeof dims);
            dims[0] = k;
            QO_TRY(qo_tensor_make(cx, t, s->shape.elem, s->shape.rank, dims));
        }
        QO_TRY(read_samples(cx, s, k, t->data));
    }
    *n = k;
    return QO_OK;
}

qo_status qo_dataset_rewind(qo_ctx *cx, qo_dataset *d) {
    (void)cx;
    for (uint32_t i = 0; i < d->n; i++) {
        close_part(&d->s[i]);
        d->s[i].cur = 0;
        d->s[i].pos = 0;
    }
    return QO_OK;
}

void qo_dataset_free(qo_dataset *d) {
    if (!d) return;
    for (uint32_t i = 0; i < d->n; i++) {
        stream *s = &d->s[i];
        close_part(s);
        for (uint32_t j = 0; j < s->nparts; j++) qo_free(s->parts[j].path);
        qo_free(s->parts);
        qo_free(s->label);
    }
    if (d->za) zip_discard(d->za);
    qo_free(d->s);
    qo_free(d->path);
    qo_free(d);
}
