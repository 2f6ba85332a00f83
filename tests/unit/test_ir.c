/* tests/unit/test_ir.c — the IR core (ir/ir.c): atoms, uniqued types, constant pool, nodes, use
 * lists under every mutation (checked by walking the lists against a brute-force count and by
 * qo_verify's rebuild), attributes, program order. */
#include "test.h"

#include "ir/ir.h"

static qo_ctx cx;
static qt_diags d;

/* Brute force: for every live value, the slots that read it (live node inputs and graph outputs)
 * must be exactly the ones on its use list, and nuses must equal their number. */
static bool lists_ok(const qo_graph *g) {
    bool ok = true;
    uint8_t *live = qo_calloc(g->nuses, 1);
    for (qo_node n = 1; n < g->nnodes; n++) {
        if (g->nodes[n].flags & QO_NODE_DEAD) continue;
        for (uint32_t i = 0; i < g->nodes[n].nin; i++) live[g->nodes[n].in0 + i] = 1;
    }
    for (uint32_t i = 0; i < g->noutputs; i++) live[g->outputs[i]] = 1;
    for (qo_val v = 1; v < g->nvals; v++) {
        uint32_t want = 0, got = 0;
        for (qo_use_id u = 1; u < g->nuses; u++)
            if (live[u] && g->uses[u].val == v) want++;
            else if (!live[u] && g->uses[u].val) ok = false; /* stale slot still linked */
        qo_use_id prev = 0;
        for (qo_use_id u = g->vals[v].first_use; u && got <= g->nuses; u = g->uses[u].next, got++)
            if (!live[u] || g->uses[u].val != v || g->uses[u].prev != prev) ok = false;
            else prev = u;
        if (got != want || g->vals[v].nuses != want) ok = false;
    }
    qo_free(live);
    return ok;
}

static bool verify_ok(const qo_module *m) {
    qt_ctx(&cx, &d);
    qo_status st = qo_verify(&cx, m);
    if (st != QO_OK) qt_dump(&d);
    return st == QO_OK;
}

static void test_atoms(void) {
    qo_module *m = qo_module_new();
    CHECK_EQ(qo_intern(m, ""), 0);
    CHECK_EQ(qo_intern(m, NULL), 0);
    CHECK_STR(qo_str(m, 0), "");
    qo_atom a = qo_intern(m, "conv1"), b = qo_intern(m, "conv2");
    CHECK(a != 0 && b != 0 && a != b);
    CHECK_EQ(qo_intern(m, "conv1"), a);
    CHECK_EQ(qo_intern_n(m, "conv1xyz", 5), a);
    CHECK_STR(qo_str(m, b), "conv2");
    CHECK_EQ(qo_strlen(m, b), 5);
    /* many atoms: ids stay stable across rehashing */
    qo_atom ids[3000];
    char buf[32];
    for (int i = 0; i < 3000; i++) {
        snprintf(buf, sizeof buf, "name_%d", i);
        ids[i] = qo_intern(m, buf);
    }
    bool stable = true;
    for (int i = 0; i < 3000; i++) {
        snprintf(buf, sizeof buf, "name_%d", i);
        stable &= qo_intern(m, buf) == ids[i] && strcmp(qo_str(m, ids[i]), buf) == 0;
    }
    CHECK(stable);
    CHECK_EQ(qo_intern(m, "conv1"), a);
    qo_module_free(m);
}

