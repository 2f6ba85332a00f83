/* tests/unit/test_verify.c — qo_verify: valid IR passes; IR broken on purpose (through direct writes
 * that bypass the IR API) is reported, naming the node, and checking continues. */
#include "test.h"

#include "ir/ir.h"

/* A small valid module at opset 13:
 *   main(x: f32[2,3]) init w = 1..6
 *     add1: s = Add(x, w)
 *     relu1: y = Relu(s)
 *   -> y */
typedef struct fx {
    qo_module *m;
    qo_graph *g;
    qo_type t;
    qo_val x, w, s, y;
    qo_node add, relu;
    qo_cref wc;
} fx;

static fx make(void) {
    fx f;
    f.m = qo_module_new();
    qo_module_set_opset(f.m, "", 13);
    f.g = qo_graph_new(f.m, NULL, 0, "main");
    int64_t dims[2] = {2, 3};
    f.t = qo_type_tensor(f.m, QO_F32, 2, dims, NULL);
    f.x = qo_graph_add_input(f.g, "x", f.t);
    float data[6] = {1, 2, 3, 4, 5, 6};
    f.wc = qo_const_new(f.m, f.t, data, sizeof data, true);
    f.w = qo_graph_add_const(f.g, "w", f.wc);
    qo_val in2[2] = {f.x, f.w};
    f.add = qo_node_new(f.g, QO_OP_ADD, NULL, NULL, 2, in2, 1);
    qo_node_set_name(f.g, f.add, "add1");
    f.s = qo_node_output(f.g, f.add, 0);
    qo_val_set_name(f.g, f.s, "s");
    f.relu = qo_node_new(f.g, QO_OP_RELU, NULL, NULL, 1, &f.s, 1);
    qo_node_set_name(f.g, f.relu, "relu1");
    f.y = qo_node_output(f.g, f.relu, 0);
    qo_val_set_name(f.g, f.y, "y");
    qo_graph_add_output(f.g, f.y);
    return f;
}

static qo_ctx cx;
static qt_diags d;

/* Runs the verifier on m; returns its status. Diagnostics land in d. */
static qo_status verify(qo_module *m) {
    qt_ctx(&cx, &d);
    return qo_verify(&cx, m);
}

/* Expects failure with an error at node `node` containing `sub`. */
#define EXPECT_ERR(m, node, sub)                                                                   \
    do {                                                                                           \
        CHECK_EQ(verify(m), QO_ERR_VERIFY);                                                        \
        bool has_ = qt_has(&d, node, sub);                                                         \
        CHECK(has_);                                                                               \
        if (!has_) qt_dump(&d);                                                                    \
    } while (0)

static void test_valid(void) {
    fx f = make();
    CHECK_EQ(verify(f.m), QO_OK);
    CHECK_EQ(d.n, 0);
    if (d.n) qt_dump(&d);
    /* trailing omitted inputs are fine for the upper bound: Add(x, w, <omitted>) */
    qo_node_set_num_inputs(f.g, f.add, 3);
    CHECK_EQ(verify(f.m), QO_OK);
    qo_node_set_num_inputs(f.g, f.add, 2);
    /* internal "__" attributes and known attributes of the right kind pass */
    qo_node_set_attr_int(f.g, f.relu, "__qopt_mark", 1);
    CHECK_EQ(verify(f.m), QO_OK);
    /* an empty module graph with no nodes is valid */
    qo_module *m = qo_module_new();
    qo_graph_new(m, NULL, 0, "empty");
    CHECK_EQ(verify(m), QO_OK);
    qo_module_free(m);
    qo_module_free(f.m);
}

