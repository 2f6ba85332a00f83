#!/usr/bin/python3
"""tests/unit/gen_invalid.py — writes tests/unit/invalid/*.onnx: small models that are each invalid in
exactly one way, and invalid/expect.txt. Every model is checked here to be rejected by onnx.checker
(the oracle); test_invalid_models.c requires qopt (loader + qo_verify) to reject it too, with the
expected words. Run with /usr/bin/python3 (python3-onnx); the outputs are committed."""
import os
import onnx
from onnx import TensorProto as TP, helper as h

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'invalid')


def model(nodes, opset=13, inputs=None, outputs=None, inits=()):
    inputs = inputs or [h.make_tensor_value_info('x', TP.FLOAT, [2, 3])]
    outputs = outputs or [h.make_tensor_value_info('y', TP.FLOAT, None)]
    g = h.make_graph(nodes, 'g', inputs, outputs, initializer=list(inits))
    return h.make_model(g, opset_imports=[h.make_opsetid('', opset)], producer_name='gen_invalid')


def branch(name, node_out):
    n = h.make_node('Neg', ['x'], [node_out], name=name + '_neg')
    return h.make_graph([n], name, [], [h.make_tensor_value_info(node_out, TP.FLOAT, None)])


W = h.make_tensor('w', TP.FLOAT, [1, 3, 1, 1], [1, 2, 3])
CASES = [
    # (file, model, words expected in qopt's diagnostic)
    ('unknown_attr', model([h.make_node('Relu', ['x'], ['y'], name='r', foo=1)]),
     "node 'r' (Relu): verify: graph 'g': unknown attribute 'foo' for Relu at opset 13"),
    ('attr_kind', model([h.make_node('Gemm', ['x', 'x'], ['y'], name='gm', alpha=2)]),
     "node 'gm' (Gemm): verify: graph 'g': attribute 'alpha' has kind int, expected float"),
    ('missing_required_attr', model([h.make_node('Cast', ['x'], ['y'], name='c')]),
     "node 'c' (Cast): verify: graph 'g': required attribute 'to' of Cast is missing"),
    ('removed_attr', model([h.make_node('ReduceSum', ['x'], ['y'], name='rs', axes=[1])]),
     "node 'rs' (ReduceSum): verify: graph 'g': unknown attribute 'axes' for ReduceSum at opset 13"),
    ('too_many_inputs', model([h.make_node('Relu', ['x', 'x'], ['y'], name='r2')]),
     "node 'r2' (Relu): verify: graph 'g': Relu takes 1 to 1 inputs, node has 2"),
    ('clip6_inputs', model([h.make_node('Clip', ['x', 'x'], ['y'], name='cl')], opset=10),
     "node 'cl' (Clip): verify: graph 'g': Clip-6 takes 1 to 1 inputs, node has 2"),
    ('empty_required_input', model([h.make_node('Conv', ['x', ''], ['y'], name='cv')]),
     "node 'cv' (Conv): verify: graph 'g': required input 1 of Conv is omitted"),
    ('deprecated_op', model([h.make_node('Upsample', ['x', 's'], ['y'], name='up')], opset=10,
                            inits=[h.make_tensor('s', TP.FLOAT, [2], [1, 2])]),
     "node 'up' (Upsample): verify: graph 'g': Upsample is deprecated at opset 10"),
    ('ssa_dup_output', model([h.make_node('Relu', ['x'], ['y'], name='a'), h.make_node('Neg', ['x'], ['y'], name='b')]),
     "'y'"),
    ('ssa_output_is_input', model([h.make_node('Relu', ['x'], ['x'], name='rx')],
                                  outputs=[h.make_tensor_value_info('x', TP.FLOAT, None)]),
     "'x'"),
    ('subgraph_shadow', model([h.make_node('Identity', ['x'], ['t'], name='id'),
                               h.make_node('If', ['c'], ['y'], name='if1', then_branch=branch('then', 't'),
                                           else_branch=branch('else', 'e'))],
                              inputs=[h.make_tensor_value_info('x', TP.FLOAT, [2, 3]),
                                      h.make_tensor_value_info('c', TP.BOOL, [])]),
     "node 'then_neg' (Neg): verify: graph 'then': output name 't' is already defined in enclosing graph 'g'"),
    ('if_missing_branch', model([h.make_node('If', ['c'], ['y'], name='if2', then_branch=branch('then', 't'))],
                                inputs=[h.make_tensor_value_info('x', TP.FLOAT, [2, 3]),
                                        h.make_tensor_value_info('c', TP.BOOL, [])]),
     "node 'if2' (If): verify: graph 'g': required attribute 'else_branch' of If is missing"),
    ('too_many_outputs', model([h.make_node('Relu', ['x'], ['y', 'z'], name='r3')]),
     "node 'r3' (Relu): verify: graph 'g': Relu has 1 to 1 outputs, node has 2"),
]


def main():
    os.makedirs(OUT, exist_ok=True)
    lines = ['# file<TAB>words qopt must report (tests/unit/gen_invalid.py)']
    for name, m, words in CASES:
        try:
            onnx.checker.check_model(m)
            raise SystemExit('onnx.checker accepts %s: not an invalid case' % name)
        except onnx.checker.ValidationError as e:
            pass
        onnx.save(m, os.path.join(OUT, name + '.onnx'))
        lines.append('%s.onnx\t%s' % (name, words))
    with open(os.path.join(OUT, 'expect.txt'), 'w') as f:
        f.write('\n'.join(lines) + '\n')


if __name__ == '__main__':
    main()
