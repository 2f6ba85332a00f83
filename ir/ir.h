/* ir/ir.h — qopt's SSA IR: module, graphs, values, nodes, uses, types, constants, attributes.
 *
 * Shape of the data (see docs/ARCHITECTURE.md):
 *   qo_module  owns an arena, the atom (interned string) table, the uniqued type table, the constant
 *              pool, ONNX model metadata and a list of graphs: graph 0 is the main graph, the others are
 *              If/Loop/Scan bodies referenced by GRAPH attributes.
 *   qo_graph   owns three tables addressed by 32-bit ids (id 0 is reserved as "none" in each):
 *              values (qo_value), nodes (qo_nodedata), uses (qo_use). Ids are stable under growth and
 *              deletion; dead entries are flagged, never reused.
 *   value      defined exactly once: by a node result, as a graph input, as a constant (initializer),
 *              or as a capture of an enclosing graph's value (If/Loop bodies reading outer names).
 *   use        one operand slot: node input slot (owner = node) or graph output slot (owner = 0).
 *              Every value keeps a doubly linked list of its uses; change slots only through
 *              qo_set_input()/qo_replace_all_uses(), never by writing use->val.
 *   node       op + ONNX domain/op_type/name; contiguous input use slots; output value ids (0 = an
 *              omitted optional output); attributes sorted by name; prev/next in program order,
 *              which is kept topological.
 *   type       uniqued, so equality is id equality; tensor types carry element kind, rank, dims with
 *              optional symbolic names, and an optional QuantTensor descriptor (qo_quant).
 *   constant   a pool entry: tensor type + raw little-endian bytes in ONNX raw_data layout, either
 *              owned by the module or borrowed from a mapped file (weights are never copied needlessly).
 */
#ifndef QOPT_IR_IR_H
#define QOPT_IR_IR_H

#include "base.h"

#include <stdio.h>

typedef uint32_t qo_atom; /* interned string id; 0 = "" / none */
typedef uint32_t qo_type; /* index into module type table; 0 = unknown type */
typedef uint32_t qo_cref; /* index into module constant pool; 0 = none */
typedef uint32_t qo_val;  /* index into graph value table; 0 = none */
typedef uint32_t qo_node; /* index into graph node table; 0 = none */
typedef uint32_t qo_use_id; /* index into graph use table; 0 = none */

typedef struct qo_module qo_module;
typedef struct qo_graph qo_graph;

/* ---- the op table ----------------------------------------------------------------------------- */
enum { D_ONNX = 1, D_QONNX = 2, D_TRAIN = 3 }; /* D_TRAIN: qopt's private "ai.qopt.train" (autodiff) */
enum {
    F_EW = 1 << 0,
    F_UNARY = 1 << 1,
    F_CMP = 1 << 2,
    F_SHAPE = 1 << 3,
    F_HEAVY = 1 << 4,
    F_CTRL = 1 << 5,
    F_RAND = 1 << 6,
    F_QUANT = 1 << 7,
    F_SEQ = 1 << 8
};

typedef enum qo_op {
    QO_OP_UNKNOWN = 0, /* any op not in ops.def: kept by domain + op_type ("generic form") */
#define QO_OP(e, name, dom, imin, imax, omin, omax, flags) QO_OP_##e,
#include "ops.def"
#undef QO_OP
    QO_OP_COUNT
} qo_op;

typedef struct qo_opinfo {
    const char *name; /* ONNX op_type */
    int dom;          /* D_ONNX, D_QONNX or D_TRAIN */
    int imin, imax;   /* imax -1 = variadic */
    int omin, omax;   /* omax -1 = variadic */
    unsigned flags;
} qo_opinfo;

/* Table row for op (QO_OP_UNKNOWN has name "" and no bounds). */
const qo_opinfo *qo_op_info(qo_op op);
/* Maps (domain, op_type) to an op; domain "" and "ai.onnx" are the default domain; the QONNX domains
 * (see qo_domain_is_qonnx) map the Quant/BipolarQuant/Trunc ops. Returns QO_OP_UNKNOWN otherwise. */
