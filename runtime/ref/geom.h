/* runtime/ref/geom.h — sliding-window geometry shared by the reference kernels (runtime/ref/nn.c)
 * and the optimized-kernel node adapters (runtime/kernels/nodes.c): one reading of a node's
 * kernel_shape, strides, dilations, pads, auto_pad (NOTSET, SAME_UPPER, SAME_LOWER, VALID),
 * ceil_mode, output_padding and output_shape, and the output spatial extents derived from them.
 *
 * Two modes, chosen by flags:
 *   QO_GEOM_REPORT  a rejected node is reported with qo_error at the node (file, node, op) and the
 *                   status returned; without it nothing is reported (the adapters decline quietly).
 *   QO_GEOM_STRICT  an attribute of the wrong kind, or longer than QO_MAX_RANK (2 * QO_MAX_RANK
 *                   for pads), rejects the node; without it such an attribute counts as absent,
 *                   as the reference kernels have always read it.
 * Conv and ConvTranspose also resolve group and their channel counts here (qo_geom_channels). */
#ifndef QOPT_RUNTIME_REF_GEOM_H
#define QOPT_RUNTIME_REF_GEOM_H

#include "runtime/rt.h"

enum { QO_GEOM_REPORT = 1u, QO_GEOM_STRICT = 2u };

/* auto_pad values as qo_geom_autopad returns them. */
enum { QO_PAD_NOTSET, QO_PAD_SAME_UPPER, QO_PAD_SAME_LOWER, QO_PAD_VALID };

/* Window geometry of a node with input (N, C, spatial...): nsp spatial dims, per dim the input and
 * output extents, kernel extent, stride, dilation, pads at begin (pb) and end (pe), and adj
 * (ConvTranspose output_padding; 0 elsewhere). */
typedef struct qo_geom {
    int nsp;
    int64_t in[QO_MAX_RANK], out[QO_MAX_RANK], ker[QO_MAX_RANK], str[QO_MAX_RANK], dil[QO_MAX_RANK];
    int64_t pb[QO_MAX_RANK], pe[QO_MAX_RANK], adj[QO_MAX_RANK];
} qo_geom;

/* INTS attribute `name` of k's node into out[0..max): its length, -1 if absent, -2 if it is not
 * INTS or has more than max entries (out is then untouched). */
int qo_geom_attr_ints(qo_kctx *k, const char *name, int64_t *out, int max);

/* auto_pad attribute of k's node: QO_PAD_*; absent, not a string or empty is QO_PAD_NOTSET;
 * -1 for an unknown value. */
int qo_geom_autopad(qo_kctx *k);

/* Conv and pool geometry (Conv, MaxPool, AveragePool, LpPool) for input x of rank >= 3. Kernel
 * extents come from the kernel_shape attribute, else from ker[0..nsp) (Conv: W's spatial dims;
 * NULL for pools, which then require kernel_shape). Defaults: strides and dilations 1, pads 0.
 * With a SAME auto_pad, out = ceil(in / stride) and the total pad max(0, (out-1)*stride +
 * dilated kernel - in) is split evenly with the odd one at the end (SAME_UPPER) or the begin
 * (SAME_LOWER); VALID ignores pads. Otherwise out = floor((in + pb + pe - dilated kernel) / stride)
 * + 1, or with ceil_mode the ceiling + 1, less one when the last window would start past the
 * begin padding. Rejects (QO_ERR_INVALID_MODEL; negative pads QO_ERR_UNSUPPORTED): rank < 3,
 * list lengths other than nsp (pads 2 * nsp), missing kernel_shape without ker, kernel < 1,
 * stride or dilation < 1, unknown auto_pad, a dilated kernel larger than the padded input.
 * Does not compare kernel_shape with ker: the Conv callers do. g is always cleared first. */
qo_status qo_geom_window(qo_kctx *k, const qo_tensor *x, const int64_t *ker, int ceil_mode, unsigned flags,
                         qo_geom *g);

/* Pool geometry (MaxPool, AveragePool, LpPool): qo_geom_window with kernel_shape required and
 * ceil_mode from the node's attribute (default 0). */
qo_status qo_geom_pool(qo_kctx *k, const qo_tensor *x, unsigned flags, qo_geom *g);

/* ConvTranspose geometry for input x of rank >= 3 and weights w of the same rank (the callers
 * check both). Kernel extents are w's spatial dims (a kernel_shape attribute must agree);
 * strides, dilations (default 1) and output_padding (adj, default 0) have nsp entries, pads 2 *
 * nsp (used with auto_pad NOTSET only). Full extent = stride * (in - 1) + adj + dilated kernel.
 * With output_shape (nsp entries, or nsp + 2 for the whole shape) or a SAME auto_pad, out is
 * output_shape or in * stride and the total pad max(0, full - out) is split: SAME_LOWER puts the
 * odd one at the begin, otherwise at the end; else out = full - pb - pe. Rejects
 * (QO_ERR_INVALID_MODEL) wrong list lengths, kernel_shape disagreeing with w, stride or dilation
 * < 1, unknown auto_pad, a negative output extent. g is always cleared first. */
qo_status qo_geom_convtranspose(qo_kctx *k, const qo_tensor *x, const qo_tensor *w, unsigned flags, qo_geom *g);

/* Channels of a Conv (transpose false) or ConvTranspose (true): N and C from x (N, C, ...), the
 * group attribute (default 1) and the output channel count M. Conv weights w are (M, C / group,
 * kernel...), ConvTranspose weights (C, M / group, kernel...). Rejects (QO_ERR_INVALID_MODEL)
 * group < 1, channel counts that do not fit the group, a bias b (NULL: none) not of shape [M].
 * x and w have the same rank, at least 2 (the callers check). */
typedef struct qo_conv_ch {
    int64_t N, C, M, group;
} qo_conv_ch;
qo_status qo_geom_channels(qo_kctx *k, const qo_tensor *x, const qo_tensor *w, const qo_tensor *b, bool transpose,
                           unsigned flags, qo_conv_ch *c);

/* Output shape (d0, d1, g->out[0..nsp)) into odims[0..nsp + 2); returns the rank nsp + 2. */
int qo_geom_out_dims(const qo_geom *g, int64_t d0, int64_t d1, int64_t *odims);

#endif
