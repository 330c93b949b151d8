//! Hand-built ONNX graphs for the rewrite tests (no exporter needed).
#![allow(dead_code)]

use std::path::PathBuf;

use vigil_model::onnx::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto::dimension,
    tensor_shape_proto::Dimension, type_proto, AttributeProto, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};

/// The repository root (tests run with cwd = the crate).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn default_model() -> PathBuf {
    repo_root().join("models/yolov12n.onnx")
}

pub fn photos() -> Vec<PathBuf> {
    ["dog", "person", "horses", "giraffe"]
        .iter()
        .map(|n| repo_root().join(format!("data/photos/{n}.jpg")))
        .collect()
}

pub fn dim(v: i64) -> Dimension {
    Dimension {
        value: Some(dimension::Value::DimValue(v)),
        ..Default::default()
    }
}

pub fn value_info(name: &str, elem: DataType, dims: &[i64]) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(elem as i32),
                shape: Some(TensorShapeProto {
                    dim: dims.iter().map(|&d| dim(d)).collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// An int64 shape initializer in `raw_data`, as PyTorch writes them.
pub fn shape_init(name: &str, vals: &[i64]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: vec![vals.len() as i64],
        data_type: Some(DataType::Int64 as i32),
        raw_data: Some(vals.iter().flat_map(|v| v.to_le_bytes()).collect()),
        ..Default::default()
    }
}

pub fn float_init(name: &str, dims: &[i64], vals: &[f32]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(DataType::Float as i32),
        float_data: vals.to_vec(),
        ..Default::default()
    }
}

pub fn node(op: &str, name: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    NodeProto {
        op_type: Some(op.into()),
        name: Some(name.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

pub fn ints_attr(name: &str, vals: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Ints as i32),
        ints: vals.to_vec(),
        ..Default::default()
    }
}

pub fn int_attr(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(v),
        ..Default::default()
    }
}

/// A `Constant` node holding an int64 vector in typed `int64_data`.
pub fn constant_node(output: &str, vals: &[i64]) -> NodeProto {
    let mut n = node("Constant", output, &[], &[output]);
    n.attribute.push(AttributeProto {
        name: Some("value".into()),
        r#type: Some(AttributeType::Tensor as i32),
        t: Some(TensorProto {
            dims: vec![vals.len() as i64],
            data_type: Some(DataType::Int64 as i32),
            int64_data: vals.to_vec(),
            ..Default::default()
        }),
        ..Default::default()
    });
    n
}

pub fn model(graph: GraphProto) -> ModelProto {
    ModelProto {
        ir_version: Some(9),
        opset_import: vec![OperatorSetIdProto {
            domain: None,
            version: Some(19),
        }],
        producer_name: Some("vigil-model tests".into()),
        graph: Some(graph),
        metadata_props: vec![
            StringStringEntryProto {
                key: Some("names".into()),
                value: Some("{0: 'thing'}".into()),
            },
            StringStringEntryProto {
                key: Some("imgsz".into()),
                value: Some("[8, 8]".into()),
            },
        ],
        ..Default::default()
    }
}

