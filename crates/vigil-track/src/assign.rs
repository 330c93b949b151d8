//! Gated minimum-cost assignment, the `lap.lapjv(cost, extend_cost=True,
//! cost_limit=thresh)` call of the ByteTrack reference, solved with
//! `pathfinding`'s Kuhn-Munkres.
//!
//! `lapjv` with a cost limit minimises the total cost where leaving a row or a
//! column unmatched costs `thresh / 2` each, i.e. it maximises
//! `Σ (thresh − cost)` over the chosen pairs, and only pairs with
//! `cost <= thresh` can be worth choosing. We hand exactly that objective to
//! Kuhn-Munkres as integer weights (micro-units; forbidden pairs weigh 0). A
//! maximum-weight *complete* matching with zero-weight padding has the same
//! value as the best partial matching over allowed pairs, so dropping the
//! zero-weight pairs afterwards gives lapjv's answer. Integer weights also rule
//! out the floating-point non-termination some LAPJV ports suffer from, which
//! matters for a tracker that must never hang a live stream.

use pathfinding::kuhn_munkres::{kuhn_munkres, Weights};

/// Weight units per unit of cost; far below any meaningful IoU difference.
const SCALE: f64 = 1e6;

/// Marks a row or column not yet given a local index in a component.
const NONE: usize = usize::MAX;

/// Reusable buffers so an assignment allocates nothing in steady state
/// (besides what `kuhn_munkres` allocates internally).
#[derive(Debug, Default)]
pub(crate) struct Assigner {
    /// Union-find parents over rows (`0..n_rows`) then columns.
    parent: Vec<usize>,
    /// Allowed pairs as `(component root, row, col, weight)`.
    kept: Vec<(usize, usize, usize, i64)>,
    /// Local index of each row / column within the component being solved.
    row_local: Vec<usize>,
    col_local: Vec<usize>,
    rows: Vec<usize>,
    cols: Vec<usize>,
    compact: Vec<i64>,
}

/// A component's weight matrix, row-major, optionally read transposed because
/// `kuhn_munkres` needs at least as many columns as rows.
struct View {
    data: Vec<i64>,
    rows: usize,
    cols: usize,
    transposed: bool,
}

impl Weights<i64> for View {
    fn rows(&self) -> usize {
        if self.transposed {
            self.cols
        } else {
            self.rows
        }
    }

    fn columns(&self) -> usize {
        if self.transposed {
            self.rows
        } else {
            self.cols
        }
    }

    fn at(&self, row: usize, col: usize) -> i64 {
        if self.transposed {
            self.data[col * self.cols + row]
        } else {
            self.data[row * self.cols + col]
        }
    }

    fn neg(&self) -> Self {
        View {
            data: self.data.iter().map(|w| -w).collect(),
            rows: self.rows,
            cols: self.cols,
            transposed: self.transposed,
        }
    }
}

impl Assigner {
    /// Appends to `out` the pairs `(row, col)` of a minimum-cost matching
    /// between `n_rows` rows and `n_cols` columns, given the candidate pairs
    /// `(row, col, cost)`; any pair not listed, or costing more than `thresh`,
    /// is never matched. Each pair may be listed once.
    ///
    /// The matching decomposes over the connected components of the allowed
    /// pairs, so each is solved on its own: in a typical frame almost every
    /// component is one track and one detection, which needs no solver at all,
    /// and the cubic solver only sees the clusters where objects overlap.
    pub(crate) fn solve(
        &mut self,
        n_rows: usize,
        n_cols: usize,
        thresh: f64,
        edges: &[(usize, usize, f64)],
        out: &mut Vec<(usize, usize)>,
    ) {
        self.parent.clear();
        self.parent.extend(0..n_rows + n_cols);
        self.kept.clear();
        for &(r, c, cost) in edges {
            if r < n_rows && c < n_cols && cost.is_finite() && cost <= thresh {
                // +1 keeps a pair costing exactly `thresh` distinguishable
                // from an absent one (the reference accepts cost == thresh).
                let w = 1 + ((thresh - cost) * SCALE).round() as i64;
                union(&mut self.parent, r, n_rows + c);
                self.kept.push((0, r, c, w));
            }
        }
        for e in &mut self.kept {
            e.0 = find(&mut self.parent, e.1);
        }
        self.kept.sort_unstable();
        self.row_local.clear();
        self.row_local.resize(n_rows, NONE);
        self.col_local.clear();
        self.col_local.resize(n_cols, NONE);
        let mut start = 0;
        while start < self.kept.len() {
            let root = self.kept[start].0;
            let len = self.kept[start..]
                .iter()
                .take_while(|e| e.0 == root)
                .count();
            let end = start + len;
            if len == 1 {
                let (_, r, c, _) = self.kept[start];
                out.push((r, c));
            } else {
                self.solve_component(start..end, out);
            }
            start = end;
        }
    }