static void test_use_lists(void) {
    fx f = make();
    /* count out of sync with the list */
    f.g->vals[f.s].nuses++;
    EXPECT_ERR(f.m, "add1", "use count 2, use list length 1, uses found by rebuild 1");
    qo_module_free(f.m);

    /* a slot rewritten directly (not through qo_set_input) */
    f = make();
    f.g->uses[qo_node_use(f.g, f.relu, 0)].val = f.x;
    EXPECT_ERR(f.m, "relu1", "is in the use list of value 's' but reads value 1");
    EXPECT_ERR(f.m, NULL, "value 'x': use count 1, use list length 1, uses found by rebuild 2");
    EXPECT_ERR(f.m, "add1", "value 's': use count 1, use list length 1, uses found by rebuild 0");
    /* a slot reading a value whose use list does not hold it */
    f.g->vals[f.s].first_use = 0;
    f.g->vals[f.s].nuses = 0;
    EXPECT_ERR(f.m, "relu1", "use 3 reads value 'x' but is missing from its use list");
    qo_module_free(f.m);

    /* broken prev link */
    f = make();
    qo_val in2[2] = {f.s, f.s};
    qo_node mul = qo_node_new(f.g, QO_OP_MUL, NULL, NULL, 2, in2, 1);
    qo_node_set_name(f.g, mul, "mul1");
    CHECK_EQ(verify(f.m), QO_OK);
    f.g->uses[f.g->vals[f.s].first_use].prev = 1;
    EXPECT_ERR(f.m, NULL, "use list of value 's': use");
    qo_module_free(f.m);

    /* an orphan slot (not owned by any live node) still reading a value */
    f = make();
    qo_use_id u = qo_node_use(f.g, f.relu, 0);
    f.g->nodes[f.relu].in0 = 0; /* pretend the node lost its slots; nin stays 1 -> also range error */
    f.g->nodes[f.relu].nin = 0;
    EXPECT_ERR(f.m, "relu1", "belongs to no live node or graph output but still reads value 's'");
    (void)u;
    qo_module_free(f.m);

    /* a graph output slot with an owner */
    f = make();
    f.g->uses[f.g->outputs[0]].owner = f.add;
    EXPECT_ERR(f.m, NULL, "graph output 0 (use");
    qo_module_free(f.m);
}

static void test_definitions(void) {
    fx f = make();
    /* the same value listed as output of two nodes */
    f.g->outs[f.g->nodes[f.relu].out0] = f.s;
    EXPECT_ERR(f.m, "relu1", "output 0 (value 's') is also an output of node");
    qo_module_free(f.m);

    f = make();
    f.g->vals[f.y].res = 5;
    EXPECT_ERR(f.m, "relu1", "points back to node");
    qo_module_free(f.m);

    /* node result also flagged as an input */
    f = make();
    f.g->vals[f.s].flags |= QO_VAL_INPUT;
    EXPECT_ERR(f.m, "add1", "is a node result and also an input/initializer/capture");
    EXPECT_ERR(f.m, NULL, "flagged graph input but is not in the graph's graph input list");
    qo_module_free(f.m);

    /* capture flag without list entry */
    f = make();
    f.g->vals[f.x].flags |= QO_VAL_CAPTURE;
    EXPECT_ERR(f.m, NULL, "value 'x' is flagged capture but is not in the graph's capture list");
    qo_module_free(f.m);

    /* a used value with no definition at all */
    f = make();
    qo_graph_remove_input(f.g, 0);
    EXPECT_ERR(f.m, "add1", "input 0 reads value 'x', which has no definition");
    qo_module_free(f.m);

    /* an unused undefined value is garbage, not an error */
    f = make();
    qo_val orphan = qo_graph_add_input(f.g, "orphan", f.t);
    qo_graph_remove_input(f.g, 1);
    (void)orphan;
    CHECK_EQ(verify(f.m), QO_OK);
    qo_module_free(f.m);
}

static void test_dominance(void) {
    fx f = make();
    qo_node_move_before(f.g, f.relu, f.add);
    EXPECT_ERR(f.m, "relu1", "input 0 reads value 's', which is defined later in program order");
    qo_module_free(f.m);

    /* a node reading its own result */
    f = make();
    qo_set_input(f.g, qo_node_use(f.g, f.relu, 0), f.y);
    f.g->uses[f.g->outputs[0]].val = f.y; /* keep */
    qo_set_input(f.g, qo_node_use(f.g, f.add, 0), f.x);
    EXPECT_ERR(f.m, "relu1", "defined by this node");
    qo_module_free(f.m);

    /* an erased value still read */
    f = make();
    f.g->vals[f.s].flags |= QO_VAL_DEAD;
    EXPECT_ERR(f.m, "relu1", "input 0 reads erased value 's'");
    EXPECT_ERR(f.m, "add1", "output 0 (value 's') is erased");
    qo_module_free(f.m);

    /* result of an erased node, erased node left in order */
    f = make();
    f.g->nodes[f.add].flags |= QO_NODE_DEAD;
    EXPECT_ERR(f.m, "add1", "erased node is still in program order");
    EXPECT_ERR(f.m, "add1", "live value 's' is defined by an erased node");
    qo_module_free(f.m);

    /* graph output reading an erased value */
    f = make();
    f.g->vals[f.y].flags |= QO_VAL_DEAD;
    EXPECT_ERR(f.m, NULL, "graph output 0 reads erased value 'y'");
    qo_module_free(f.m);
}