static void test_types(void) {
    qo_module *m = qo_module_new();
    int64_t d23[2] = {2, 3}, d32[2] = {3, 2}, dq[2] = {-1, 3};
    qo_type t1 = qo_type_tensor(m, QO_F32, 2, d23, NULL);
    CHECK(t1 != 0);
    CHECK_EQ(qo_type_tensor(m, QO_F32, 2, d23, NULL), t1);
    CHECK(qo_type_tensor(m, QO_F32, 2, d32, NULL) != t1);
    CHECK(qo_type_tensor(m, QO_I8, 2, d23, NULL) != t1);
    CHECK(qo_type_tensor(m, QO_F32, -1, NULL, NULL) != t1);
    CHECK_EQ(qo_type_numel(m, t1), 6);
    CHECK_EQ(qo_type_numel(m, qo_type_tensor(m, QO_F32, 0, NULL, NULL)), 1);
    CHECK_EQ(qo_type_numel(m, qo_type_tensor(m, QO_F32, 2, dq, NULL)), -1);
    CHECK_EQ(qo_type_numel(m, qo_type_tensor(m, QO_F32, -1, NULL, NULL)), -1);
    CHECK_EQ(qo_type_elem(m, t1), QO_F32);
    /* symbolic dims: all-zero syms equal no syms; different names differ */
    qo_atom z[2] = {0, 0}, s1[2] = {qo_intern(m, "N"), 0}, s2[2] = {qo_intern(m, "B"), 0};
    CHECK_EQ(qo_type_tensor(m, QO_F32, 2, dq, z), qo_type_tensor(m, QO_F32, 2, dq, NULL));
    qo_type ts1 = qo_type_tensor(m, QO_F32, 2, dq, s1);
    CHECK(ts1 != qo_type_tensor(m, QO_F32, 2, dq, NULL));
    CHECK(ts1 != qo_type_tensor(m, QO_F32, 2, dq, s2));
    CHECK_EQ(qo_type_tensor(m, QO_F32, 2, dq, s1), ts1);
    CHECK_STR(qo_str(m, qo_type_get(m, ts1)->syms[0]), "N");
    /* quant descriptors */
    qo_quant q = {.bits = 4, .is_signed = 1, .narrow = 1, .scale = 0.5f, .zp = 0};
    qo_type tq = qo_type_with_quant(m, t1, &q);
    CHECK(tq != t1);
    CHECK_EQ(qo_type_with_quant(m, t1, &q), tq);
    qo_quant q2 = q;
    q2.scale = 0.25f;
    CHECK(qo_type_with_quant(m, t1, &q2) != tq);
    q2 = q;
    q2.round = QO_ROUND_FLOOR;
    CHECK(qo_type_with_quant(m, t1, &q2) != tq);
    CHECK_EQ(qo_type_with_quant(m, tq, NULL), t1);
    CHECK(qo_type_get(m, tq)->quant && qo_type_get(m, tq)->quant->bits == 4);
    CHECK_EQ(qo_type_numel(m, tq), 6);
    /* composite types */
    qo_type sq = qo_type_sequence(m, t1);
    CHECK_EQ(qo_type_sequence(m, t1), sq);
    CHECK(qo_type_optional(m, t1) != sq);
    CHECK_EQ(qo_type_map(m, QO_I64, t1), qo_type_map(m, QO_I64, t1));
    CHECK(qo_type_map(m, QO_STR, t1) != qo_type_map(m, QO_I64, t1));
    CHECK(qo_type_sparse(m, QO_F32, 2, d23, NULL) != t1);
    CHECK(qo_type_get(m, 0) == NULL);
    /* many types: ids stable across rehash */
    qo_type ids[500];
    for (int i = 0; i < 500; i++) {
        int64_t dd = i;
        ids[i] = qo_type_tensor(m, QO_F32, 1, &dd, NULL);
    }
    bool stable = true;
    for (int i = 0; i < 500; i++) {
        int64_t dd = i;
        stable &= qo_type_tensor(m, QO_F32, 1, &dd, NULL) == ids[i] && qo_type_get(m, ids[i])->dims[0] == i;
    }
    CHECK(stable);
    CHECK_EQ(qo_type_with_quant(m, t1, &q), tq);
    qo_module_free(m);
}