qo_op qo_op_lookup(const char *domain, const char *op_type);
/* True for "qonnx.custom_op.general", "onnx.brevitas", "finn.custom_op.general" and qonnx's
 * sub-domains of those ("qonnx.custom_op.general.*"). */
bool qo_domain_is_qonnx(const char *domain);

/* ---- element types (codes equal ONNX TensorProto.DataType) ------------------------------------ */
typedef enum qo_elem {
    QO_UNDEF = 0, QO_F32 = 1, QO_U8 = 2, QO_I8 = 3, QO_U16 = 4, QO_I16 = 5, QO_I32 = 6, QO_I64 = 7,
    QO_STR = 8, QO_BOOL = 9, QO_F16 = 10, QO_F64 = 11, QO_U32 = 12, QO_U64 = 13, QO_C64 = 14,
    QO_C128 = 15, QO_BF16 = 16, QO_F8E4M3FN = 17, QO_F8E4M3FNUZ = 18, QO_F8E5M2 = 19,
    QO_F8E5M2FNUZ = 20, QO_U4 = 21, QO_I4 = 22, QO_F4E2M1 = 23,
    QO_ELEM_COUNT
} qo_elem;

/* Short text name used by the .qir syntax: f32 u8 i8 u16 i16 i32 i64 str bool f16 f64 u32 u64 c64 c128
 * bf16 f8e4m3fn f8e4m3fnuz f8e5m2 f8e5m2fnuz u4 i4 f4e2m1. NULL for codes out of range. */
const char *qo_elem_name(int e);
/* Inverse of qo_elem_name over n bytes; QO_UNDEF if unknown. */
qo_elem qo_elem_from_name(const char *s, size_t n);
/* Storage bits per element in raw_data layout (4 for int4/uint4/f4, 1 byte for bool, 0 for strings
 * and unknown codes). */
int qo_elem_bits(int e);
/* Bytes needed to store n elements (packed 4-bit types round up); 0 for strings. */
size_t qo_elem_storage(int e, int64_t n);

/* ---- QuantTensor metadata ------------------------------------------------------------------- */
/* Rounding modes: exact meanings in shared/REFERENCE.md §3.1 and §4.1. */
typedef enum qo_round {
    QO_ROUND_HALF_EVEN = 0, /* qonnx ROUND, ONNX QuantizeLinear, torch.round */
    QO_ROUND_HALF_UP,       /* qonnx HALF_UP: ties away from zero */
    QO_ROUND_HALF_DOWN,     /* qonnx HALF_DOWN: ties toward zero */
    QO_ROUND_CEIL,
    QO_ROUND_FLOOR,
    QO_ROUND_UP,            /* away from zero */
    QO_ROUND_DOWN,          /* toward zero (np.fix) */
    QO_ROUND_HALF_POS_INF,  /* Vitis AI half_up: all ties toward +inf */
    QO_ROUND_DPU,           /* Brevitas dpu_round: negative ties toward +inf, positive ties to even */
    QO_ROUND_COUNT
} qo_round;
/* Lower-case names: "half_even" "half_up" "half_down" "ceil" "floor" "up" "down" "half_pos_inf" "dpu". */
const char *qo_round_name(qo_round r);
/* Parses the names above, case-insensitive, plus qonnx's "ROUND" (= half_even). -1 if unknown. */
int qo_round_from_name(const char *s);

typedef struct qo_quant {
    uint8_t bits;      /* 1..32 */
    uint8_t is_signed; /* two's complement range when set */
    uint8_t narrow;    /* signed: drop -2^(b-1); unsigned: drop 2^b-1 (qonnx) */
    uint8_t round;     /* qo_round */
    uint8_t per_axis;  /* scales/zps in the constant pool along `axis` */
    uint8_t pow2;      /* scale restricted to a power of two (DPU fixed point) */
    int16_t axis;      /* channel axis when per_axis */
    float scale;       /* per-tensor scale */
    int32_t zp;        /* per-tensor zero point (integer domain) */
    qo_cref scales;    /* per-axis: f32 vector, one entry per channel */
    qo_cref zps;       /* per-axis: i32 vector, or 0 for all-zero */
} qo_quant;