static void test_order(void) {
    fx f = make();
    /* live node unlinked from program order */
    f.g->first = f.relu;
    f.g->nodes[f.relu].prev = 0;
    EXPECT_ERR(f.m, "add1", "live node is missing from program order");
    qo_module_free(f.m);

    f = make();
    f.g->nodes[f.relu].prev = f.relu;
    EXPECT_ERR(f.m, "relu1", "program order: prev link is 2, expected 1");
    qo_module_free(f.m);

    f = make();
    f.g->last = f.add;
    EXPECT_ERR(f.m, "add1", "program order: last is node 1, the list ends at node 2");
    qo_module_free(f.m);

    /* a cycle in the list must not hang the verifier */
    f = make();
    f.g->nodes[f.relu].next = f.add;
    EXPECT_ERR(f.m, "add1", "program order list has a cycle");
    qo_module_free(f.m);
}

static void test_arity(void) {
    fx f = make();
    qo_val in3[3] = {f.x, f.w, f.x};
    qo_node bad = qo_node_new(f.g, QO_OP_ADD, NULL, NULL, 3, in3, 1);
    qo_node_set_name(f.g, bad, "add3");
    EXPECT_ERR(f.m, "add3", "Add takes 2 to 2 inputs, node has 3");
    qo_module_free(f.m);

    f = make();
    bad = qo_node_new(f.g, QO_OP_ADD, NULL, NULL, 1, &f.x, 1);
    qo_node_set_name(f.g, bad, "add_one");
    EXPECT_ERR(f.m, "add_one", "Add takes 2 to 2 inputs, node has 1");
    qo_module_free(f.m);

    /* omitted single input: Conv(x, <omitted>) */
    f = make();
    qo_val ins[2] = {f.x, 0};
    bad = qo_node_new(f.g, QO_OP_CONV, NULL, NULL, 2, ins, 1);
    qo_node_set_name(f.g, bad, "conv_nw");
    EXPECT_ERR(f.m, "conv_nw", "required input 1 of Conv is omitted");
    qo_module_free(f.m);

    /* Clip-6 (opset 6..10) has one input: ops.def allows 3, the schema at opset 10 does not */
    f = make();
    qo_module_set_opset(f.m, "", 10);
    qo_val cin[2] = {f.x, f.w};
    bad = qo_node_new(f.g, QO_OP_CLIP, NULL, NULL, 2, cin, 1);
    qo_node_set_name(f.g, bad, "clip6");
    EXPECT_ERR(f.m, "clip6", "Clip-6 takes 1 to 1 inputs, node has 2");
    qo_module_free(f.m);

    /* too many outputs; required output dropped */
    f = make();
    bad = qo_node_new(f.g, QO_OP_RELU, NULL, NULL, 1, &f.x, 2);
    qo_node_set_name(f.g, bad, "relu2");
    EXPECT_ERR(f.m, "relu2", "Relu has 1 to 1 outputs, node has 2");
    qo_module_free(f.m);

    f = make();
    qo_val kin[2] = {f.x, f.w};
    bad = qo_node_new(f.g, QO_OP_TOPK, NULL, NULL, 2, kin, 2);
    qo_node_set_name(f.g, bad, "topk");
    qo_node_drop_output(f.g, bad, 0);
    EXPECT_ERR(f.m, "topk", "required output 0 of TopK is omitted");
    qo_module_free(f.m);

    /* op not defined yet at the opset; deprecated op */
    f = make();
    bad = qo_node_new(f.g, QO_OP_GELU, NULL, NULL, 1, &f.x, 1);
    qo_node_set_name(f.g, bad, "gelu");
    EXPECT_ERR(f.m, "gelu", "Gelu does not exist at opset 13 (defined from opset 20)");
    qo_module_set_opset(f.m, "", 20);
    CHECK_EQ(verify(f.m), QO_OK);
    qo_module_free(f.m);

    f = make();
    qo_module_set_opset(f.m, "", 10);
    qo_val uin[2] = {f.x, f.w};
    bad = qo_node_new(f.g, QO_OP_UPSAMPLE, NULL, NULL, 2, uin, 1);
    qo_node_set_name(f.g, bad, "up");
    EXPECT_ERR(f.m, "up", "Upsample is deprecated at opset 10");
    qo_module_free(f.m);

    /* op enum not matching op_type */
    f = make();
    f.g->nodes[f.add].op = QO_OP_SUB;
    EXPECT_ERR(f.m, "add1", "op enum Sub does not match op_type 'Add'");
    qo_module_free(f.m);

    /* unknown ops are kept as generic nodes and not arity-checked */
    f = make();
    qo_val gin[3] = {f.x, f.x, f.x};
    bad = qo_node_new(f.g, QO_OP_UNKNOWN, "com.example", "Frob", 3, gin, 4);
    qo_node_set_attr_int(f.g, bad, "whatever", 3);
    CHECK_EQ(verify(f.m), QO_OK);
    qo_module_free(f.m);
}