static void test_consts(void) {
    qo_module *m = qo_module_new();
    /* storage sizes follow ONNX raw_data: int4 packs two per byte (rounded up), bool one byte */
    CHECK_EQ(qo_elem_storage(QO_F32, 6), 24);
    CHECK_EQ(qo_elem_storage(QO_I4, 5), 3);
    CHECK_EQ(qo_elem_storage(QO_U4, 4), 2);
    CHECK_EQ(qo_elem_storage(QO_BOOL, 3), 3);
    CHECK_EQ(qo_elem_storage(QO_F16, 3), 6);
    CHECK_EQ(qo_elem_storage(QO_STR, 3), 0);
    int64_t three = 3;
    qo_type t = qo_type_tensor(m, QO_F32, 1, &three, NULL);
    float src[3] = {1, 2, 3};
    qo_cref c = qo_const_new(m, t, src, sizeof src, true);
    src[0] = 99;
    const qo_constdata *cd = qo_const_get(m, c);
    CHECK_EQ(cd->storage, QO_CONST_OWNED);
    CHECK_EQ(cd->nbytes, 12);
    CHECK(((const float *)cd->data)[0] == 1.0f);
    qo_cref b = qo_const_new(m, t, src, sizeof src, false);
    CHECK(b != c);
    CHECK(qo_const_get(m, b)->data == (const void *)src);
    CHECK_EQ(qo_const_get(m, b)->storage, QO_CONST_BORROWED);
    /* strings are always copied, bytes and all */
    char s0[] = "ab", s1[] = "c\0d";
    qo_bytes strs[2] = {{s0, 2}, {s1, 3}};
    int64_t two = 2;
    qo_cref sc = qo_const_new(m, qo_type_tensor(m, QO_STR, 1, &two, NULL), strs, sizeof strs, false);
    s0[0] = 'X';
    const qo_bytes *got = qo_const_get(m, sc)->data;
    CHECK(got != strs && got[0].n == 2 && memcmp(got[0].p, "ab", 2) == 0);
    CHECK(got[1].n == 3 && memcmp(got[1].p, "c\0d", 3) == 0);
    qo_module_free(m);
}

typedef struct fx {
    qo_module *m;
    qo_graph *g;
    qo_type t;
    qo_val x, w;
} fx;

static fx make(void) {
    fx f;
    f.m = qo_module_new();
    qo_module_set_opset(f.m, "", 13);
    f.g = qo_graph_new(f.m, NULL, 0, "main");
    int64_t dims[1] = {4};
    f.t = qo_type_tensor(f.m, QO_F32, 1, dims, NULL);
    f.x = qo_graph_add_input(f.g, "x", f.t);
    float data[4] = {1, 2, 3, 4};
    f.w = qo_graph_add_const(f.g, "w", qo_const_new(f.m, f.t, data, sizeof data, true));
    return f;
}

static qo_node mk(fx *f, qo_op op, const char *name, uint32_t nin, const qo_val *ins) {
    qo_node n = qo_node_new(f->g, op, NULL, NULL, nin, ins, 1);
    qo_node_set_name(f->g, n, name);
    return n;
}

static void test_nodes(void) {
    fx f = make();
    qo_val in2[2] = {f.x, f.w};
    qo_node a = mk(&f, QO_OP_ADD, "a", 2, in2);
    CHECK_STR(qo_node_op_type(f.g, a), "Add");
    CHECK_STR(qo_node_domain(f.g, a), "");
    CHECK_STR(qo_node_name(f.g, a), "a");
    CHECK_EQ(qo_node_input(f.g, a, 0), f.x);
    CHECK_EQ(qo_node_input(f.g, a, 1), f.w);
    CHECK_EQ(qo_node_input(f.g, a, 2), 0);
    qo_val av = qo_node_output(f.g, a, 0);
    CHECK(av != 0 && f.g->vals[av].def == a && f.g->vals[av].res == 0);
    CHECK_EQ(f.g->vals[f.x].nuses, 1);
    qo_val qin[4] = {av, f.w, f.w, f.w};
    qo_node q = mk(&f, QO_OP_QONNX_QUANT, "q", 4, qin);
    CHECK_STR(qo_node_domain(f.g, q), "qonnx.custom_op.general");
    CHECK_STR(qo_node_op_type(f.g, q), "Quant");
    CHECK_EQ(f.g->vals[f.w].nuses, 4);
    CHECK(!qo_val_has_one_use(f.g, f.w));
    CHECK(qo_val_has_one_use(f.g, av));
    qo_node u = qo_node_new(f.g, QO_OP_UNKNOWN, "com.x", "Frob", 1, &f.x, 3);
    CHECK_STR(qo_node_op_type(f.g, u), "Frob");
    CHECK_EQ(qo_op_lookup("com.x", "Frob"), QO_OP_UNKNOWN);
    CHECK_EQ(qo_op_lookup("ai.onnx", "Conv"), QO_OP_CONV);
    CHECK_EQ(qo_op_lookup("onnx.brevitas", "Quant"), QO_OP_QONNX_QUANT);
    CHECK_EQ(qo_graph_num_nodes(f.g), 3);
    /* insertion point */
    f.g->insert_before = a;
    qo_node first = mk(&f, QO_OP_NEG, "first", 1, &f.x);
    f.g->insert_before = 0;
    CHECK_EQ(f.g->first, first);
    CHECK_EQ(qo_graph_find(f.g, "x"), f.x);
    CHECK_EQ(qo_graph_find(f.g, "nope"), 0);
    qo_loc l = qo_node_loc(f.g, a);
    CHECK_STR(l.node, "a");
    CHECK_STR(l.op, "Add");
    CHECK_EQ(l.node_index, 1);
    qo_node_set_attr_int(f.g, q, "signed", 1);
    qo_node_set_attr_int(f.g, q, "narrow", 0);
    CHECK(lists_ok(f.g));
    CHECK(verify_ok(f.m));
    qo_module_free(f.m);
}