/* ---- types ---------------------------------------------------------------------------------- */
typedef enum qo_type_kind {
    QO_TY_TENSOR = 1,
    QO_TY_SEQUENCE,
    QO_TY_OPTIONAL,
    QO_TY_MAP,
    QO_TY_SPARSE_TENSOR
} qo_type_kind;

typedef struct qo_typedata {
    uint8_t kind;        /* qo_type_kind */
    uint8_t elem;        /* qo_elem for tensors; key elem for maps */
    int32_t rank;        /* -1 = unknown rank */
    const int64_t *dims; /* rank entries; -1 = unknown extent */
    const qo_atom *syms; /* rank entries (symbolic dim names, 0 = none), or NULL if no dim is symbolic */
    qo_type inner;       /* sequence/optional element type, map value type */
    const qo_quant *quant; /* NULL for plain float/int tensors */
} qo_typedata;

/* Uniqued constructors: equal arguments give equal ids. dims/syms are copied; syms may be NULL. */
qo_type qo_type_tensor(qo_module *m, qo_elem e, int32_t rank, const int64_t *dims,
                       const qo_atom *syms);
qo_type qo_type_sparse(qo_module *m, qo_elem e, int32_t rank, const int64_t *dims,
                       const qo_atom *syms);
qo_type qo_type_sequence(qo_module *m, qo_type inner);
qo_type qo_type_optional(qo_module *m, qo_type inner);
qo_type qo_type_map(qo_module *m, qo_elem key, qo_type value);
/* The tensor type t with quant descriptor q attached (q == NULL removes it). */
qo_type qo_type_with_quant(qo_module *m, qo_type t, const qo_quant *q);
/* Lookup; NULL for id 0 (unknown type). The pointer stays valid for the module's life. */
const qo_typedata *qo_type_get(const qo_module *m, qo_type t);
/* Number of elements of a static tensor type, -1 if unknown or not a tensor. */
int64_t qo_type_numel(const qo_module *m, qo_type t);
/* Element kind of a tensor type, QO_UNDEF otherwise. */
qo_elem qo_type_elem(const qo_module *m, qo_type t);

/* ---- constant pool -------------------------------------------------------------------------- */
enum {
    QO_CONST_OWNED = 0,    /* data allocated by the module */
    QO_CONST_BORROWED = 1, /* data points into a mapping the module keeps alive */
};
typedef struct qo_constdata {
    qo_type type;      /* static tensor type */
    const void *data;  /* raw little-endian bytes (ONNX raw_data layout); for QO_STR a qo_bytes[] */
    size_t nbytes;     /* for QO_STR: number of elements * sizeof(qo_bytes) */
    uint8_t storage;   /* QO_CONST_OWNED / QO_CONST_BORROWED */
    qo_atom ext_location; /* ONNX external-data origin (location as written), 0 if inline */
    int64_t ext_offset, ext_length;
    qo_atom file;      /* BORROWED: path of the file the bytes live in (as opened), else 0 */
    uint64_t file_offset; /* BORROWED: byte offset of data within `file` */
} qo_constdata;

/* Adds a constant. With copy=true the bytes are copied into module memory; otherwise `data` must
 * stay valid for the module's life (a mapping registered with qo_module_add_mapping). For QO_STR the
 * qo_bytes array and the strings it points to are always copied. The caller guarantees
 * nbytes == qo_elem_storage(elem, numel) (the frontend checks it on input). */
qo_cref qo_const_new(qo_module *m, qo_type type, const void *data, size_t nbytes, bool copy);
const qo_constdata *qo_const_get(const qo_module *m, qo_cref c); /* valid for the module's life */
/* Mutable access for the frontend (to record external-data origin). */
qo_constdata *qo_const_get_mut(qo_module *m, qo_cref c);

