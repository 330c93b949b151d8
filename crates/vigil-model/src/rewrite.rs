//! The batch rewrite itself: protobuf surgery on a decoded `ModelProto`,
//! with no ONNX Runtime involved, so it can be unit-tested on hand-built
//! graphs and reasoned about without a runtime.
//!
//! An Ultralytics export traced at batch `B` (almost always 1) bakes `B`
//! into three places: the declared graph input/output shapes, the constant
//! target shapes of `Reshape` nodes (`x.view(b, 4, 16, a)` becomes the
//! initializer `[1, 4, 16, 8400]`), and the `value_info` shape hints. Making
//! the batch symbolic means fixing all three and touching nothing else.
//!
//! To know which `Reshape` targets carry the batch, a small data-flow pass
//! walks the (topologically sorted) graph and tracks, per tensor, whether
//! its leading dimension is `k × batch` ([`Flow::Lead`]). A target whose
//! leading entry is then `k × B` is rewritten to `-1` (infer it), or to `0`
//! (copy the input's leading dimension) when the target already has a `-1`
//! elsewhere. Anything the pass cannot express becomes a warning: the
//! numeric check in [`crate::prepare`] is the final judge.

use std::collections::{HashMap, HashSet};

use prost::Message;

use crate::onnx::{
    tensor_proto::DataType, tensor_shape_proto::dimension, type_proto, GraphProto, ModelProto,
    NodeProto, TensorProto, ValueInfoProto,
};
use crate::ModelError;

/// The `dim_param` written on the batch dimension. Ultralytics' own dynamic
/// exports call it `batch` too, so tools that key on the name keep working.
pub const BATCH_PARAM: &str = "batch";

/// What [`make_batch_dynamic`](crate::make_batch_dynamic) changed, so the
/// caller can report it and tests can pin it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RewriteStats {
    /// Name of the image input.
    pub input_name: String,
    /// The batch the export was fixed to; `None` when it already was dynamic.
    pub old_batch: Option<i64>,
    /// The input already had a symbolic batch: the bytes were returned as-is.
    pub already_dynamic: bool,
    /// Graph outputs whose declared leading dimension was made symbolic.
    pub outputs_rewritten: usize,
    /// Distinct constant shape tensors rewritten (a target shared by several
    /// `Reshape` nodes counts once).
    pub reshape_targets_rewritten: usize,
    /// `Reshape` nodes whose target now follows the batch.
    pub reshape_nodes_rewritten: usize,
    /// `value_info` entries whose stale batch-dependent shape was relaxed.
    pub value_info_relaxed: usize,
    /// Places that looked batch-dependent but could not be rewritten. They
    /// do not fail the rewrite; the numeric check decides.
    pub warnings: Vec<String>,
    /// Decoding then re-encoding the untouched model reproduced the input
    /// bytes exactly, i.e. nothing (no unknown field) was lost in parsing.
    pub lossless_roundtrip: bool,
}

/// How a tensor depends on the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// Does not depend on the batch at all (weights, constants).
    Static,
    /// The leading dimension is `k × batch` (`None`: some unknown multiple);
    /// the other dimensions do not depend on the batch.
    Lead(Option<i64>),
    /// The shape is fixed but the values depend on the batch (the output of
    /// `Shape`/`Size` and arithmetic on it).
    Values,
    /// Depends on the batch in a way this pass does not follow.
    Other,
}

impl Flow {
    fn is_static(self) -> bool {
        self == Flow::Static
    }
}

/// Where a constant int64 tensor lives, so it can be rewritten in place.
#[derive(Debug, Clone, Copy)]
enum ConstLoc {
    Initializer(usize),
    ConstantNode(usize),
}

/// A decided change to one `Reshape` node's target.
#[derive(Debug)]
struct ReshapeEdit {
    node: usize,
    target: String,
    new_shape: Vec<i64>,
}

/// Decodes, rewrites and re-encodes. `what` names the model in errors.
pub(crate) fn rewrite(bytes: &[u8], what: &str) -> Result<(Vec<u8>, RewriteStats), ModelError> {
    let mut model = decode(bytes, what)?;
    let lossless_roundtrip = model.encoded_len() == bytes.len() && model.encode_to_vec() == bytes;
    let mut stats = rewrite_model(&mut model, what)?;
    stats.lossless_roundtrip = lossless_roundtrip;
    if stats.already_dynamic {
        return Ok((bytes.to_vec(), stats));
    }
    Ok((model.encode_to_vec(), stats))
}

