//! How far two runs of a detector agree: the measure behind the precision
//! goals (BF16/FP16 ≥ 98 % of boxes at IoU 0.9, INT8 ≥ 95 % at IoU 0.5, both
//! directions) used by the tests, the benchmarks and `vigil model quantize`.

use vigil_core::Detection;

/// Matched boxes in both directions, summed over frames.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Agreement {
    /// Boxes of the reference run.
    pub reference: usize,
    /// Boxes of the candidate run.
    pub candidate: usize,
    /// One-to-one pairs of the same class with IoU at or above the threshold.
    pub matched: usize,
}

impl Agreement {
    /// Share of all boxes (both runs) that found a partner: 1.0 when both
    /// runs are empty. Counting both directions means a candidate that drops
    /// boxes and one that invents boxes are penalised alike.
    pub fn ratio(&self) -> f64 {
        let total = self.reference + self.candidate;
        if total == 0 {
            1.0
        } else {
            (2 * self.matched) as f64 / total as f64
        }
    }

    /// Adds another frame's (or run's) counts.
    pub fn add(&mut self, other: Agreement) {
        self.reference += other.reference;
        self.candidate += other.candidate;
        self.matched += other.matched;
    }
}

impl std::fmt::Display for Agreement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.1} % ({} matched of {} reference and {} candidate boxes)",
            100.0 * self.ratio(),
            self.matched,
            self.reference,
            self.candidate
        )
    }
}

/// Pairs the boxes of one frame greedily, highest IoU first, one-to-one,
/// same class only, IoU ≥ `min_iou`.
pub fn compare_frame(reference: &[Detection], candidate: &[Detection], min_iou: f32) -> Agreement {
    let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
    for (i, a) in reference.iter().enumerate() {
        for (j, b) in candidate.iter().enumerate() {
            if a.class_id == b.class_id {
                let iou = a.bbox.iou(&b.bbox);
                if iou >= min_iou {
                    pairs.push((iou, i, j));
                }
            }
        }
    }
    pairs.sort_by(|x, y| y.0.total_cmp(&x.0));
    let mut used_a = vec![false; reference.len()];
    let mut used_b = vec![false; candidate.len()];
    let mut matched = 0;
    for (_, i, j) in pairs {
        if !used_a[i] && !used_b[j] {
            used_a[i] = true;
            used_b[j] = true;
            matched += 1;
        }
    }
    Agreement {
        reference: reference.len(),
        candidate: candidate.len(),
        matched,
    }
}

/// [`compare_frame`] over frames in the same order.
pub fn compare(
    reference: &[Vec<Detection>],
    candidate: &[Vec<Detection>],
    min_iou: f32,
) -> Agreement {
    let mut total = Agreement::default();
    for (a, b) in reference.iter().zip(candidate) {
        total.add(compare_frame(a, b, min_iou));
    }
    total
}

/// Only detections scoring at least `min_score`: borderline boxes near the
/// confidence threshold flip in and out under any numeric change, so the
/// goals are stated on confident boxes where a caller wants that.
pub fn confident(frames: &[Vec<Detection>], min_score: f32) -> Vec<Vec<Detection>> {
    frames
        .iter()
        .map(|f| f.iter().filter(|d| d.score >= min_score).cloned().collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_core::BBox;

    fn det(class_id: u32, x: f32) -> Detection {
        Detection {
            class_id,
            label: String::new(),
            score: 0.9,
            bbox: BBox {
                x1: x,
                y1: 0.0,
                x2: x + 10.0,
                y2: 10.0,
            },
            track_id: None,
        }
    }

    #[test]
    fn counts_one_to_one_same_class_pairs_in_both_directions() {
        let a = vec![det(0, 0.0), det(1, 100.0)];
        // Same box, other class: no match. Two candidates for one box: one match.
        let b = vec![det(0, 0.0), det(0, 0.5), det(2, 100.0)];
        let g = compare_frame(&a, &b, 0.5);
        assert_eq!((g.reference, g.candidate, g.matched), (2, 3, 1));
        assert!((g.ratio() - 0.4).abs() < 1e-9);
        let g = compare_frame(&a, &a, 0.9);
        assert_eq!(g.ratio(), 1.0);
        assert_eq!(compare_frame(&[], &[], 0.9).ratio(), 1.0);
        assert_eq!(compare_frame(&a, &[], 0.9).ratio(), 0.0);
    }

    #[test]
    fn iou_threshold_is_inclusive_and_strict_below() {
        // Shifted by 1 px of 10: IoU = 9/11 ≈ 0.818.
        let a = [det(0, 0.0)];
        let b = [det(0, 1.0)];
        assert_eq!(compare_frame(&a, &b, 0.8).matched, 1);
        assert_eq!(compare_frame(&a, &b, 0.9).matched, 0);
    }
}