/* ---- attributes ----------------------------------------------------------------------------- */
/* Kinds equal ONNX AttributeProto.AttributeType codes. */
typedef enum qo_attr_kind {
    QO_ATTR_UNDEF = 0, QO_ATTR_FLOAT = 1, QO_ATTR_INT = 2, QO_ATTR_STRING = 3, QO_ATTR_TENSOR = 4,
    QO_ATTR_GRAPH = 5, QO_ATTR_FLOATS = 6, QO_ATTR_INTS = 7, QO_ATTR_STRINGS = 8,
    QO_ATTR_TENSORS = 9, QO_ATTR_GRAPHS = 10, QO_ATTR_SPARSE_TENSOR = 11,
    QO_ATTR_SPARSE_TENSORS = 12, QO_ATTR_TYPE_PROTO = 13, QO_ATTR_TYPE_PROTOS = 14
} qo_attr_kind;
const char *qo_attr_kind_name(int k); /* "float" "int" "string" "tensor" "graph" "floats" ... */

typedef struct qo_attr {
    qo_atom name;
    uint8_t kind;  /* qo_attr_kind */
    uint32_t n;    /* element count for list kinds */
    union {
        float f;
        int64_t i;
        qo_bytes s;
        qo_cref t;
        uint32_t g;        /* graph index in the module */
        const float *fs;
        const int64_t *is;
        const qo_bytes *ss;
        const qo_cref *ts;
        const uint32_t *gs;
        qo_bytes raw;      /* SPARSE_TENSOR(S)/TYPE_PROTO(S): serialized protobuf, carried opaque */
    } u;
    qo_atom ref_attr_name; /* ONNX function attribute reference, 0 if none */
    qo_atom doc;
} qo_attr;

/* ---- values, uses, nodes -------------------------------------------------------------------- */
enum {
    QO_VAL_INPUT = 1 << 0,   /* graph input (g->inputs lists it) */
    QO_VAL_CONST = 1 << 1,   /* initializer: cref holds the data (an INPUT may also have a cref: default) */
    QO_VAL_CAPTURE = 1 << 2, /* subgraph reference to an enclosing graph's value, resolved by name */
    QO_VAL_DEAD = 1 << 3,    /* erased; id never reused */
    QO_VAL_INFO = 1 << 4,    /* came with an ONNX value_info entry (written back as value_info) */
};

typedef struct qo_value {
    qo_type type;
    qo_node def;       /* defining node, 0 for inputs/consts/captures */
    uint16_t res;      /* result index within def */
    uint16_t flags;    /* QO_VAL_* */
    qo_atom name;      /* ONNX tensor name; 0 = anonymous (printer numbers it) */
    qo_cref cref;      /* constant data for QO_VAL_CONST (or default of an INPUT) */
    qo_use_id first_use; /* head of the use list */
    uint32_t nuses;
    qo_atom doc;       /* value_info / initializer doc_string */
} qo_value;

typedef struct qo_use {
    qo_val val;        /* value read in this slot, 0 = omitted optional input */
    qo_node owner;     /* node owning the slot; 0 for a graph output slot */
    qo_use_id next, prev; /* links in val's use list */
} qo_use;

enum { QO_NODE_DEAD = 1 << 0 };

typedef struct qo_nodedata {
    uint16_t op;      /* qo_op */
    uint16_t flags;   /* QO_NODE_* */
    qo_atom domain;   /* as written in the model ("" for the default domain) */
    qo_atom op_type;  /* as written in the model */
    qo_atom name;     /* ONNX node name (the node's location) */
    qo_atom doc;
    uint32_t in0, nin;   /* input slots: g->uses[in0 .. in0+nin) */
    uint32_t out0, nout; /* outputs: g->outs[out0 .. out0+nout), entries 0 = omitted output */
    uint32_t attr0, nattr; /* attributes: g->attrs[attr0 .. attr0+nattr), sorted by name string */
    qo_node prev, next;  /* program order */
    uint32_t line, col;  /* text location when parsed from .qir, else 0 */
} qo_nodedata;

struct qo_graph {
    qo_module *m;
    uint32_t index;      /* position in m->graphs */
    uint32_t parent;     /* index of the enclosing graph; == index for the main graph */
    qo_node parent_node; /* node (in the parent graph) whose attribute holds this body; 0 for main */
    qo_atom name, doc;