static void test_use_mutations(void) {
    fx f = make();
    qo_val in2[2] = {f.x, f.w};
    qo_node a = mk(&f, QO_OP_ADD, "a", 2, in2);
    qo_val av = qo_node_output(f.g, a, 0);
    qo_val in3[2] = {av, av};
    qo_node b = mk(&f, QO_OP_MUL, "b", 2, in3);
    qo_val bv = qo_node_output(f.g, b, 0);
    qo_node c = mk(&f, QO_OP_RELU, "c", 1, &bv);
    qo_val cv = qo_node_output(f.g, c, 0);
    qo_graph_add_output(f.g, cv);
    qo_graph_add_output(f.g, av);
    CHECK(lists_ok(f.g));
    CHECK_EQ(f.g->vals[av].nuses, 3);
    CHECK(verify_ok(f.m));

    /* qo_set_input: move one slot from av to x; to omitted; back */
    qo_set_input(f.g, qo_node_use(f.g, b, 1), f.x);
    CHECK_EQ(f.g->vals[av].nuses, 2);
    CHECK_EQ(f.g->vals[f.x].nuses, 2);
    CHECK(lists_ok(f.g));
    qo_set_input(f.g, qo_node_use(f.g, b, 1), 0);
    CHECK_EQ(qo_node_input(f.g, b, 1), 0);
    CHECK(lists_ok(f.g));
    qo_set_input(f.g, qo_node_use(f.g, b, 1), av);
    CHECK(lists_ok(f.g));
    CHECK(verify_ok(f.m));

    /* RAUW: every use of av (two node slots and a graph output) moves to w */
    qo_replace_all_uses(f.g, av, f.w);
    CHECK_EQ(f.g->vals[av].nuses, 0);
    CHECK_EQ(f.g->vals[av].first_use, 0);
    CHECK_EQ(f.g->vals[f.w].nuses, 4);
    CHECK_EQ(qo_graph_output(f.g, 1), f.w);
    CHECK_EQ(qo_node_input(f.g, b, 0), f.w);
    CHECK(lists_ok(f.g));
    qo_replace_all_uses(f.g, f.w, f.w); /* no-op */
    CHECK(lists_ok(f.g));
    CHECK(verify_ok(f.m));

    /* erase the now-unused node a */
    qo_node_erase(f.g, a);
    CHECK(f.g->nodes[a].flags & QO_NODE_DEAD);
    CHECK(f.g->vals[av].flags & QO_VAL_DEAD);
    CHECK_EQ(f.g->vals[f.x].nuses, 0);
    CHECK_EQ(qo_graph_num_nodes(f.g), 2);
    CHECK_EQ(f.g->first, b);
    CHECK(lists_ok(f.g));
    CHECK(verify_ok(f.m));

    /* grow the input count: slots move, old ones are unlinked */
    qo_node_set_num_inputs(f.g, c, 3);
    CHECK_EQ(qo_node_input(f.g, c, 0), bv);
    CHECK_EQ(qo_node_input(f.g, c, 2), 0);
    CHECK(lists_ok(f.g));
    qo_set_input(f.g, qo_node_use(f.g, c, 2), f.x);
    CHECK(lists_ok(f.g));
    qo_node_set_num_inputs(f.g, c, 1); /* shrink unlinks the dropped slots */
    CHECK_EQ(f.g->vals[f.x].nuses, 0);
    CHECK(lists_ok(f.g));
    CHECK(verify_ok(f.m));

    /* drop an unused output; erase a constant value */
    qo_node tk = qo_node_new(f.g, QO_OP_DROPOUT, NULL, NULL, 1, &f.w, 2); /* mask output optional */
    qo_node_set_name(f.g, tk, "drop");
    qo_node_drop_output(f.g, tk, 1);
    CHECK_EQ(qo_node_output(f.g, tk, 1), 0);
    CHECK(lists_ok(f.g));
    CHECK(verify_ok(f.m));
    qo_node_erase(f.g, tk);
    qo_replace_all_uses(f.g, f.w, f.x);
    qo_val_erase(f.g, f.w);
    CHECK_EQ(f.g->nconsts, 0);
    CHECK(lists_ok(f.g));
    CHECK(verify_ok(f.m));
    qo_module_free(f.m);
}

