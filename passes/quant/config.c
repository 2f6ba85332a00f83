/* passes/quant/config.c — the quantization config: defaults (Brevitas v0.12 graph-mode PTQ), the
 * JSON file (json-c) and single-key overrides from the CLI. Format: docs/QUANT_CONFIG.md.
 *
 * json-c gives no positions for parsed values, so the line of a key in a message is found by
 * scanning the text for `"key" :` from where the previous key was found (json-c keeps an object's
 * keys in file order, and the keys are visited in that order). */
#include "passes/quant/config.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void qo_qconfig_default(qo_qconfig *c) {
    memset(c, 0, sizeof *c);
    bool ok = qo_qspec_preset("int8_weight_per_channel_float", &c->weights) &&
              qo_qspec_preset("int8_act_per_tensor_float", &c->acts) && qo_qspec_preset("int32_bias", &c->bias);
    QO_ASSERT(ok);
    c->input_quant = c->output_quant = c->layer_input_quant = c->relu_quant = true;
    c->align_residual = c->add_output_quant = true;
    c->carry = QO_QCARRY_BREVITAS;
}

void qo_qconfig_free(qo_qconfig *c) {
    for (uint32_t i = 0; i < c->nrules; i++) {
        qo_free(c->rules[i].op);
        qo_free(c->rules[i].name);
    }
    qo_free(c->rules);
    qo_free(c->source);
    c->rules = NULL;
    c->nrules = 0;
    c->source = NULL;
}

static qo_qrole key_role(const char *key) {
    return !strcmp(key, "weights") ? QO_QROLE_WEIGHT : !strcmp(key, "bias") ? QO_QROLE_BIAS : QO_QROLE_ACT;
}

static const char *const ROLE_WORD[] = {"a weight", "an activation", "a bias"};

qo_status qo_qconfig_parse_spec(qo_ctx *cx, const qo_loc *loc, const char *key, const char *text,
                                qo_qspec *out, bool *axis_set) {
    qo_qspec s;
    QO_TRY(qo_qspec_parse(cx, loc, text, &s));
    qo_qrole want = key_role(key);
    if (s.role != want)
        return qo_error(cx, QO_ERR_USAGE, loc, "'%s': quantizer '%s' is %s quantizer, not %s one", key, text,
                        ROLE_WORD[s.role % 3], ROLE_WORD[want]);
    const char *colon = strchr(text, ':');
    bool ax = false;
    for (const char *p = colon; p && *p; p++)
        if ((p[-1] == ':' || p[-1] == ',') && !strncmp(p, "axis=", 5)) ax = true;
    if (axis_set) *axis_set = ax;
    *out = s;
    return QO_OK;
}

static bool parse_bool_text(const char *v, bool *out) {
    if (!strcmp(v, "1") || !strcmp(v, "true")) *out = true;
    else if (!strcmp(v, "0") || !strcmp(v, "false")) *out = false;
    else return false;
    return true;
}

/* Boolean top-level keys and their fields. */
static bool *bool_field(qo_qconfig *c, const char *key) {
    if (!strcmp(key, "input_quant")) return &c->input_quant;
    if (!strcmp(key, "output_quant")) return &c->output_quant;
    if (!strcmp(key, "layer_input_quant")) return &c->layer_input_quant;
    if (!strcmp(key, "relu_quant")) return &c->relu_quant;
    if (!strcmp(key, "align_residual")) return &c->align_residual;
    if (!strcmp(key, "add_output_quant")) return &c->add_output_quant;
    if (!strcmp(key, "keep_first_last_8bit")) return &c->keep_first_last_8bit;
    return NULL;
}

static const char *const TOP_KEYS =
    "weights, acts, bias, input_quant, output_quant, layer_input_quant, relu_quant, align_residual, "
    "add_output_quant, keep_first_last_8bit, io_bits, carry, act_ops, rules";
static const char *const RULE_KEYS = "op, name, exclude, weights, acts, bias, bits";

static bool check_io_bits(int64_t b) { return b == 0 || (b >= 1 && b <= 16); }