static void test_attributes(void) {
    fx f = make();
    qo_val gin[2] = {f.x, f.w};
    qo_node gm = qo_node_new(f.g, QO_OP_GEMM, NULL, NULL, 2, gin, 1);
    qo_node_set_name(f.g, gm, "gemm1");
    qo_node_set_attr_int(f.g, gm, "alpha", 2);
    EXPECT_ERR(f.m, "gemm1", "attribute 'alpha' has kind int, expected float");
    qo_node_set_attr_float(f.g, gm, "alpha", 2);
    CHECK_EQ(verify(f.m), QO_OK);
    qo_module_free(f.m);

    f = make();
    qo_node c = qo_node_new(f.g, QO_OP_CAST, NULL, NULL, 1, &f.x, 1);
    qo_node_set_name(f.g, c, "cast1");
    EXPECT_ERR(f.m, "cast1", "required attribute 'to' of Cast is missing");
    qo_node_set_attr_int(f.g, c, "to", QO_F16);
    CHECK_EQ(verify(f.m), QO_OK);
    /* at opset 19 'saturate' exists; at 13 it is unknown */
    qo_node_set_attr_int(f.g, c, "saturate", 0);
    EXPECT_ERR(f.m, "cast1", "unknown attribute 'saturate' for Cast at opset 13");
    qo_module_set_opset(f.m, "", 19);
    CHECK_EQ(verify(f.m), QO_OK);
    qo_module_free(f.m);

    f = make();
    qo_node_set_attr_int(f.g, f.relu, "foo", 1);
    EXPECT_ERR(f.m, "relu1", "unknown attribute 'foo' for Relu at opset 13");
    qo_module_free(f.m);

    /* QONNX Quant: signed/narrow required; unknown attributes on custom-domain ops are tolerated */
    f = make();
    qo_val qin[4] = {f.x, f.w, f.w, f.w};
    qo_node q = qo_node_new(f.g, QO_OP_QONNX_QUANT, NULL, NULL, 4, qin, 1);
    qo_node_set_name(f.g, q, "quant1");
    qo_node_set_attr_int(f.g, q, "signed", 1);
    EXPECT_ERR(f.m, "quant1", "required attribute 'narrow' of Quant is missing");
    qo_node_set_attr_int(f.g, q, "narrow", 0);
    qo_node_set_attr_int(f.g, q, "extra", 0);
    CHECK_EQ(verify(f.m), QO_OK);
    qo_node_set_attr_int(f.g, q, "rounding_mode", 0);
    EXPECT_ERR(f.m, "quant1", "attribute 'rounding_mode' has kind int, expected string");
    qo_module_free(f.m);

    /* attribute slice out of order / duplicated */
    f = make();
    qo_node_set_attr_float(f.g, f.relu, "__a", 1);
    qo_node_set_attr_float(f.g, f.relu, "__b", 2);
    qo_nodedata *nd = &f.g->nodes[f.relu];
    qo_attr tmp = f.g->attrs[nd->attr0];
    f.g->attrs[nd->attr0] = f.g->attrs[nd->attr0 + 1];
    f.g->attrs[nd->attr0 + 1] = tmp;
    EXPECT_ERR(f.m, "relu1", "attributes are not sorted by name ('__a' after '__b')");
    f.g->attrs[nd->attr0] = f.g->attrs[nd->attr0 + 1];
    EXPECT_ERR(f.m, "relu1", "attribute '__a' appears twice");
    qo_module_free(f.m);
}