static void test_attrs(void) {
    fx f = make();
    qo_node n = mk(&f, QO_OP_CONV, "conv", 2, (qo_val[]){f.x, f.w});
    const char *order[] = {"strides", "auto_pad", "pads", "group", "dilations", "kernel_shape"};
    int64_t v2[2] = {1, 1};
    for (int i = 0; i < 6; i++) {
        if (!strcmp(order[i], "auto_pad")) qo_node_set_attr_string(f.g, n, "auto_pad", "NOTSET", 6);
        else if (!strcmp(order[i], "group")) qo_node_set_attr_int(f.g, n, "group", 1);
        else qo_node_set_attr_ints(f.g, n, order[i], v2, 2);
    }
    const char *sorted[] = {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"};
    const qo_nodedata *nd = &f.g->nodes[n];
    CHECK_EQ(nd->nattr, 6);
    bool ok = true;
    for (uint32_t i = 0; i < nd->nattr && i < 6; i++) ok &= strcmp(qo_str(f.m, f.g->attrs[nd->attr0 + i].name), sorted[i]) == 0;
    CHECK(ok);
    /* replace keeps the count and order; payload copied */
    int64_t v3[2] = {2, 2};
    qo_node_set_attr_ints(f.g, n, "strides", v3, 2);
    v3[0] = 7;
    nd = &f.g->nodes[n];
    CHECK_EQ(nd->nattr, 6);
    const qo_attr *a = qo_node_attr(f.g, n, "strides");
    CHECK(a && a->kind == QO_ATTR_INTS && a->n == 2 && a->u.is[0] == 2);
    CHECK_EQ(qo_attr_int(f.g, n, "group", 5), 1);
    CHECK_EQ(qo_attr_int(f.g, n, "missing", 5), 5);
    CHECK_EQ(qo_attr_int(f.g, n, "auto_pad", 5), 5); /* kind mismatch gives the default */
    CHECK(qo_attr_float(f.g, n, "group", 0.5f) == 0.5f);
    a = qo_node_attr(f.g, n, "auto_pad");
    CHECK(a && a->u.s.n == 6 && memcmp(a->u.s.p, "NOTSET", 6) == 0);
    CHECK(qo_node_remove_attr(f.g, n, "group"));
    CHECK(!qo_node_remove_attr(f.g, n, "group"));
    nd = &f.g->nodes[n];
    CHECK_EQ(nd->nattr, 5);
    ok = true;
    const char *after[] = {"auto_pad", "dilations", "kernel_shape", "pads", "strides"};
    for (uint32_t i = 0; i < nd->nattr && i < 5; i++) ok &= strcmp(qo_str(f.m, f.g->attrs[nd->attr0 + i].name), after[i]) == 0;
    CHECK(ok);
    qo_node_set_attr_float(f.g, n, "a_first", 1.0f);
    nd = &f.g->nodes[n];
    CHECK_STR(qo_str(f.m, f.g->attrs[nd->attr0].name), "a_first");
    CHECK(qo_attr_float(f.g, n, "a_first", 0) == 1.0f);
    qo_node_remove_attr(f.g, n, "a_first");
    CHECK(verify_ok(f.m));
    qo_module_free(f.m);
}

static void order_of(const qo_graph *g, qo_node *out, uint32_t *n) {
    *n = 0;
    QO_FOR_EACH_NODE(g, it) out[(*n)++] = it;
}

static void test_toposort(void) {
    fx f = make();
    /* a diamond plus an independent node: a -> b, a -> c, (b, c) -> d; e independent */
    qo_node a = mk(&f, QO_OP_NEG, "a", 1, &f.x);
    qo_val av = qo_node_output(f.g, a, 0);
    qo_node e = mk(&f, QO_OP_ABS, "e", 1, &f.w);
    qo_node b = mk(&f, QO_OP_RELU, "b", 1, &av);
    qo_node c = mk(&f, QO_OP_EXP, "c", 1, &av);
    qo_node dd = mk(&f, QO_OP_ADD, "d", 2, (qo_val[]){qo_node_output(f.g, b, 0), qo_node_output(f.g, c, 0)});
    qo_graph_add_output(f.g, qo_node_output(f.g, dd, 0));
    qo_graph_add_output(f.g, qo_node_output(f.g, e, 0));
    qo_node before[8], after[8];
    uint32_t nb, na;
    order_of(f.g, before, &nb);
    qt_ctx(&cx, &d);
    CHECK_EQ(qo_graph_toposort(&cx, f.g), QO_OK);
    order_of(f.g, after, &na);
    CHECK(nb == na && memcmp(before, after, nb * sizeof(qo_node)) == 0); /* valid order kept */

    /* shuffle: d first, c before a; the sort restores a valid order, keeping e's relative place */
    qo_node_move_before(f.g, dd, f.g->first);
    qo_node_move_before(f.g, c, a);
    qt_ctx(&cx, &d);
    CHECK_EQ(qo_verify(&cx, f.m), QO_ERR_VERIFY); /* dominance broken */
    qt_ctx(&cx, &d);
    CHECK_EQ(qo_graph_toposort(&cx, f.g), QO_OK);
    CHECK(verify_ok(f.m));
    order_of(f.g, after, &na);
    CHECK_EQ(na, 5);
    CHECK_EQ(after[na - 1], dd);
    CHECK(lists_ok(f.g));

    /* a cycle: a reads d's result */
    qo_set_input(f.g, qo_node_use(f.g, a, 0), qo_node_output(f.g, dd, 0));
    qt_ctx(&cx, &d);
    CHECK_EQ(qo_graph_toposort(&cx, f.g), QO_ERR_INVALID_MODEL);
    CHECK_EQ(d.nerrors, 1);
    CHECK(qt_has(&d, NULL, "cycle"));
    CHECK(d.n == 1 && (strcmp(d.node[0], "a") == 0 || strcmp(d.node[0], "b") == 0 || strcmp(d.node[0], "c") == 0 ||
                       strcmp(d.node[0], "d") == 0));
    order_of(f.g, after, &na);
    CHECK_EQ(na, 5); /* order list left intact */
    qo_module_free(f.m);
}

static void test_module(void) {
    qo_module *m = qo_module_new();
    CHECK(qo_module_main(m) == NULL);
    CHECK_EQ(qo_module_opset(m, ""), 0);
    qo_module_set_opset(m, "ai.onnx", 17);
    CHECK_EQ(qo_module_opset(m, ""), 17);
    qo_module_set_opset(m, "qonnx.custom_op.general", 2);
    CHECK_EQ(qo_module_opset(m, "qonnx.custom_op.general"), 2);
    qo_module_set_opset(m, "ai.onnx", 13);
    CHECK_EQ(qo_module_opset(m, "ai.onnx"), 13);
    CHECK_EQ(m->nopsets, 2);
    qo_graph *g = qo_graph_new(m, NULL, 0, "main");
    CHECK(qo_module_main(m) == g);
    CHECK_EQ(g->index, 0);
    CHECK_EQ(g->parent, 0);
    qo_module_free(m);
    qo_module_free(NULL);
}

int main(void) {
    RUN(test_atoms);
    RUN(test_types);
    RUN(test_consts);
    RUN(test_nodes);
    RUN(test_use_mutations);
    RUN(test_attrs);
    RUN(test_toposort);
    RUN(test_module);
    return qt_finish();
}