/// Parses ONNX bytes, rejecting things that merely happen to be valid
/// protobuf (an empty file decodes to an empty `ModelProto`).
pub(crate) fn decode(bytes: &[u8], what: &str) -> Result<ModelProto, ModelError> {
    let not_onnx = |reason: String| ModelError::NotOnnx {
        what: what.to_string(),
        reason,
    };
    if bytes.is_empty() {
        return Err(not_onnx("the file is empty".into()));
    }
    let model = ModelProto::decode(bytes)
        .map_err(|e| not_onnx(format!("protobuf decoding failed ({e})")))?;
    if model.ir_version.is_none() || model.graph.is_none() {
        return Err(not_onnx(
            "it decodes as protobuf but has no IR version or graph".into(),
        ));
    }
    Ok(model)
}

/// The graph's single image input: its index in `graph.input`.
pub(crate) fn image_input(graph: &GraphProto, what: &str) -> Result<usize, ModelError> {
    let inits: HashSet<&str> = graph
        .initializer
        .iter()
        .filter_map(|t| t.name.as_deref())
        .collect();
    let candidates: Vec<usize> = graph
        .input
        .iter()
        .enumerate()
        .filter(|(_, v)| !inits.contains(v.name.as_deref().unwrap_or("")))
        .map(|(i, _)| i)
        .collect();
    let not_yolo = |reason: String| ModelError::NotYolo {
        what: what.to_string(),
        reason,
    };
    let [idx] = candidates[..] else {
        return Err(not_yolo(format!(
            "expected exactly one graph input (the image batch), found {}",
            candidates.len()
        )));
    };
    let vi = &graph.input[idx];
    let name = vi.name.as_deref().unwrap_or("");
    match tensor_type(vi) {
        Some(t) if t.elem_type == Some(DataType::Float as i32) => {}
        _ => return Err(not_yolo(format!("input {name:?} is not a float32 tensor"))),
    }
    let rank = dims(vi).map(<[_]>::len);
    if rank != Some(4) {
        return Err(not_yolo(format!(
            "input {name:?} must be 4-D [N, 3, H, W], has rank {}",
            rank.map_or_else(|| "unknown".to_string(), |r| r.to_string())
        )));
    }
    Ok(idx)
}

fn tensor_type(vi: &ValueInfoProto) -> Option<&type_proto::Tensor> {
    match vi.r#type.as_ref()?.value.as_ref()? {
        type_proto::Value::TensorType(t) => Some(t),
        _ => None,
    }
}

fn tensor_type_mut(vi: &mut ValueInfoProto) -> Option<&mut type_proto::Tensor> {
    match vi.r#type.as_mut()?.value.as_mut()? {
        type_proto::Value::TensorType(t) => Some(t),
        _ => None,
    }
}

fn dims(vi: &ValueInfoProto) -> Option<&[crate::onnx::tensor_shape_proto::Dimension]> {
    tensor_type(vi)?.shape.as_ref().map(|s| &s.dim[..])
}

/// A fixed dimension's value, `None` for symbolic or unknown ones.
fn dim_value(d: &crate::onnx::tensor_shape_proto::Dimension) -> Option<i64> {
    match d.value {
        Some(dimension::Value::DimValue(v)) => Some(v),
        _ => None,
    }
}

/// The rewrite on a decoded model; see the module docs for the rules.
pub(crate) fn rewrite_model(
    model: &mut ModelProto,
    what: &str,
) -> Result<RewriteStats, ModelError> {
    let graph = model.graph.as_mut().ok_or_else(|| ModelError::NotOnnx {
        what: what.to_string(),
        reason: "it has no graph".into(),
    })?;
    let input_idx = image_input(graph, what)?;
    let mut stats = RewriteStats {
        input_name: graph.input[input_idx].name.clone().unwrap_or_default(),
        ..RewriteStats::default()
    };
    let batch = match dims(&graph.input[input_idx]).and_then(|d| dim_value(&d[0])) {
        Some(b) if b >= 1 => b,
        _ => {
            stats.already_dynamic = true;
            return Ok(stats);
        }
    };
    stats.old_batch = Some(batch);

    let consts = constant_locations(graph);
    let (flows, edits) = analyse(
        graph,
        &consts,
        &stats.input_name,
        batch,
        &mut stats.warnings,
    );
    apply_reshape_edits(graph, &consts, &edits, &mut stats);

    // Declared shapes: the input, the outputs, and the value_info hints.
    if let Some(shape) = tensor_type_mut(&mut graph.input[input_idx]).and_then(|t| t.shape.as_mut())
    {
        shape.dim[0].value = Some(dimension::Value::DimParam(BATCH_PARAM.into()));
    }
    for out in &mut graph.output {
        let flow = flow_of(&flows, out.name.as_deref().unwrap_or(""));
        if relax_shape(out, flow, batch) {
            stats.outputs_rewritten += 1;
        }
    }
    for vi in &mut graph.value_info {
        let flow = flow_of(&flows, vi.name.as_deref().unwrap_or(""));
        if relax_shape(vi, flow, batch) {
            stats.value_info_relaxed += 1;
        }
    }
    Ok(stats)
}