qo_status qo_qconfig_set(qo_ctx *cx, qo_qconfig *c, const char *key, const char *value) {
    if (!strcmp(key, "weights") || !strcmp(key, "acts") || !strcmp(key, "bias")) {
        qo_qspec s;
        bool ax = false;
        QO_TRY(qo_qconfig_parse_spec(cx, NULL, key, value, &s, &ax));
        if (!strcmp(key, "weights")) {
            c->weights = s;
            c->weights_axis = ax;
        } else if (!strcmp(key, "acts")) c->acts = s;
        else c->bias = s;
        return QO_OK;
    }
    bool *bf = bool_field(c, key);
    if (bf) {
        if (!parse_bool_text(value, bf))
            return qo_error(cx, QO_ERR_USAGE, NULL, "quant config: '%s' takes true or false, not '%s'", key, value);
        return QO_OK;
    }
    if (!strcmp(key, "io_bits")) {
        char *end;
        long v = strtol(value, &end, 10);
        if (!*value || *end || !check_io_bits(v))
            return qo_error(cx, QO_ERR_USAGE, NULL, "quant config: io_bits=%s out of range (0 or 1..16)", value);
        c->io_bits = (int32_t)v;
        return QO_OK;
    }
    if (!strcmp(key, "carry")) {
        if (!strcmp(value, "brevitas")) c->carry = QO_QCARRY_BREVITAS;
        else if (!strcmp(value, "all")) c->carry = QO_QCARRY_ALL;
        else return qo_error(cx, QO_ERR_USAGE, NULL, "quant config: carry takes brevitas or all, not '%s'", value);
        return QO_OK;
    }
    if (!strcmp(key, "act_ops")) {
        if (!strcmp(value, "brevitas")) c->act_ops = QO_QACTOPS_BREVITAS;
        else if (!strcmp(value, "relu")) c->act_ops = QO_QACTOPS_RELU;
        else return qo_error(cx, QO_ERR_USAGE, NULL, "quant config: act_ops takes brevitas or relu, not '%s'", value);
        return QO_OK;
    }
    return qo_error(cx, QO_ERR_USAGE, NULL, "quant config: unknown key '%s' (known: %s)", key, TOP_KEYS);
}

/* ---- the JSON file ------------------------------------------------------------------------------ */
typedef struct jload {
    qo_ctx *cx;
    const char *path;
    const char *text;
    size_t pos;  /* scan position for key lines */
    uint32_t col; /* column of the last key found */
} jload;

static uint32_t line_at(const char *text, size_t off) {
    uint32_t line = 1;
    for (size_t i = 0; i < off && text[i]; i++) line += text[i] == '\n';
    return line;
}