static void test_constants(void) {
    fx f = make();
    qo_const_get_mut(f.m, f.wc)->nbytes = 20;
    EXPECT_ERR(f.m, NULL, "initializer 'w': constant #1 holds 20 bytes, its type f32[6 elements] needs 24");
    qo_module_free(f.m);

    /* a Constant node's tensor attribute with the wrong size names the node */
    f = make();
    int64_t four = 4;
    qo_type t4 = qo_type_tensor(f.m, QO_I4, 1, &four, NULL);
    uint8_t nib[3] = {0x21, 0x43, 0};
    qo_cref c = qo_const_new(f.m, t4, nib, 3, true); /* 4 int4 need 2 bytes */
    qo_node k = qo_node_new(f.g, QO_OP_CONSTANT, NULL, NULL, 0, NULL, 1);
    qo_node_set_name(f.g, k, "const1");
    qo_attr a = {.name = qo_intern(f.m, "value"), .kind = QO_ATTR_TENSOR};
    a.u.t = c;
    qo_node_set_attr(f.g, k, &a);
    EXPECT_ERR(f.m, "const1", "holds 3 bytes, its type i4[4 elements] needs 2");
    qo_const_get_mut(f.m, c)->nbytes = 2;
    CHECK_EQ(verify(f.m), QO_OK);
    /* non-static constant type */
    int64_t dyn = -1;
    qo_const_get_mut(f.m, c)->type = qo_type_tensor(f.m, QO_I4, 1, &dyn, NULL);
    EXPECT_ERR(f.m, "const1", "has a non-static shape");
    qo_module_free(f.m);

    /* value type disagreeing with its constant */
    f = make();
    f.g->vals[f.w].type = qo_type_tensor(f.m, QO_I32, 2, (int64_t[]){2, 3}, NULL);
    EXPECT_ERR(f.m, NULL, "value 'w' has a type different from its constant's");
    qo_module_free(f.m);
}

static void test_names(void) {
    fx f = make();
    qo_val_set_name(f.g, f.y, "s");
    EXPECT_ERR(f.m, "relu1", "value name 's' is defined more than once");
    qo_module_free(f.m);

    f = make();
    qo_val_set_name(f.g, f.y, "x"); /* node output reusing a graph input's name */
    EXPECT_ERR(f.m, "relu1", "value name 'x' is defined more than once");
    qo_module_free(f.m);
}

/* main: x, w; add1; if1: If(c) then { capture s; t1 = Neg(s) -> t1 } else { capture x; e1 = Abs(x) -> e1 }
 * relu1 after. Returns the If node; *then_g / *else_g the bodies. */
static qo_node add_if(fx *f, qo_graph **then_g, qo_graph **else_g) {
    qo_type tb = qo_type_tensor(f->m, QO_BOOL, 0, NULL, NULL);
    qo_val c = qo_graph_add_input(f->g, "c", tb);
    f->g->insert_before = f->relu;
    qo_node n = qo_node_new(f->g, QO_OP_IF, NULL, NULL, 1, &c, 1);
    f->g->insert_before = 0;
    qo_node_set_name(f->g, n, "if1");
    qo_val_set_name(f->g, qo_node_output(f->g, n, 0), "r");
    qo_graph *tg = qo_graph_new(f->m, f->g, n, "then");
    qo_val s = qo_graph_add_capture(tg, "s", f->t);
    qo_node neg = qo_node_new(tg, QO_OP_NEG, NULL, NULL, 1, &s, 1);
    qo_node_set_name(tg, neg, "neg1");
    qo_val_set_name(tg, qo_node_output(tg, neg, 0), "t1");
    qo_graph_add_output(tg, qo_node_output(tg, neg, 0));
    qo_graph *eg = qo_graph_new(f->m, f->g, n, "else");
    qo_val x = qo_graph_add_capture(eg, "x", f->t);
    qo_node ab = qo_node_new(eg, QO_OP_ABS, NULL, NULL, 1, &x, 1);
    qo_node_set_name(eg, ab, "abs1");
    qo_val_set_name(eg, qo_node_output(eg, ab, 0), "e1");
    qo_graph_add_output(eg, qo_node_output(eg, ab, 0));
    qo_attr a = {.name = qo_intern(f->m, "then_branch"), .kind = QO_ATTR_GRAPH};
    a.u.g = tg->index;
    qo_node_set_attr(f->g, n, &a);
    a.name = qo_intern(f->m, "else_branch");
    a.u.g = eg->index;
    qo_node_set_attr(f->g, n, &a);
    *then_g = tg;
    *else_g = eg;
    return n;
}