fn flow_of(flows: &HashMap<String, Flow>, name: &str) -> Flow {
    flows.get(name).copied().unwrap_or(Flow::Static)
}

/// Makes a declared shape agree with a batch-dynamic graph: `k == 1` leading
/// dims become `batch`, other multiples become unknown, and shapes the pass
/// could not follow are dropped (type kept). Returns whether it changed.
fn relax_shape(vi: &mut ValueInfoProto, flow: Flow, batch: i64) -> bool {
    let Some(t) = tensor_type_mut(vi) else {
        return false;
    };
    let Some(shape) = t.shape.as_mut() else {
        return false;
    };
    match flow {
        Flow::Static | Flow::Values => false,
        Flow::Other => {
            t.shape = None;
            true
        }
        Flow::Lead(k) => {
            let Some(first) = shape.dim.first_mut() else {
                t.shape = None;
                return true;
            };
            let Some(v) = dim_value(first) else {
                return false; // already symbolic or unknown
            };
            match k {
                Some(1) if v == batch => {
                    first.value = Some(dimension::Value::DimParam(BATCH_PARAM.into()));
                }
                Some(k) if v == k * batch => first.value = None,
                None => first.value = None,
                // The hint disagrees with the analysis: trust neither.
                Some(_) => t.shape = None,
            }
            true
        }
    }
}

/// Every constant that could be a `Reshape` target, by tensor name.
fn constant_locations(graph: &GraphProto) -> HashMap<String, ConstLoc> {
    let mut map = HashMap::new();
    for (i, t) in graph.initializer.iter().enumerate() {
        if let Some(n) = &t.name {
            map.insert(n.clone(), ConstLoc::Initializer(i));
        }
    }
    for (i, n) in graph.node.iter().enumerate() {
        if is_op(n, "Constant") {
            if let Some(o) = n.output.first() {
                map.insert(o.clone(), ConstLoc::ConstantNode(i));
            }
        }
    }
    map
}

fn const_ints(graph: &GraphProto, loc: ConstLoc) -> Option<Vec<i64>> {
    match loc {
        ConstLoc::Initializer(i) => tensor_int64s(&graph.initializer[i]),
        ConstLoc::ConstantNode(i) => {
            let attr = graph.node[i].attribute.first()?;
            match attr.name.as_deref()? {
                "value" => tensor_int64s(attr.t.as_ref()?),
                "value_ints" => Some(attr.ints.clone()),
                "value_int" => Some(vec![attr.i?]),
                _ => None,
            }
        }
    }
}

/// The values of a 0-D/1-D int64 tensor stored inline (raw or typed).
pub(crate) fn tensor_int64s(t: &TensorProto) -> Option<Vec<i64>> {
    if t.data_type != Some(DataType::Int64 as i32)
        || t.dims.len() > 1
        || !t.external_data.is_empty()
    {
        return None;
    }
    let n = t.dims.first().copied().unwrap_or(1);
    let vals: Vec<i64> = match &t.raw_data {
        Some(raw) if !raw.is_empty() || t.int64_data.is_empty() => {
            if raw.len() % 8 != 0 {
                return None;
            }
            raw.chunks_exact(8)
                .map(|c| {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(c);
                    i64::from_le_bytes(b)
                })
                .collect()
        }
        _ => t.int64_data.clone(),
    };
    (usize::try_from(n).ok() == Some(vals.len())).then_some(vals)
}

