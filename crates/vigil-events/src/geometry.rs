//! Small planar geometry helpers in pixel space.

/// Signed area (shoelace); zero for degenerate polygons.
pub(crate) fn polygon_area(points: &[[f32; 2]]) -> f32 {
    let n = points.len();
    let mut s = 0.0f64;
    for i in 0..n {
        let [x1, y1] = points[i];
        let [x2, y2] = points[(i + 1) % n];
        s += f64::from(x1) * f64::from(y2) - f64::from(x2) * f64::from(y1);
    }
    (s * 0.5) as f32
}

/// Even-odd ray casting. Points exactly on an edge may land either way; the
/// `min_frames` debounce absorbs that.
pub(crate) fn point_in_polygon(p: [f32; 2], poly: &[[f32; 2]]) -> bool {
    let n = poly.len();
    let mut inside = false;
    let mut j = n.wrapping_sub(1);
    for i in 0..n {
        let [xi, yi] = poly[i];
        let [xj, yj] = poly[j];
        if (yi > p[1]) != (yj > p[1]) {
            let x_cross = xi + (p[1] - yi) / (yj - yi) * (xj - xi);
            if p[0] < x_cross {
                inside = !inside;
            }
        }
        j = i;
    }
    inside
}

/// Signed distance of `p` from the infinite line through a→b; positive on the
/// right-hand side of a→b in image coordinates (y down).
pub(crate) fn signed_distance(a: [f32; 2], b: [f32; 2], p: [f32; 2]) -> f32 {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let len = (dx * dx + dy * dy).sqrt();
    if len <= f32::EPSILON {
        return 0.0;
    }
    (dx * (p[1] - a[1]) - dy * (p[0] - a[0])) / len
}

/// Whether the movement p→q passes the segment a→b within its extent, given
/// that p and q are on opposite sides of the infinite line: the point where
/// p→q meets the line must project inside [a, b].
pub(crate) fn crosses_segment(a: [f32; 2], b: [f32; 2], p: [f32; 2], q: [f32; 2]) -> bool {
    let sp = signed_distance(a, b, p);
    let sq = signed_distance(a, b, q);
    if sp == sq {
        return false;
    }
    let t = sp / (sp - sq);
    let x = [p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])];
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let len2 = dx * dx + dy * dy;
    if len2 <= f32::EPSILON {
        return false;
    }
    let u = ((x[0] - a[0]) * dx + (x[1] - a[1]) * dy) / len2;
    (0.0..=1.0).contains(&u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polygon_membership() {
        let sq = [[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]];
        assert!(point_in_polygon([5.0, 5.0], &sq));
        assert!(!point_in_polygon([15.0, 5.0], &sq));
        assert!(!point_in_polygon([5.0, -1.0], &sq));
        assert_eq!(polygon_area(&sq), 100.0);
    }

    #[test]
    fn sides_and_extent() {
        let (a, b) = ([0.0, 10.0], [100.0, 10.0]);
        assert!(
            signed_distance(a, b, [50.0, 20.0]) > 0.0,
            "below is right of a→b"
        );
        assert!(signed_distance(a, b, [50.0, 0.0]) < 0.0);
        assert!(crosses_segment(a, b, [50.0, 0.0], [50.0, 20.0]));
        assert!(!crosses_segment(a, b, [150.0, 0.0], [150.0, 20.0]));
    }
}