static void test_subgraphs(void) {
    fx f = make();
    qo_graph *tg, *eg;
    qo_node ifn = add_if(&f, &tg, &eg);
    CHECK_EQ(verify(f.m), QO_OK);
    if (d.n) qt_dump(&d);

    /* capture naming nothing visible */
    qo_val_set_name(tg, tg->captures[0], "nowhere");
    EXPECT_ERR(f.m, NULL, "capture 'nowhere' does not name a value visible in an enclosing graph");
    /* capture naming a value defined after the If node: not visible */
    qo_val_set_name(tg, tg->captures[0], "y");
    EXPECT_ERR(f.m, NULL, "capture 'y' does not name a value visible");
    qo_val_set_name(tg, tg->captures[0], "s");
    CHECK_EQ(verify(f.m), QO_OK);

    /* a body node output reusing an outer name (ONNX forbids it) */
    qo_val_set_name(tg, qo_node_output(tg, tg->first, 0), "w");
    EXPECT_ERR(f.m, "neg1", "output name 'w' is already defined in enclosing graph 'main'");
    /* ... but a name defined in the parent only after the If node is not visible: allowed */
    qo_val_set_name(tg, qo_node_output(tg, tg->first, 0), "y");
    CHECK_EQ(verify(f.m), QO_OK);
    qo_val_set_name(tg, qo_node_output(tg, tg->first, 0), "t1");
    /* a body input may shadow an outer name */
    qo_graph_add_input(eg, "w", f.t);
    CHECK_EQ(verify(f.m), QO_OK);

    /* required branch missing, body unreferenced */
    qo_node_remove_attr(f.g, ifn, "else_branch");
    EXPECT_ERR(f.m, "if1", "required attribute 'else_branch' of If is missing");
    EXPECT_ERR(f.m, NULL, "graph is referenced by 0 GRAPH attributes");
    qo_module_free(f.m);

    /* GRAPH attribute pointing at a body owned by another node */
    f = make();
    qo_node if2 = add_if(&f, &tg, &eg);
    tg->parent_node = f.add;
    EXPECT_ERR(f.m, "if1", "attribute 'then_branch' refers to graph 1 whose parent is graph 0 node 1");
    (void)if2;
    qo_module_free(f.m);

    /* GRAPH attribute pointing nowhere */
    f = make();
    ifn = add_if(&f, &tg, &eg);
    qo_attr a = {.name = qo_intern(f.m, "then_branch"), .kind = QO_ATTR_GRAPH};
    a.u.g = 42;
    qo_node_set_attr(f.g, ifn, &a);
    EXPECT_ERR(f.m, "if1", "attribute 'then_branch' refers to graph 42, which does not exist");
    qo_module_free(f.m);

    /* errors inside a body name the body's node and graph */
    f = make();
    add_if(&f, &tg, &eg);
    qo_node_set_attr_int(eg, eg->first, "bogus", 1);
    EXPECT_ERR(f.m, "abs1", "graph 'else': unknown attribute 'bogus'");
    qo_module_free(f.m);

    /* bodies of an erased If are detached garbage and not checked */
    f = make();
    ifn = add_if(&f, &tg, &eg);
    qo_node_set_attr_int(eg, eg->first, "bogus", 1);
    qo_node_erase(f.g, ifn);
    CHECK_EQ(verify(f.m), QO_OK);
    qo_module_free(f.m);
}