    qo_value *vals;    uint32_t nvals, capvals;
    qo_nodedata *nodes; uint32_t nnodes, capnodes;
    qo_use *uses;      uint32_t nuses, capuses;
    qo_val *outs;      uint32_t nouts, capouts;   /* node output lists */
    qo_attr *attrs;    uint32_t nattrs, capattrs; /* node attribute slices */

    qo_val *inputs;    uint32_t ninputs, capinputs;   /* graph inputs in order */
    qo_use_id *outputs; uint32_t noutputs, capoutputs; /* graph output use slots in order */
    qo_val *consts;    uint32_t nconsts, capconsts;   /* initializer values in order */
    qo_val *captures;  uint32_t ncaptures, capcaptures;

    qo_node first, last; /* program order list */
    qo_node insert_before; /* builder insertion point: 0 = append at end */
};

typedef struct qo_opset { qo_atom domain; int64_t version; } qo_opset;
typedef struct qo_prop { qo_atom key, value; } qo_prop;

struct qo_module {
    qo_arena arena;      /* atoms, type payloads, attribute payloads, owned constants */

    /* atoms */
    char **atom_str;  uint32_t *atom_len; uint32_t natoms, capatoms;
    uint32_t *atom_hash; uint32_t atom_hcap; /* open addressing: slot -> atom id (0 empty) */

    /* types: entries are arena-allocated, so a qo_type_get pointer stays valid for the module's
     * life even when later calls intern new types */
    qo_typedata **types; uint32_t ntypes, captypes;
    uint32_t *type_hash; uint32_t type_hcap;

    /* constants: arena-allocated entries, so qo_const_get pointers survive qo_const_new */
    qo_constdata **consts; uint32_t nconsts, capconsts;

    /* graphs: graphs[0] is the main graph */
    qo_graph **graphs; uint32_t ngraphs, capgraphs;

    /* ONNX ModelProto metadata */
    int64_t ir_version;
    qo_atom producer_name, producer_version, domain, doc;
    int64_t model_version;
    qo_opset *opsets; uint32_t nopsets, capopsets;
    qo_prop *props;   uint32_t nprops, capprops;
    qo_bytes *functions; uint32_t nfunctions, capfunctions; /* serialized FunctionProto, opaque */

    /* file mappings kept alive for borrowed constants */
    struct qo_mapping { void *p; size_t n; } *maps; uint32_t nmaps, capmaps;
    qo_atom source_path; /* file the module was loaded from, 0 if built in memory */
};

/* ---- module --------------------------------------------------------------------------------- */
/* A new empty module (no graphs, ir_version 8). Free with qo_module_free. */
qo_module *qo_module_new(void);
/* Frees everything the module owns, including registered mappings (munmap). NULL is fine. */
void qo_module_free(qo_module *m);
/* Registers an mmap'd region to be munmap'd by qo_module_free. */
void qo_module_add_mapping(qo_module *m, void *p, size_t n);
/* Default-domain opset version, or 0 if not imported. */
int64_t qo_module_opset(const qo_module *m, const char *domain);
/* Sets (or adds) the opset version for a domain. */
void qo_module_set_opset(qo_module *m, const char *domain, int64_t version);
/* Main graph (graphs[0]); NULL if none. */
qo_graph *qo_module_main(const qo_module *m);

/* ---- atoms ---------------------------------------------------------------------------------- */
/* Interns n bytes (may contain NULs, though names never do). Atom 0 is "". */
qo_atom qo_intern_n(qo_module *m, const char *s, size_t n);
qo_atom qo_intern(qo_module *m, const char *s);
/* NUL-terminated text of an atom; "" for 0. Valid for the module's life. */
const char *qo_str(const qo_module *m, qo_atom a);
size_t qo_strlen(const qo_module *m, qo_atom a);

/* ---- graphs --------------------------------------------------------------------------------- */
/* Creates a graph. parent == NULL makes it a top-level graph (the first one created is the main
 * graph); otherwise it is a body of node `parent_node` of graph `parent`. */