/// Writes int64 values back in whichever encoding the tensor already used.
fn set_tensor_int64s(t: &mut TensorProto, vals: &[i64]) {
    if t.raw_data.as_ref().is_some_and(|r| !r.is_empty()) {
        t.raw_data = Some(vals.iter().flat_map(|v| v.to_le_bytes()).collect());
    } else {
        t.int64_data = vals.to_vec();
    }
}

fn set_const_ints(graph: &mut GraphProto, loc: ConstLoc, vals: &[i64]) {
    match loc {
        ConstLoc::Initializer(i) => set_tensor_int64s(&mut graph.initializer[i], vals),
        ConstLoc::ConstantNode(i) => {
            if let Some(attr) = graph.node[i].attribute.first_mut() {
                match attr.name.as_deref() {
                    Some("value") => {
                        if let Some(t) = attr.t.as_mut() {
                            set_tensor_int64s(t, vals);
                        }
                    }
                    Some("value_ints") => attr.ints = vals.to_vec(),
                    Some("value_int") => attr.i = vals.first().copied(),
                    _ => {}
                }
            }
        }
    }
}

fn is_op(n: &NodeProto, op: &str) -> bool {
    n.op_type.as_deref() == Some(op) && matches!(n.domain.as_deref(), None | Some("" | "ai.onnx"))
}

fn attr_int(n: &NodeProto, name: &str) -> Option<i64> {
    n.attribute
        .iter()
        .find(|a| a.name.as_deref() == Some(name))
        .and_then(|a| a.i)
}

fn attr_ints(n: &NodeProto, name: &str) -> Option<Vec<i64>> {
    n.attribute
        .iter()
        .find(|a| a.name.as_deref() == Some(name))
        .map(|a| a.ints.clone())
}

/// Ops whose `axis` attribute (with this default) selects the dimension
/// they mix or split; acting on axis 0 mixes frames of the batch.
fn axis_op_default(op: &str) -> Option<i64> {
    Some(match op {
        "Concat" | "Split" | "Gather" | "GatherElements" | "ArgMax" | "ArgMin" | "Compress"
        | "ScatterElements" => 0,
        "Softmax" | "LogSoftmax" | "Hardmax" | "TopK" | "LpNormalization" => -1,
        "Flatten" | "LayerNormalization" => 1,
        _ => return None,
    })
}

/// Ops that take `axes` as an attribute (old opsets) or as input 1 (new
/// ones) and that mix, add or drop the listed dimensions.
fn is_axes_op(op: &str) -> bool {
    op.starts_with("Reduce") || matches!(op, "Squeeze" | "Unsqueeze")
}

/// Ops through which batch-dependent *values* of a shape vector stay a
/// fixed-size vector (so `Values` does not turn into `Other`).
fn is_shape_arithmetic(op: &str) -> bool {
    matches!(
        op,
        "Gather"
            | "Concat"
            | "Unsqueeze"
            | "Squeeze"
            | "Cast"
            | "Slice"
            | "Add"
            | "Sub"
            | "Mul"
            | "Div"
            | "Floor"
            | "Ceil"
            | "Min"
            | "Max"
            | "Equal"
            | "Where"
            | "Identity"
            | "ReduceProd"
            | "Abs"
            | "Neg"
    )
}