static void test_loop(void) {
    /* Loop(M = <omitted>, cond, v) with body (iter, cond_in, v_in) -> (cond_out, v_out) */
    fx f = make();
    qo_type tb = qo_type_tensor(f.m, QO_BOOL, 0, NULL, NULL);
    qo_type ti = qo_type_tensor(f.m, QO_I64, 0, NULL, NULL);
    qo_val cond = qo_graph_add_input(f.g, "cond", tb);
    qo_val lin[3] = {0, cond, f.y};
    qo_node lp = qo_node_new(f.g, QO_OP_LOOP, NULL, NULL, 3, lin, 1);
    qo_node_set_name(f.g, lp, "loop1");
    qo_val_set_name(f.g, qo_node_output(f.g, lp, 0), "final");
    qo_graph *b = qo_graph_new(f.m, f.g, lp, "body");
    qo_graph_add_input(b, "iter", ti);
    qo_val ci = qo_graph_add_input(b, "cond_in", tb);
    qo_val vi = qo_graph_add_input(b, "y", f.t); /* shadows main's y: allowed for inputs */
    qo_val w = qo_graph_add_capture(b, "w", f.t);
    qo_val ain[2] = {vi, w};
    qo_node ad = qo_node_new(b, QO_OP_ADD, NULL, NULL, 2, ain, 1);
    qo_node_set_name(b, ad, "body_add");
    qo_val_set_name(b, qo_node_output(b, ad, 0), "v_out");
    qo_node id = qo_node_new(b, QO_OP_IDENTITY, NULL, NULL, 1, &ci, 1);
    qo_val_set_name(b, qo_node_output(b, id, 0), "cond_out");
    qo_graph_add_output(b, qo_node_output(b, id, 0));
    qo_graph_add_output(b, qo_node_output(b, ad, 0));
    qo_attr a = {.name = qo_intern(f.m, "body"), .kind = QO_ATTR_GRAPH};
    a.u.g = b->index;
    qo_node_set_attr(f.g, lp, &a);
    CHECK_EQ(verify(f.m), QO_OK);
    if (d.n) qt_dump(&d);
    /* the variadic part may not hold omitted values? (ONNX only forbids omitted 'single' inputs) */
    qo_module_free(f.m);
}

static void test_max_errors(void) {
    fx f = make();
    for (int i = 0; i < 10; i++) {
        char nm[16];
        qo_node r = qo_node_new(f.g, QO_OP_RELU, NULL, NULL, 1, &f.x, 1);
        snprintf(nm, sizeof nm, "r%d", i);
        qo_node_set_name(f.g, r, nm);
        qo_node_set_attr_int(f.g, r, "bad", i);
    }
    qt_ctx(&cx, &d);
    CHECK_EQ(qo_verify(&cx, f.m), QO_ERR_VERIFY);
    CHECK_EQ(d.nerrors, 10); /* all reported, one per node, in program order */
    CHECK(qt_has(&d, "r0", "unknown attribute 'bad'"));
    CHECK(qt_has(&d, "r9", "unknown attribute 'bad'"));
    qt_ctx(&cx, &d);
    cx.max_errors = 3;
    CHECK_EQ(qo_verify(&cx, f.m), QO_ERR_VERIFY);
    CHECK_EQ(d.nerrors, 3);
    CHECK(d.n == 4 && d.kind[3] == QO_DIAG_NOTE);
    /* node locations carry the program-order index (for unnamed nodes) and the file */
    f.m->source_path = qo_intern(f.m, "model.onnx");
    qo_node_set_name(f.g, f.g->last, "");
    qt_ctx(&cx, &d);
    qo_verify(&cx, f.m);
    CHECK(qt_has(&d, "", "model.onnx: node #11 (Relu): verify: graph 'main': unknown attribute 'bad'"));
    qo_module_free(f.m);
}

int main(void) {
    RUN(test_valid);
    RUN(test_use_lists);
    RUN(test_definitions);
    RUN(test_dominance);
    RUN(test_order);
    RUN(test_arity);
    RUN(test_attributes);
    RUN(test_constants);
    RUN(test_names);
    RUN(test_subgraphs);
    RUN(test_loop);
    RUN(test_max_errors);
    return qt_finish();
}
