use serde::{Deserialize, Serialize};

/// An axis-aligned box `[x1, y1, x2, y2]` in source-frame pixels.
///
/// Serialised as a four-element array because that is what the contract's JSON
/// uses; keeping the named fields in Rust avoids index mix-ups.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(from = "[f32; 4]", into = "[f32; 4]")]
pub struct BBox {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl BBox {
    pub const fn new(x1: f32, y1: f32, x2: f32, y2: f32) -> Self {
        Self { x1, y1, x2, y2 }
    }

    /// Builds a box from MOTChallenge-style top-left + size.
    pub fn from_xywh(x: f32, y: f32, w: f32, h: f32) -> Self {
        Self::new(x, y, x + w, y + h)
    }

    pub fn width(&self) -> f32 {
        (self.x2 - self.x1).max(0.0)
    }

    pub fn height(&self) -> f32 {
        (self.y2 - self.y1).max(0.0)
    }

    pub fn area(&self) -> f32 {
        self.width() * self.height()
    }

    pub fn center(&self) -> (f32, f32) {
        ((self.x1 + self.x2) * 0.5, (self.y1 + self.y2) * 0.5)
    }

    /// Intersection over union; 0 for degenerate boxes so callers never divide by zero.
    pub fn iou(&self, other: &BBox) -> f32 {
        let iw = (self.x2.min(other.x2) - self.x1.max(other.x1)).max(0.0);
        let ih = (self.y2.min(other.y2) - self.y1.max(other.y1)).max(0.0);
        let inter = iw * ih;
        let union = self.area() + other.area() - inter;
        if union <= 0.0 {
            0.0
        } else {
            inter / union
        }
    }

    /// Clamps the box to a `width` × `height` frame, as the contract requires.
    pub fn clip(&self, width: f32, height: f32) -> BBox {
        BBox::new(
            self.x1.clamp(0.0, width),
            self.y1.clamp(0.0, height),
            self.x2.clamp(0.0, width),
            self.y2.clamp(0.0, height),
        )
    }
}

impl From<[f32; 4]> for BBox {
    fn from(a: [f32; 4]) -> Self {
        BBox::new(a[0], a[1], a[2], a[3])
    }
}

impl From<BBox> for [f32; 4] {
    fn from(b: BBox) -> Self {
        [b.x1, b.y1, b.x2, b.y2]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_of_identical_is_one_and_disjoint_is_zero() {
        let a = BBox::new(0.0, 0.0, 10.0, 10.0);
        assert!((a.iou(&a) - 1.0).abs() < 1e-6);
        assert_eq!(a.iou(&BBox::new(20.0, 20.0, 30.0, 30.0)), 0.0);
        let half = BBox::new(5.0, 0.0, 15.0, 10.0);
        assert!((a.iou(&half) - 50.0 / 150.0).abs() < 1e-6);
    }

    #[test]
    fn degenerate_boxes_have_zero_iou() {
        let z = BBox::new(1.0, 1.0, 1.0, 1.0);
        assert_eq!(z.iou(&z), 0.0);
    }

    #[test]
    fn serialises_as_array() {
        let b = BBox::new(1.0, 2.0, 3.0, 4.5);
        assert_eq!(serde_json::to_string(&b).unwrap(), "[1.0,2.0,3.0,4.5]");
        let back: BBox = serde_json::from_str("[1,2,3,4.5]").unwrap();
        assert_eq!(back, b);
    }

    #[test]
    fn clip_clamps_each_edge() {
        let b = BBox::new(-5.0, -1.0, 700.0, 50.0).clip(640.0, 480.0);
        assert_eq!(b, BBox::new(0.0, 0.0, 640.0, 50.0));
    }
}
