//! The rewrite rule on hand-built graphs: pure protobuf, no ONNX Runtime.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on broken setup

mod common;

use common::*;
use prost::Message;
use vigil_model::onnx::tensor_proto::DataType;
use vigil_model::{decode_model, make_batch_dynamic, ModelError, BATCH_PARAM};

fn rewrite(
    m: &vigil_model::onnx::ModelProto,
) -> (vigil_model::onnx::ModelProto, vigil_model::RewriteStats) {
    let (bytes, stats) = make_batch_dynamic(&m.encode_to_vec()).unwrap();
    (decode_model(&bytes).unwrap(), stats)
}

fn node_target<'a>(m: &'a vigil_model::onnx::ModelProto, node: &str) -> &'a str {
    let g = m.graph.as_ref().unwrap();
    &g.node
        .iter()
        .find(|n| n.name.as_deref() == Some(node))
        .unwrap()
        .input[1]
}

#[test]
fn leading_batch_becomes_minus_one_or_zero() {
    let (m, stats) = rewrite(&tiny_model());
    // [1,3,-1] already has a -1: the batch is copied with 0.
    assert_eq!(init_ints(&m, "A").unwrap(), vec![0, 3, -1]);
    // [4,16,3]: leading 4 = 4 × batch (area attention) → inferred.
    assert_eq!(init_ints(&m, "B").unwrap(), vec![-1, 16, 3]);
    // [1,64,3] is shared by two batch Reshapes: rewritten once, in place.
    assert_eq!(init_ints(&m, "C").unwrap(), vec![-1, 64, 3]);
    assert_eq!(node_target(&m, "r3"), "C");
    assert_eq!(node_target(&m, "r4"), "C");
    // A weight reshape with a leading 1 is not the batch.
    assert_eq!(init_ints(&m, "D").unwrap(), vec![1, 6]);
    assert_eq!(stats.old_batch, Some(1));
    assert!(!stats.already_dynamic);
    assert_eq!(stats.reshape_targets_rewritten, 5);
    assert_eq!(stats.reshape_nodes_rewritten, 6);
    assert!(stats.warnings.is_empty(), "{:?}", stats.warnings);
}

#[test]
fn shared_target_with_a_non_batch_user_is_cloned() {
    let (m, _) = rewrite(&tiny_model());
    // E feeds the weight Reshape `s` (static) and the batch Reshape `re`.
    assert_eq!(init_ints(&m, "E").unwrap(), vec![1, 3, 64]);
    assert_eq!(node_target(&m, "s"), "E");
    let clone = node_target(&m, "re").to_string();
    assert_ne!(clone, "E");
    assert_eq!(init_ints(&m, &clone).unwrap(), vec![-1, 3, 64]);
}

#[test]
fn constant_node_target_is_rewritten() {
    let (m, _) = rewrite(&tiny_model());
    let g = m.graph.as_ref().unwrap();
    let c = g
        .node
        .iter()
        .find(|n| n.op_type.as_deref() == Some("Constant"))
        .unwrap();
    assert_eq!(c.attribute[0].t.as_ref().unwrap().int64_data, vec![-1, 192]);
}

#[test]
fn declared_shapes_follow_the_batch() {
    let (m, stats) = rewrite(&tiny_model());
    let g = m.graph.as_ref().unwrap();
    assert_eq!(dim_param(&g.input[0], 0).as_deref(), Some(BATCH_PARAM));
    assert_eq!(
        declared(&g.input[0]).unwrap()[1..],
        [Some(3), Some(8), Some(8)]
    );
    // y leads with the batch; z with 4 × batch, which has no name: unknown.
    assert_eq!(dim_param(&g.output[0], 0).as_deref(), Some(BATCH_PARAM));
    assert_eq!(
        declared(&g.output[1]).unwrap(),
        vec![None, Some(16), Some(3)]
    );
    assert_eq!(dim_param(&g.output[1], 0), None);
    assert_eq!(stats.outputs_rewritten, 2);
    let vi = |name: &str| {
        g.value_info
            .iter()
            .find(|v| v.name.as_deref() == Some(name))
            .unwrap()
    };
    assert_eq!(dim_param(vi("r1"), 0).as_deref(), Some(BATCH_PARAM));
    assert_eq!(dim_param(vi("t"), 0).as_deref(), Some(BATCH_PARAM));
    assert_eq!(declared(vi("r2")).unwrap(), vec![None, Some(16), Some(3)]);
    // A weight-only tensor keeps its shape.
    assert_eq!(declared(vi("s")).unwrap(), vec![Some(1), Some(3), Some(64)]);
    assert_eq!(stats.value_info_relaxed, 3);
}

