//! Decoding YOLOv8/11/12 outputs and class-aware non-maximum suppression.
//!
//! The head emits `[4 + nc, A]` per image: `cx, cy, w, h` in input pixels,
//! then one sigmoid score per class (no objectness). We follow Ultralytics'
//! `non_max_suppression` with `multi_label=False`: a box takes its best class,
//! is kept when that score exceeds `conf`, the class filter applies to that
//! best class, and suppression only happens between boxes of the same class.

use vigil_core::{BBox, Detection};

use crate::preprocess::Letterbox;

/// Thresholds that shape what NMS keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct NmsParams {
    pub iou: f32,
    pub max_det: usize,
}

impl Default for NmsParams {
    fn default() -> Self {
        Self {
            iou: 0.45,
            max_det: 300,
        }
    }
}

/// Everything decoding needs besides the raw output.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeParams {
    pub conf: f32,
    /// Keep only these class ids; empty = all.
    pub classes: Vec<u32>,
    pub nms: NmsParams,
}

impl Default for DecodeParams {
    fn default() -> Self {
        Self {
            conf: 0.25,
            classes: Vec::new(),
            nms: NmsParams::default(),
        }
    }
}

/// A candidate box in model-input pixels, before NMS.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub class_id: u32,
    pub score: f32,
    pub bbox: BBox,
}

/// Ultralytics caps the boxes entering NMS; we do too so a degenerate model
/// output (everything above threshold) cannot make NMS quadratic in 8400.
const MAX_NMS: usize = 30_000;

/// Picks each anchor's best class and keeps those above `conf`.
///
/// `out` is one image's output, laid out `[4 + nc][anchors]` (row-major).
/// Classes are scanned row by row so memory is read sequentially.
pub fn candidates(out: &[f32], nc: usize, anchors: usize, params: &DecodeParams) -> Vec<Candidate> {
    debug_assert_eq!(out.len(), (4 + nc) * anchors);
    let mut best = vec![f32::NEG_INFINITY; anchors];
    let mut best_cls = vec![0u32; anchors];
    for c in 0..nc {
        let row = &out[(4 + c) * anchors..(5 + c) * anchors];
        for ((b, bc), &v) in best.iter_mut().zip(best_cls.iter_mut()).zip(row) {
            if v > *b {
                *b = v;
                *bc = c as u32;
            }
        }
    }
    let (cx, rest) = out.split_at(anchors);
    let (cy, rest) = rest.split_at(anchors);
    let (w, rest) = rest.split_at(anchors);
    let h = &rest[..anchors];
    let mut cands = Vec::new();
    for a in 0..anchors {
        let score = best[a];
        if score <= params.conf {
            continue;
        }
        let class_id = best_cls[a];
        if !params.classes.is_empty() && !params.classes.contains(&class_id) {
            continue;
        }
        let (hw, hh) = (w[a] * 0.5, h[a] * 0.5);
        cands.push(Candidate {
            class_id,
            score,
            bbox: BBox::new(cx[a] - hw, cy[a] - hh, cx[a] + hw, cy[a] + hh),
        });
    }
    cands
}

/// Greedy class-aware NMS: highest score first; a box is dropped when a kept
/// box of the same class overlaps it by more than `iou`. Returns at most
/// `max_det` boxes, highest score first.
pub fn nms(mut cands: Vec<Candidate>, params: &NmsParams) -> Vec<Candidate> {
    cands.sort_by(|a, b| b.score.total_cmp(&a.score));
    cands.truncate(MAX_NMS);
    let mut kept: Vec<Candidate> = Vec::new();
    for c in cands {
        if kept.len() >= params.max_det {
            break;
        }
        let suppressed = kept
            .iter()
            .any(|k| k.class_id == c.class_id && k.bbox.iou(&c.bbox) > params.iou);
        if !suppressed {
            kept.push(c);
        }
    }
    kept
}