qo_graph *qo_graph_new(qo_module *m, qo_graph *parent, qo_node parent_node, const char *name);
/* Appends a graph input. */
qo_val qo_graph_add_input(qo_graph *g, const char *name, qo_type t);
/* Adds an initializer value holding constant c (type taken from the constant). */
qo_val qo_graph_add_const(qo_graph *g, const char *name, qo_cref c);
/* Adds a capture of an enclosing graph's value named `name`. */
qo_val qo_graph_add_capture(qo_graph *g, const char *name, qo_type t);
/* Appends a graph output slot reading v. Returns the use id. */
qo_use_id qo_graph_add_output(qo_graph *g, qo_val v);
/* Value read by graph output i. */
qo_val qo_graph_output(const qo_graph *g, uint32_t i);
/* Removes graph input i (its value becomes an unused non-input; caller decides what to do with it). */
void qo_graph_remove_input(qo_graph *g, uint32_t i);
/* Removes v from the initializer list (used when a constant value is erased). */
void qo_graph_remove_const(qo_graph *g, qo_val v);
/* Finds a live value by ONNX name, 0 if none. Linear scan; passes should not need it. */
qo_val qo_graph_find(const qo_graph *g, const char *name);

/* ---- values --------------------------------------------------------------------------------- */
static inline qo_value *qo_val_get(const qo_graph *g, qo_val v) { return &g->vals[v]; }
void qo_val_set_name(qo_graph *g, qo_val v, const char *name);
const char *qo_val_name(const qo_graph *g, qo_val v); /* "" if anonymous */
/* True if v has exactly one use. */
bool qo_val_has_one_use(const qo_graph *g, qo_val v);
/* Replaces every use of `from` (node inputs and graph outputs) by `to`. */
void qo_replace_all_uses(qo_graph *g, qo_val from, qo_val to);
/* Marks a value with no uses and no defining node (constant, capture) dead. */
void qo_val_erase(qo_graph *g, qo_val v);

/* ---- nodes ---------------------------------------------------------------------------------- */
/* Creates a node at the insertion point (g->insert_before, 0 = end of program order) reading `ins`
 * (entries may be 0 for omitted optional inputs) with nout fresh anonymous results. domain/op_type
 * NULL take the op table's values (op must not be QO_OP_UNKNOWN then). */
qo_node qo_node_new(qo_graph *g, qo_op op, const char *domain, const char *op_type,
                    uint32_t nin, const qo_val *ins, uint32_t nout);
static inline qo_nodedata *qo_node_get(const qo_graph *g, qo_node n) { return &g->nodes[n]; }
/* Input i of n (0 if omitted); output i of n (0 if omitted). */
qo_val qo_node_input(const qo_graph *g, qo_node n, uint32_t i);
qo_val qo_node_output(const qo_graph *g, qo_node n, uint32_t i);
/* Use id of input slot i of n. */
static inline qo_use_id qo_node_use(const qo_graph *g, qo_node n, uint32_t i) { return g->nodes[n].in0 + i; }
/* Points use slot u at v (0 = omitted), keeping use lists right. */
void qo_set_input(qo_graph *g, qo_use_id u, qo_val v);
/* Changes the number of input slots of n (new slots are omitted inputs; dropped slots are unlinked). */
void qo_node_set_num_inputs(qo_graph *g, qo_node n, uint32_t nin);
/* Marks output i of n omitted (the value must be unused; it is erased). */
void qo_node_drop_output(qo_graph *g, qo_node n, uint32_t i);
/* Erases n: unlinks its inputs, marks it and its results dead. Its results must have no uses. */
void qo_node_erase(qo_graph *g, qo_node n);
/* Moves n right before `before` (0 = to the end). */
void qo_node_move_before(qo_graph *g, qo_node n, qo_node before);
void qo_node_set_name(qo_graph *g, qo_node n, const char *name);
const char *qo_node_name(const qo_graph *g, qo_node n);
const char *qo_node_op_type(const qo_graph *g, qo_node n);
const char *qo_node_domain(const qo_graph *g, qo_node n);
/* Location of n for diagnostics (file from m->source_path; node name, op, index). */
qo_loc qo_node_loc(const qo_graph *g, qo_node n);