#[test]
fn everything_else_is_preserved() {
    let orig = tiny_model();
    let (m, stats) = rewrite(&orig);
    assert!(stats.lossless_roundtrip);
    assert_eq!(m.metadata_props, orig.metadata_props);
    assert_eq!(m.opset_import, orig.opset_import);
    assert_eq!(m.ir_version, orig.ir_version);
    assert_eq!(m.producer_name, orig.producer_name);
    let (g, og) = (m.graph.as_ref().unwrap(), orig.graph.as_ref().unwrap());
    assert_eq!(g.node.len(), og.node.len());
    // Float weights untouched; only one initializer (E's clone) added.
    assert_eq!(g.initializer.len(), og.initializer.len() + 1);
    for t in og
        .initializer
        .iter()
        .filter(|t| t.data_type == Some(DataType::Float as i32))
    {
        assert!(g.initializer.contains(t));
    }
}

#[test]
fn unexpressible_target_is_left_with_a_warning() {
    // [2,-1,3] on a tensor whose leading dim is 4 × batch: `0` would copy
    // 4·N, not 2·N, and `-1` is taken. Must not guess.
    let mut m = tiny_model();
    let g = m.graph.as_mut().unwrap();
    g.initializer.push(shape_init("G", &[2, -1, 3]));
    g.node.push(node("Reshape", "rg", &["r2", "G"], &["rg"]));
    let (out, stats) = rewrite(&m);
    assert_eq!(init_ints(&out, "G").unwrap(), vec![2, -1, 3]);
    assert_eq!(stats.warnings.len(), 1, "{:?}", stats.warnings);
    assert!(stats.warnings[0].contains("rg"), "{:?}", stats.warnings);
}

#[test]
fn batch_moved_by_transpose_is_not_rewritten() {
    // After perm [1,0,...] the batch is no longer leading: a [3,...] target
    // there is not the batch.
    let mut m = tiny_model();
    let g = m.graph.as_mut().unwrap();
    let mut tr = node("Transpose", "tr", &["x"], &["xt"]);
    tr.attribute.push(ints_attr("perm", &[1, 0, 2, 3]));
    g.node.push(tr);
    g.initializer.push(shape_init("H", &[1, 192]));
    g.node.push(node("Reshape", "rh", &["xt", "H"], &["rh"]));
    let (out, _) = rewrite(&m);
    assert_eq!(init_ints(&out, "H").unwrap(), vec![1, 192]);
}

#[test]
fn already_dynamic_is_returned_unchanged() {
    let (bytes, _) = make_batch_dynamic(&tiny_model().encode_to_vec()).unwrap();
    let (again, stats) = make_batch_dynamic(&bytes).unwrap();
    assert!(stats.already_dynamic);
    assert_eq!(stats.old_batch, None);
    assert_eq!(stats.reshape_targets_rewritten, 0);
    assert_eq!(again, bytes);
}

#[test]
fn not_onnx_is_rejected() {
    for bytes in [&b""[..], &b"\xff\xfe garbage \x00\x01\x02\x03"[..]] {
        let err = make_batch_dynamic(bytes).unwrap_err();
        assert!(matches!(err, ModelError::NotOnnx { .. }), "{err}");
        assert!(err.to_string().contains("not an ONNX model"), "{err}");
    }
    // Valid protobuf, but no graph: e.g. a bare varint field 1.
    let err = make_batch_dynamic(&[0x08, 0x07]).unwrap_err();
    assert!(matches!(err, ModelError::NotOnnx { .. }), "{err}");
}

#[test]
fn non_image_models_are_rejected() {
    // Two inputs.
    let mut m = tiny_model();
    m.graph
        .as_mut()
        .unwrap()
        .input
        .push(value_info("x2", DataType::Float, &[1, 3, 8, 8]));
    let err = make_batch_dynamic(&m.encode_to_vec()).unwrap_err();
    assert!(matches!(err, ModelError::NotYolo { .. }), "{err}");
    assert!(err.to_string().contains("exactly one graph input"), "{err}");
    // A 2-D input.
    let mut m = tiny_model();
    m.graph.as_mut().unwrap().input[0] = value_info("x", DataType::Float, &[1, 192]);
    let err = make_batch_dynamic(&m.encode_to_vec()).unwrap_err();
    assert!(err.to_string().contains("4-D"), "{err}");
    // An integer input.
    let mut m = tiny_model();
    m.graph.as_mut().unwrap().input[0] = value_info("x", DataType::Int64, &[1, 3, 8, 8]);
    let err = make_batch_dynamic(&m.encode_to_vec()).unwrap_err();
    assert!(err.to_string().contains("float32"), "{err}");
}