/// Full decode for one image: candidates, NMS, back to source pixels, labels.
pub fn decode(
    out: &[f32],
    nc: usize,
    anchors: usize,
    letterbox: &Letterbox,
    params: &DecodeParams,
    labels: &[String],
) -> Vec<Detection> {
    nms(candidates(out, nc, anchors, params), &params.nms)
        .into_iter()
        .map(|c| Detection {
            class_id: c.class_id,
            label: labels
                .get(c.class_id as usize)
                .cloned()
                .unwrap_or_else(|| format!("class{}", c.class_id)),
            score: c.score,
            bbox: letterbox.to_source(c.bbox),
            track_id: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(class_id: u32, score: f32, x: f32) -> Candidate {
        Candidate {
            class_id,
            score,
            bbox: BBox::new(x, 0.0, x + 10.0, 10.0),
        }
    }

    #[test]
    fn suppresses_within_class_only() {
        let p = NmsParams::default();
        // Two overlapping boxes of class 0, one identical box of class 1.
        let kept = nms(
            vec![cand(0, 0.9, 0.0), cand(0, 0.8, 1.0), cand(1, 0.7, 0.0)],
            &p,
        );
        assert_eq!(kept.len(), 2);
        assert_eq!((kept[0].class_id, kept[0].score), (0, 0.9));
        assert_eq!((kept[1].class_id, kept[1].score), (1, 0.7));
    }

    #[test]
    fn keeps_boxes_at_or_below_iou_threshold() {
        // IoU of [0,10] and [5,15] strips is 5/15 = 0.33 < 0.45: both kept.
        let kept = nms(
            vec![cand(0, 0.9, 0.0), cand(0, 0.8, 5.0)],
            &NmsParams::default(),
        );
        assert_eq!(kept.len(), 2);
    }

    #[test]
    fn respects_max_det() {
        let many: Vec<_> = (0..50)
            .map(|i| cand(0, 0.5 + i as f32 * 0.001, i as f32 * 20.0))
            .collect();
        let kept = nms(
            many,
            &NmsParams {
                iou: 0.45,
                max_det: 7,
            },
        );
        assert_eq!(kept.len(), 7);
        assert!(kept.windows(2).all(|w| w[0].score >= w[1].score));
    }

    /// Builds a `[4+nc][A]` output with the given anchors.
    fn output(nc: usize, anchors: &[([f32; 4], Vec<f32>)]) -> Vec<f32> {
        let a = anchors.len();
        let mut out = vec![0.0; (4 + nc) * a];
        for (i, (b, scores)) in anchors.iter().enumerate() {
            for k in 0..4 {
                out[k * a + i] = b[k];
            }
            for (c, s) in scores.iter().enumerate() {
                out[(4 + c) * a + i] = *s;
            }
        }
        out
    }

    #[test]
    fn candidates_take_best_class_and_threshold() {
        let out = output(
            3,
            &[
                ([50.0, 50.0, 20.0, 10.0], vec![0.1, 0.7, 0.3]),
                ([10.0, 10.0, 4.0, 4.0], vec![0.2, 0.1, 0.25]), // exactly conf: dropped
            ],
        );
        let c = candidates(&out, 3, 2, &DecodeParams::default());
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].class_id, 1);
        assert_eq!(c[0].bbox, BBox::new(40.0, 45.0, 60.0, 55.0));
    }

    #[test]
    fn class_filter_applies_to_best_class() {
        let out = output(2, &[([50.0, 50.0, 20.0, 10.0], vec![0.9, 0.6])]);
        let params = DecodeParams {
            classes: vec![1],
            ..DecodeParams::default()
        };
        // Best class is 0, filtered out; class 1's lower score does not resurface.
        assert!(candidates(&out, 2, 1, &params).is_empty());
    }

    #[test]
    fn decode_maps_to_source_and_labels() {
        let out = output(2, &[([320.0, 320.0, 64.0, 64.0], vec![0.9, 0.0])]);
        let lb = Letterbox::fit(1280, 1280, 640, 640);
        let labels = vec!["person".to_string(), "car".to_string()];
        let d = decode(&out, 2, 1, &lb, &DecodeParams::default(), &labels);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].label, "person");
        assert_eq!(d[0].bbox, BBox::new(576.0, 576.0, 704.0, 704.0));
    }
}