/// A small image model, input `[1, 3, 8, 8]`, with the Reshape patterns of
/// an Ultralytics export:
///
/// - `A = [1,3,-1]` flatten (leading batch plus a `-1`: expect `[0,3,-1]`);
/// - `E = [1,3,64]` used by a batch Reshape *and* a weight Reshape (must be
///   cloned, the weight use keeps `[1,3,64]`);
/// - `B = [4,16,3]` area-attention style, leading `4 × batch` (expect `-1`);
/// - `C = [1,64,3]` shared by two batch Reshapes (rewritten once, in place);
/// - `F` a `Constant` node `[1,192]` (expect `[-1,192]`);
/// - `D = [1,6]` reshaping a weight: not batch, must stay.
///
/// Outputs: `y` `[1,192]` and `z` `[4,16,3]`.
pub fn tiny_model() -> ModelProto {
    let w192: Vec<f32> = (0..192).map(|i| (i as f32 * 0.37).sin() * 0.1).collect();
    let w6: Vec<f32> = (0..6).map(|i| i as f32 * 0.01).collect();
    let mut t = node("Transpose", "t", &["b"], &["t"]);
    t.attribute.push(ints_attr("perm", &[0, 2, 1]));
    let mut sm = node("Softmax", "sm", &["r2"], &["sm"]);
    sm.attribute.push(int_attr("axis", -1));
    let nodes = vec![
        node("Reshape", "r1", &["x", "A"], &["r1"]),
        node("Reshape", "s", &["W192", "E"], &["s"]),
        node("Add", "a", &["r1", "s"], &["a"]),
        node("Reshape", "re", &["x", "E"], &["re"]),
        node("Add", "b", &["a", "re"], &["b"]),
        t,
        node("Reshape", "r2", &["t", "B"], &["r2"]),
        sm,
        node("Reshape", "r3", &["sm", "C"], &["r3"]),
        node("Reshape", "r4", &["t", "C"], &["r4"]),
        node("Add", "c", &["r3", "r4"], &["c"]),
        constant_node("F", &[1, 192]),
        node("Reshape", "f", &["c", "F"], &["f"]),
        node("Reshape", "w", &["W6", "D"], &["w"]),
        node("ReduceSum", "ws", &["w"], &["ws"]),
        node("Add", "y", &["f", "ws"], &["y"]),
        node("Identity", "z", &["r2"], &["z"]),
    ];
    let graph = GraphProto {
        name: Some("tiny".into()),
        node: nodes,
        initializer: vec![
            shape_init("A", &[1, 3, -1]),
            shape_init("E", &[1, 3, 64]),
            shape_init("B", &[4, 16, 3]),
            shape_init("C", &[1, 64, 3]),
            shape_init("D", &[1, 6]),
            float_init("W192", &[192], &w192),
            float_init("W6", &[6], &w6),
        ],
        input: vec![value_info("x", DataType::Float, &[1, 3, 8, 8])],
        output: vec![
            value_info("y", DataType::Float, &[1, 192]),
            value_info("z", DataType::Float, &[4, 16, 3]),
        ],
        value_info: vec![
            value_info("r1", DataType::Float, &[1, 3, 64]),
            value_info("s", DataType::Float, &[1, 3, 64]),
            value_info("r2", DataType::Float, &[4, 16, 3]),
            value_info("t", DataType::Float, &[1, 64, 3]),
        ],
        ..Default::default()
    };
    model(graph)
}

/// The int64 values of a named initializer.
pub fn init_ints(m: &ModelProto, name: &str) -> Option<Vec<i64>> {
    let t = m
        .graph
        .as_ref()?
        .initializer
        .iter()
        .find(|t| t.name.as_deref() == Some(name))?;
    Some(match &t.raw_data {
        Some(r) if !r.is_empty() => r
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect(),
        _ => t.int64_data.clone(),
    })
}

/// Declared dims of a graph input/output/value_info entry, `None` per
/// symbolic/unknown dim; outer `None` when the shape was removed.
pub fn declared(vi: &ValueInfoProto) -> Option<Vec<Option<i64>>> {
    match vi.r#type.as_ref()?.value.as_ref()? {
        type_proto::Value::TensorType(t) => Some(
            t.shape
                .as_ref()?
                .dim
                .iter()
                .map(|d| match d.value {
                    Some(dimension::Value::DimValue(v)) => Some(v),
                    _ => None,
                })
                .collect(),
        ),
        _ => None,
    }
}

pub fn dim_param(vi: &ValueInfoProto, i: usize) -> Option<String> {
    match vi.r#type.as_ref()?.value.as_ref()? {
        type_proto::Value::TensorType(t) => match &t.shape.as_ref()?.dim.get(i)?.value {
            Some(dimension::Value::DimParam(p)) => Some(p.clone()),
            _ => None,
        },
        _ => None,
    }
}