/* Line of the next `"key"` followed by ':' from j->pos (advancing j->pos); 0 if not found. */
static uint32_t key_line(jload *j, const char *key) {
    size_t kl = strlen(key);
    for (const char *p = strstr(j->text + j->pos, "\""); p; p = strchr(p + 1, '"')) {
        if (strncmp(p + 1, key, kl) || p[1 + kl] != '"') continue;
        const char *q = p + 2 + kl;
        while (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n') q++;
        if (*q != ':') continue;
        j->pos = (size_t)(q - j->text);
        j->col = 1;
        for (const char *b = p; b > j->text && b[-1] != '\n'; b--) j->col++;
        return line_at(j->text, (size_t)(p - j->text));
    }
    return 0;
}

static qo_status jerr(jload *j, uint32_t line, const char *fmt, ...) QO_PRINTF(3, 4);
static qo_status jerr(jload *j, uint32_t line, const char *fmt, ...) {
    qo_loc loc = {.file = j->path, .line = line, .col = line ? j->col : 0, .node_index = -1};
    va_list ap;
    va_start(ap, fmt);
    qo_status s = qo_verror(j->cx, QO_ERR_USAGE, line ? &loc : &(qo_loc){.file = j->path, .node_index = -1}, fmt, ap);
    va_end(ap);
    return s;
}

static const char *jtype(json_object *v) { return json_type_to_name(json_object_get_type(v)); }

static qo_status get_spec(jload *j, uint32_t line, const char *key, json_object *v, qo_qspec *out, bool *ax) {
    if (!json_object_is_type(v, json_type_string))
        return jerr(j, line, "'%s' takes a quantizer spec string (e.g. \"%s\"), not %s", key,
                    !strcmp(key, "weights") ? "int8_weight_per_channel_float:bits=4" :
                    !strcmp(key, "bias") ? "int32_bias" : "int8_act_per_tensor_float", jtype(v));
    qo_loc loc = {.file = j->path, .line = line, .col = line ? j->col : 0, .node_index = -1};
    return qo_qconfig_parse_spec(j->cx, &loc, key, json_object_get_string(v), out, ax);
}

static qo_status get_bool(jload *j, uint32_t line, const char *key, json_object *v, bool *out) {
    if (!json_object_is_type(v, json_type_boolean))
        return jerr(j, line, "'%s' takes true or false, not %s", key, jtype(v));
    *out = json_object_get_boolean(v);
    return QO_OK;
}

static qo_status get_str(jload *j, uint32_t line, const char *key, json_object *v, char **out) {
    if (!json_object_is_type(v, json_type_string))
        return jerr(j, line, "'%s' takes a string, not %s", key, jtype(v));
    qo_free(*out);
    *out = qo_strdup(json_object_get_string(v));
    return QO_OK;
}

static qo_status load_rule(jload *j, uint32_t idx, json_object *o, qo_qrule *r) {
    /* the rule object starts at the next '{' (arrays of rules hold only objects when well-formed) */
    const char *brace = json_object_is_type(o, json_type_object) ? strchr(j->text + j->pos, '{') : NULL;
    if (brace) j->pos = (size_t)(brace - j->text);
    uint32_t rline = line_at(j->text, j->pos);
    j->col = 1;
    if (!json_object_is_type(o, json_type_object))
        return jerr(j, rline, "rules[%u] must be an object with keys %s, not %s", idx, RULE_KEYS, jtype(o));
    r->line = rline;
    json_object_object_foreach(o, key, v) {
        uint32_t line = key_line(j, key);
        if (!strcmp(key, "op")) QO_TRY(get_str(j, line, key, v, &r->op));
        else if (!strcmp(key, "name")) QO_TRY(get_str(j, line, key, v, &r->name));
        else if (!strcmp(key, "exclude")) QO_TRY(get_bool(j, line, key, v, &r->exclude));
        else if (!strcmp(key, "weights")) {
            QO_TRY(get_spec(j, line, key, v, &r->weights, &r->weights_axis));
            r->has_weights = true;
        } else if (!strcmp(key, "acts")) {
            QO_TRY(get_spec(j, line, key, v, &r->acts, NULL));
            r->has_acts = true;
        } else if (!strcmp(key, "bias")) {
            QO_TRY(get_spec(j, line, key, v, &r->bias, NULL));
            r->has_bias = true;
        } else if (!strcmp(key, "bits")) {
            if (!json_object_is_type(v, json_type_int))
                return jerr(j, line, "rules[%u]: 'bits' takes an integer, not %s", idx, jtype(v));
            int64_t b = json_object_get_int64(v);
            if (b < 1 || b > 16) return jerr(j, line, "rules[%u]: bits=%lld out of range 1..16", idx, (long long)b);
            r->bits = (int32_t)b;
        } else
            return jerr(j, line, "rules[%u]: unknown key '%s' (known: %s)", idx, key, RULE_KEYS);
    }
    j->col = 1;
    if (!r->op && !r->name)
        return jerr(j, rline, "rules[%u] matches nothing: give 'op' and/or 'name'", idx);
    return QO_OK;
}

static void rule_free(qo_qrule *r) {
    qo_free(r->op);
    qo_free(r->name);
}

static qo_status load_obj(jload *j, json_object *root, qo_qconfig *c) {
    if (!json_object_is_type(root, json_type_object))
        return jerr(j, 1, "a quant config is a JSON object with keys %s, not %s", TOP_KEYS, jtype(root));
    json_object_object_foreach(root, key, v) {
        uint32_t line = key_line(j, key);
        bool *bf = bool_field(c, key);
        if (bf) QO_TRY(get_bool(j, line, key, v, bf));
        else if (!strcmp(key, "weights")) QO_TRY(get_spec(j, line, key, v, &c->weights, &c->weights_axis));
        else if (!strcmp(key, "acts")) QO_TRY(get_spec(j, line, key, v, &c->acts, NULL));
        else if (!strcmp(key, "bias")) QO_TRY(get_spec(j, line, key, v, &c->bias, NULL));
        else if (!strcmp(key, "io_bits")) {
            if (!json_object_is_type(v, json_type_int)) return jerr(j, line, "'io_bits' takes an integer, not %s", jtype(v));
            int64_t b = json_object_get_int64(v);
            if (!check_io_bits(b)) return jerr(j, line, "io_bits=%lld out of range (0 or 1..16)", (long long)b);
            c->io_bits = (int32_t)b;
        } else if (!strcmp(key, "carry")) {
            const char *s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
            if (!strcmp(s, "brevitas")) c->carry = QO_QCARRY_BREVITAS;
            else if (!strcmp(s, "all")) c->carry = QO_QCARRY_ALL;
            else return jerr(j, line, "'carry' takes \"brevitas\" or \"all\"");
        } else if (!strcmp(key, "act_ops")) {
            const char *s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
            if (!strcmp(s, "brevitas")) c->act_ops = QO_QACTOPS_BREVITAS;
            else if (!strcmp(s, "relu")) c->act_ops = QO_QACTOPS_RELU;
            else return jerr(j, line, "'act_ops' takes \"brevitas\" or \"relu\"");
        } else if (!strcmp(key, "rules")) {
            if (!json_object_is_type(v, json_type_array))
                return jerr(j, line, "'rules' takes an array of objects, not %s", jtype(v));
            size_t n = json_object_array_length(v);
            for (size_t i = 0; i < n; i++) {
                qo_qrule r;
                memset(&r, 0, sizeof r);
                qo_status st = load_rule(j, (uint32_t)i, json_object_array_get_idx(v, i), &r);
                if (st != QO_OK) {
                    rule_free(&r);
                    return st;
                }
                uint32_t cap = c->nrules;
                QO_GROW(c->rules, cap, c->nrules + 1);
                c->rules[c->nrules++] = r;
            }
        } else
            return jerr(j, line, "unknown key '%s' (known: %s)", key, TOP_KEYS);
    }
    return QO_OK;
}

qo_status qo_qconfig_load(qo_ctx *cx, const char *path, qo_qconfig *c) {
    char *text;
    size_t len;
    QO_TRY(qo_read_file(cx, path, &text, &len));
    json_tokener *tok = json_tokener_new();
    json_object *root = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error e = json_tokener_get_error(tok);
    qo_status st = QO_OK;
    jload j = {.cx = cx, .path = path, .text = text};
    if (e != json_tokener_success || !root) {
        size_t off = json_tokener_get_parse_end(tok);
        uint32_t line = line_at(text, off), col = 1;
        for (size_t i = off; i > 0 && text[i - 1] != '\n'; i--) col++;
        qo_loc loc = {.file = path, .line = line, .col = col, .node_index = -1};
        st = qo_error(cx, QO_ERR_USAGE, &loc, "malformed JSON: %s",
                      e == json_tokener_success || e == json_tokener_continue ? "unexpected end of file"
                                                                              : json_tokener_error_desc(e));
    } else {
        size_t end = json_tokener_get_parse_end(tok);
        while (end < len && (text[end] == ' ' || text[end] == '\n' || text[end] == '\t' || text[end] == '\r')) end++;
        if (end < len) {
            qo_loc loc = {.file = path, .line = line_at(text, end), .col = 1, .node_index = -1};
            st = qo_error(cx, QO_ERR_USAGE, &loc, "malformed JSON: text after the config object");
        }
    }
    if (st == QO_OK) {
        /* work on a copy so that c is unchanged on error */
        qo_qconfig tmp = *c;
        tmp.rules = NULL;
        tmp.nrules = 0;
        tmp.source = NULL;
        st = load_obj(&j, root, &tmp);
        if (st == QO_OK) {
            uint32_t cap = c->nrules;
            if (tmp.nrules) QO_GROW(c->rules, cap, c->nrules + tmp.nrules);
            for (uint32_t i = 0; i < tmp.nrules; i++) c->rules[c->nrules + i] = tmp.rules[i];
            uint32_t total = c->nrules + tmp.nrules;
            qo_qrule *rules = c->rules;
            char *src = c->source;
            qo_free(tmp.rules);
            *c = tmp;
            c->rules = rules;
            c->nrules = total;
            qo_free(src);
            c->source = qo_strdup(path);
        } else {
            qo_qconfig_free(&tmp);
        }
    }
    json_object_put(root);
    json_tokener_free(tok);
    qo_free(text);
    return st;
}