/// Walks the graph once, returning each tensor's [`Flow`] and the `Reshape`
/// targets to rewrite.
fn analyse(
    graph: &GraphProto,
    consts: &HashMap<String, ConstLoc>,
    input: &str,
    batch: i64,
    warnings: &mut Vec<String>,
) -> (HashMap<String, Flow>, Vec<ReshapeEdit>) {
    let mut flows: HashMap<String, Flow> = HashMap::new();
    flows.insert(input.to_string(), Flow::Lead(Some(1)));
    let mut edits = Vec::new();
    let const_of = |name: &str| consts.get(name).and_then(|&l| const_ints(graph, l));

    for (idx, node) in graph.node.iter().enumerate() {
        let op = node.op_type.as_deref().unwrap_or("");
        let ins: Vec<Flow> = node
            .input
            .iter()
            .map(|n| {
                if n.is_empty() {
                    Flow::Static
                } else {
                    flow_of(&flows, n)
                }
            })
            .collect();
        let data = ins.first().copied().unwrap_or(Flow::Static);
        let label = node.name.as_deref().unwrap_or(op);
        let has_subgraph = node
            .attribute
            .iter()
            .any(|a| a.g.is_some() || !a.graphs.is_empty());

        let out = if has_subgraph {
            // If/Loop/Scan may capture outer tensors; do not try to follow.
            Flow::Other
        } else if ins.iter().all(|f| f.is_static()) {
            Flow::Static
        } else if ins.contains(&Flow::Other) {
            Flow::Other
        } else if matches!(op, "Shape" | "Size") {
            Flow::Values
        } else if is_op(node, "Reshape") {
            reshape_flow(
                node, idx, data, batch, &const_of, &mut edits, warnings, label,
            )
        } else if let Flow::Lead(k) = first_lead(&ins) {
            let k = if ins.contains(&Flow::Values) { None } else { k };
            if touches_batch_axis(node, op, &const_of) {
                Flow::Other
            } else {
                if op == "Resize" && node.input.get(3).is_some_and(|s| !s.is_empty()) {
                    warnings.push(format!(
                        "Resize {label:?} has constant output sizes that include the batch"
                    ));
                }
                Flow::Lead(k)
            }
        } else if is_shape_arithmetic(op) {
            Flow::Values
        } else {
            Flow::Other
        };
        for o in &node.output {
            if !o.is_empty() {
                flows.insert(o.clone(), out);
            }
        }
    }
    (flows, edits)
}

fn first_lead(ins: &[Flow]) -> Flow {
    ins.iter()
        .copied()
        .find(|f| matches!(f, Flow::Lead(_)))
        .unwrap_or(Flow::Other)
}

/// Whether a node acts along dimension 0 of its (batch-leading) input,
/// which would mix frames or move the batch out of the leading position.
fn touches_batch_axis(
    node: &NodeProto,
    op: &str,
    const_of: &dyn Fn(&str) -> Option<Vec<i64>>,
) -> bool {
    if op == "Transpose" {
        // No perm means "reverse the dimensions", which moves the batch.
        return attr_ints(node, "perm").is_none_or(|p| p.first() != Some(&0));
    }
    if let Some(default) = axis_op_default(op) {
        return attr_int(node, "axis").unwrap_or(default) == 0;
    }
    if is_axes_op(op) {
        let axes = attr_ints(node, "axes").or_else(|| {
            node.input
                .get(1)
                .filter(|s| !s.is_empty())
                .and_then(|s| const_of(s))
        });
        return match axes {
            Some(a) if !a.is_empty() => a.contains(&0),
            // Reductions without axes reduce everything (unless told not to).
            _ => op.starts_with("Reduce") && attr_int(node, "noop_with_empty_axes") != Some(1),
        };
    }
    if op == "Slice" {
        return match node.input.get(3).filter(|s| !s.is_empty()) {
            Some(axes) => const_of(axes).is_none_or(|a| a.contains(&0)),
            None => true, // default axes start at 0
        };
    }
    false
}

/// Decides what a `Reshape` on a batch-leading input needs and what its
/// output's flow is.
#[allow(clippy::too_many_arguments)]
fn reshape_flow(
    node: &NodeProto,
    idx: usize,
    data: Flow,
    batch: i64,
    const_of: &dyn Fn(&str) -> Option<Vec<i64>>,
    edits: &mut Vec<ReshapeEdit>,
    warnings: &mut Vec<String>,
    label: &str,
) -> Flow {
    let k_in = match data {
        Flow::Lead(k) => k,
        Flow::Static => return Flow::Other, // static data, batch-valued shape
        Flow::Values => return Flow::Values,
        Flow::Other => return Flow::Other,
    };
    let Some(target_name) = node.input.get(1).filter(|s| !s.is_empty()) else {
        return Flow::Other;
    };
    let Some(target) = const_of(target_name) else {
        // A computed shape (e.g. from `Shape`) already follows the batch.
        return Flow::Lead(None);
    };
    let allowzero = attr_int(node, "allowzero").unwrap_or(0) != 0;
    let Some(&t0) = target.first() else {
        return Flow::Other;
    };
    match t0 {
        0 if !allowzero => return Flow::Lead(k_in),
        -1 => return Flow::Lead(None),
        t if t > 0 => {}
        _ => return Flow::Other,
    }
    if t0 % batch != 0 {
        warnings.push(format!(
            "Reshape {label:?}: target {target:?} leads with {t0}, not a multiple of the batch {batch}"
        ));
        return Flow::Other;
    }
    let k_out = t0 / batch;
    let mut new_shape = target.clone();
    if target[1..].contains(&-1) {
        // `0` copies the input's leading dim; only right if it is t0 already.
        if allowzero || k_in.is_some_and(|k| k != k_out) {
            warnings.push(format!(
                "Reshape {label:?}: target {target:?} already infers another dimension and \
                 its leading {t0} is not the input's leading dimension"
            ));
            return Flow::Other;
        }
        new_shape[0] = 0;
    } else {
        new_shape[0] = -1;
    }
    edits.push(ReshapeEdit {
        node: idx,
        target: target_name.clone(),
        new_shape,
    });
    Flow::Lead(Some(k_out))
}