    /// Kuhn-Munkres over the allowed pairs `self.kept[range]` of one component.
    fn solve_component(&mut self, range: std::ops::Range<usize>, out: &mut Vec<(usize, usize)>) {
        self.rows.clear();
        self.cols.clear();
        for &(_, r, c, _) in &self.kept[range.clone()] {
            if self.row_local[r] == NONE {
                self.row_local[r] = self.rows.len();
                self.rows.push(r);
            }
            if self.col_local[c] == NONE {
                self.col_local[c] = self.cols.len();
                self.cols.push(c);
            }
        }
        let (nr, nc) = (self.rows.len(), self.cols.len());
        self.compact.clear();
        self.compact.resize(nr * nc, 0);
        for &(_, r, c, w) in &self.kept[range] {
            self.compact[self.row_local[r] * nc + self.col_local[c]] = w;
        }
        let view = View {
            data: std::mem::take(&mut self.compact),
            rows: nr,
            cols: nc,
            transposed: nr > nc,
        };
        let (_, assignment) = kuhn_munkres(&view);
        for (a, &b) in assignment.iter().enumerate() {
            let (r, c) = if view.transposed { (b, a) } else { (a, b) };
            // Zero weight: padding, not an allowed pair.
            if view.data[r * nc + c] > 0 {
                out.push((self.rows[r], self.cols[c]));
            }
        }
        self.compact = view.data;
        for &r in &self.rows {
            self.row_local[r] = NONE;
        }
        for &c in &self.cols {
            self.col_local[c] = NONE;
        }
    }
}

fn find(parent: &mut [usize], mut x: usize) -> usize {
    while parent[x] != x {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    x
}

fn union(parent: &mut [usize], a: usize, b: usize) {
    let (ra, rb) = (find(parent, a), find(parent, b));
    if ra != rb {
        parent[ra.max(rb)] = ra.min(rb);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edges<R: AsRef<[f64]>>(costs: &[R]) -> Vec<(usize, usize, f64)> {
        let mut e = Vec::new();
        for (r, row) in costs.iter().enumerate() {
            for (c, &cost) in row.as_ref().iter().enumerate() {
                e.push((r, c, cost));
            }
        }
        e
    }

    fn solve(costs: &[&[f64]], thresh: f64) -> Vec<(usize, usize)> {
        let mut a = Assigner::default();
        let mut out = Vec::new();
        let cols = costs.first().map_or(0, |r| r.len());
        a.solve(costs.len(), cols, thresh, &edges(costs), &mut out);
        out.sort_unstable();
        out
    }

    #[test]
    fn picks_global_optimum_not_greedy() {
        // Greedy would take (0,0)=0.1 and then (1,1)=0.9 (over the gate).
        let out = solve(&[&[0.1, 0.2], &[0.15, 0.9]], 0.8);
        assert_eq!(out, [(0, 1), (1, 0)]);
    }

    #[test]
    fn gate_rejects_expensive_pairs_and_handles_rectangles() {
        assert_eq!(solve(&[&[0.9], &[0.85], &[0.3]], 0.8), [(2, 0)]);
        assert_eq!(solve(&[&[0.9, 0.5, 0.95]], 0.8), [(0, 1)]);
        assert_eq!(solve(&[&[0.8]], 0.8), [(0, 0)]);
        assert!(solve(&[&[0.81]], 0.8).is_empty());
        assert!(solve(&[], 0.8).is_empty());
    }

    #[test]
    fn unlisted_pairs_are_never_matched() {
        let mut a = Assigner::default();
        let mut out = Vec::new();
        a.solve(2, 2, 0.8, &[(0, 1, 0.5), (1, 0, 0.5)], &mut out);
        out.sort_unstable();
        assert_eq!(out, [(0, 1), (1, 0)]);
    }

    #[test]
    fn matches_lapjv_cost_limit_semantics() {
        // lapjv with cost_limit 0.8 charges 0.4 per unmatched row and column:
        // {(0,1)} costs 0.1 + 0.4 + 0.4 = 0.9, both diagonal pairs 1.5, so a
        // single good pair beats two poor ones.
        assert_eq!(solve(&[&[0.75, 0.1], &[0.9, 0.75]], 0.8), [(0, 1)]);
        // ... but two decent pairs (0.6) beat one excellent one (0.0 + 0.8).
        assert_eq!(solve(&[&[0.3, 0.0], &[0.9, 0.3]], 0.8), [(0, 0), (1, 1)]);
    }

    /// Best total of `thresh − cost` over all partial matchings, by brute force.
    fn brute_best(costs: &[Vec<f64>], thresh: f64, row: usize, used: &mut Vec<bool>) -> f64 {
        if row == costs.len() {
            return 0.0;
        }
        let mut best = brute_best(costs, thresh, row + 1, used);
        for c in 0..used.len() {
            if !used[c] && costs[row][c] <= thresh {
                used[c] = true;
                let v = thresh - costs[row][c] + brute_best(costs, thresh, row + 1, used);
                used[c] = false;
                best = best.max(v);
            }
        }
        best
    }

    #[test]
    fn agrees_with_brute_force_on_random_sparse_matrices() {
        let mut seed = 12345u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut a = Assigner::default();
        for case in 0..300 {
            let rows = 1 + (next() * 6.0) as usize;
            let cols = 1 + (next() * 6.0) as usize;
            let costs: Vec<Vec<f64>> = (0..rows)
                .map(|_| {
                    (0..cols)
                        .map(|_| if next() < 0.5 { 1.0 } else { next() })
                        .collect()
                })
                .collect();
            let mut out = Vec::new();
            a.solve(rows, cols, 0.8, &edges(&costs), &mut out);
            let got: f64 = out.iter().map(|&(r, c)| 0.8 - costs[r][c]).sum();
            let want = brute_best(&costs, 0.8, 0, &mut vec![false; cols]);
            assert!(
                (got - want).abs() < 1e-4,
                "case {case}: {got} vs {want} for {costs:?}"
            );
            let mut rs: Vec<_> = out.iter().map(|p| p.0).collect();
            let mut cs: Vec<_> = out.iter().map(|p| p.1).collect();
            rs.sort_unstable();
            rs.dedup();
            cs.sort_unstable();
            cs.dedup();
            assert_eq!((rs.len(), cs.len()), (out.len(), out.len()));
        }
    }
}