/* ---- attributes on nodes -------------------------------------------------------------------- */
/* The attribute named `name`, or NULL. */
const qo_attr *qo_node_attr(const qo_graph *g, qo_node n, const char *name);
/* Adds or replaces an attribute (a->name must be set; payload pointers are copied into the module
 * arena, including list arrays and string bytes). */
void qo_node_set_attr(qo_graph *g, qo_node n, const qo_attr *a);
/* Removes an attribute if present; returns whether it was. */
bool qo_node_remove_attr(qo_graph *g, qo_node n, const char *name);
/* Convenience getters with defaults (kind mismatch returns the default too). */
int64_t qo_attr_int(const qo_graph *g, qo_node n, const char *name, int64_t dflt);
float qo_attr_float(const qo_graph *g, qo_node n, const char *name, float dflt);
/* Convenience setters. */
void qo_node_set_attr_int(qo_graph *g, qo_node n, const char *name, int64_t v);
void qo_node_set_attr_float(qo_graph *g, qo_node n, const char *name, float v);
void qo_node_set_attr_ints(qo_graph *g, qo_node n, const char *name, const int64_t *v, uint32_t cnt);
void qo_node_set_attr_string(qo_graph *g, qo_node n, const char *name, const char *s, size_t len);

/* ---- order ---------------------------------------------------------------------------------- */
/* Re-sorts program order topologically (stable: keeps the current order where it is valid).
 * Reports a cycle (naming a node on it) as QO_ERR_INVALID_MODEL. */
qo_status qo_graph_toposort(qo_ctx *cx, qo_graph *g);
/* Number of live nodes. */
uint32_t qo_graph_num_nodes(const qo_graph *g);

#define QO_FOR_EACH_NODE(g, n) for (qo_node n = (g)->first; n; n = (g)->nodes[n].next)
#define QO_FOR_EACH_USE(g, v, u) for (qo_use_id u = (g)->vals[v].first_use; u; u = (g)->uses[u].next)

/* ---- verifier (ir/verify.c) ----------------------------------------------------------------- */
/* Checks every graph: use lists (rebuilt from scratch and compared), single definition, dominance in
 * program order, op arity from the op table, attribute kinds and required attributes (ir/attrs.def),
 * captures resolving to an enclosing graph, constant sizes, unique value names. Reports every problem
 * (up to cx->max_errors) naming graph, node and op; returns QO_ERR_VERIFY if any. */
qo_status qo_verify(qo_ctx *cx, const qo_module *m);

/* ---- text form (ir/print.c, ir/parse.c; grammar in docs/qir.md) ---------------------------- */
typedef struct qo_print_opts {
    bool hex_floats;    /* print float attributes as C99 %a instead of shortest round-trip decimal */
    bool inline_all;    /* print every constant's bytes inline, even those with a file origin */
    size_t elide_bytes; /* >0: constants above this size print as `elided<N bytes>` (for humans; such
                           text does not parse back) */
    bool no_locs;       /* omit loc("...") suffixes */
} qo_print_opts;
/* Prints the module in canonical .qir form. opts may be NULL (defaults: constants with a file origin
 * (borrowed from a mapped .onnx or external-data file) and larger than 64 bytes print as
 * file("path", offset=N, length=L) references, all others inline; nothing elided). */
qo_status qo_print_module(qo_ctx *cx, const qo_module *m, FILE *out, const qo_print_opts *opts);
/* Same, into a malloc'd NUL-terminated string. */
qo_status qo_print_module_str(qo_ctx *cx, const qo_module *m, const qo_print_opts *opts, char **out);
/* Parses .qir text (path is used for diagnostics and to resolve file(...) constant references).
 * Reports every syntax error with file:line:col and a caret line. On success *out owns a module. */
qo_status qo_parse_module(qo_ctx *cx, const char *path, const char *text, size_t len, qo_module **out);

#endif