/// Applies the decided target changes: in place when every user of the
/// constant agrees, otherwise on a fresh initializer per distinct new shape
/// so that other users of the constant keep its old value.
fn apply_reshape_edits(
    graph: &mut GraphProto,
    consts: &HashMap<String, ConstLoc>,
    edits: &[ReshapeEdit],
    stats: &mut RewriteStats,
) {
    let mut uses: HashMap<&str, usize> = HashMap::new();
    count_uses(graph, &mut uses);
    let uses: HashMap<String, usize> = uses.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    let mut taken: HashSet<String> = all_names(graph);

    // Group edits by target, keeping first-seen order for stable output.
    let mut order: Vec<&str> = Vec::new();
    let mut by_target: HashMap<&str, Vec<&ReshapeEdit>> = HashMap::new();
    for e in edits {
        by_target
            .entry(e.target.as_str())
            .or_insert_with(|| {
                order.push(e.target.as_str());
                Vec::new()
            })
            .push(e);
    }
    for target in order {
        let group = &by_target[target];
        let Some(&loc) = consts.get(target) else {
            continue;
        };
        let mut shapes: Vec<&Vec<i64>> = Vec::new();
        for e in group {
            if !shapes.contains(&&e.new_shape) {
                shapes.push(&e.new_shape);
            }
        }
        let distinct = shapes.len();
        let in_place = distinct == 1 && uses.get(target).copied().unwrap_or(0) == group.len();
        if in_place {
            set_const_ints(graph, loc, shapes[0]);
        } else {
            for shape in shapes {
                let name = unique_name(&mut taken, &format!("{target}_dynbatch"));
                graph.initializer.push(TensorProto {
                    name: Some(name.clone()),
                    dims: vec![shape.len() as i64],
                    data_type: Some(DataType::Int64 as i32),
                    raw_data: Some(shape.iter().flat_map(|v| v.to_le_bytes()).collect()),
                    ..TensorProto::default()
                });
                for e in group.iter().filter(|e| &e.new_shape == shape) {
                    graph.node[e.node].input[1] = name.clone();
                }
            }
        }
        stats.reshape_targets_rewritten += distinct;
        stats.reshape_nodes_rewritten += group.len();
    }
}

/// Counts every reference to a tensor name as a node input, including in
/// nested subgraphs (which may capture outer-scope constants) and as a
/// graph output.
fn count_uses<'a>(graph: &'a GraphProto, uses: &mut HashMap<&'a str, usize>) {
    for n in &graph.node {
        for i in &n.input {
            *uses.entry(i.as_str()).or_default() += 1;
        }
        for a in &n.attribute {
            if let Some(g) = &a.g {
                count_uses(g, uses);
            }
            for g in &a.graphs {
                count_uses(g, uses);
            }
        }
    }
    for o in &graph.output {
        if let Some(n) = &o.name {
            *uses.entry(n.as_str()).or_default() += 1;
        }
    }
}

fn all_names(graph: &GraphProto) -> HashSet<String> {
    let mut s = HashSet::new();
    s.extend(graph.initializer.iter().filter_map(|t| t.name.clone()));
    s.extend(graph.input.iter().filter_map(|v| v.name.clone()));
    s.extend(graph.output.iter().filter_map(|v| v.name.clone()));
    s.extend(graph.value_info.iter().filter_map(|v| v.name.clone()));
    for n in &graph.node {
        s.extend(n.input.iter().cloned());
        s.extend(n.output.iter().cloned());
    }
    s
}

fn unique_name(taken: &mut HashSet<String>, base: &str) -> String {
    let mut name = base.to_string();
    let mut i = 1;
    while taken.contains(&name) {
        name = format!("{base}{i}");
        i += 1;
    }
    taken.insert(name.clone());
    name
}
