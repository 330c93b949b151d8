//! Zone and line configuration, as it appears under a stream's `zones` and
//! `lines` tables.
//!
//! These types live here rather than in `vigil-core` because only the event
//! generator interprets them; the stream config carries them as opaque TOML
//! tables and the daemon turns them into these with [`zones_from_tables`] and
//! [`lines_from_tables`] (core cannot depend on this crate without a cycle).

use serde::{Deserialize, Serialize};
use vigil_core::config::InvalidValue;

/// Coordinate system of a zone's points or a line's ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Units {
    /// Source-frame pixels, as boxes are reported.
    #[default]
    Px,
    /// Fractions of the frame (0–1), scaled by each frame's size, so one
    /// config survives a camera switching resolution.
    Norm,
}

/// Which point of a box decides where an object "is".
///
/// Bottom-centre is the default because for people and vehicles seen from
/// above it is where the object touches the ground, so zones drawn on the
/// floor behave as users expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Anchor {
    #[default]
    BottomCenter,
    Center,
    TopCenter,
    BottomLeft,
    BottomRight,
    TopLeft,
    TopRight,
}

impl Anchor {
    /// The anchor point of `bbox` in pixels.
    pub fn point(self, bbox: &vigil_core::BBox) -> [f32; 2] {
        let cx = (bbox.x1 + bbox.x2) * 0.5;
        let cy = (bbox.y1 + bbox.y2) * 0.5;
        match self {
            Anchor::BottomCenter => [cx, bbox.y2],
            Anchor::Center => [cx, cy],
            Anchor::TopCenter => [cx, bbox.y1],
            Anchor::BottomLeft => [bbox.x1, bbox.y2],
            Anchor::BottomRight => [bbox.x2, bbox.y2],
            Anchor::TopLeft => [bbox.x1, bbox.y1],
            Anchor::TopRight => [bbox.x2, bbox.y1],
        }
    }
}

fn default_min_frames() -> u32 {
    3
}

fn default_cooldown_frames() -> u32 {
    10
}

/// A polygonal zone: `zone.entered` / `zone.left` events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneConfig {
    /// Reported as `zone` in events; `[A-Za-z0-9_.-]`, unique per stream.
    pub name: String,
    /// Polygon vertices (at least 3), in `units`.
    pub points: Vec<[f32; 2]>,
    #[serde(default)]
    pub units: Units,
    /// Labels that count (e.g. `["person"]`); empty = every label.
    #[serde(default)]
    pub classes: Vec<String>,
    /// Observations with a lower track score are ignored for this zone.
    #[serde(default)]
    pub min_score: f32,
    /// Consecutive observations inside (or outside) needed before the state
    /// flips, so a box edge wobbling on the border does not flap.
    #[serde(default = "default_min_frames")]
    pub min_frames: u32,
    #[serde(default)]
    pub anchor: Anchor,
}

/// A counting line (a segment from `a` to `b`): `line.crossed` events.
///
/// Direction convention (image coordinates, y down): standing at `a` and
/// looking towards `b`, the right-hand side is "in". Crossing from the left
/// of a→b to its right is `"in"`, the reverse `"out"`. For a horizontal line
/// drawn left to right, moving down the image is `"in"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineConfig {
    /// Reported as `line` in events; `[A-Za-z0-9_.-]`, unique per stream.
    pub name: String,
    pub a: [f32; 2],
    pub b: [f32; 2],
    #[serde(default)]
    pub units: Units,
    /// Labels that count; empty = every label.
    #[serde(default)]
    pub classes: Vec<String>,
    #[serde(default)]
    pub min_score: f32,
    #[serde(default)]
    pub anchor: Anchor,
    /// Hysteresis band in source pixels: the anchor must be at least this far
    /// from the line to be on a side. Default: 2 % of the frame diagonal.
    #[serde(default)]
    pub min_distance: Option<f32>,
    /// A crossing back in the opposite direction within this many processed
    /// frames of a counted crossing is not counted.
    #[serde(default = "default_cooldown_frames")]
    pub cooldown_frames: u32,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

fn check_point(p: [f32; 2], units: Units) -> Option<String> {
    if !(p[0].is_finite() && p[1].is_finite()) {
        return Some(format!("coordinates must be finite numbers, got {p:?}"));
    }
    match units {
        Units::Norm if !(0.0..=1.0).contains(&p[0]) || !(0.0..=1.0).contains(&p[1]) => Some(
            format!("normalised coordinates must be within 0..1, got {p:?} (use units = \"px\" for pixels)"),
        ),
        Units::Px if p[0] < 0.0 || p[1] < 0.0 => {
            Some(format!("pixel coordinates must not be negative, got {p:?}"))
        }
        _ => None,
    }
}

fn check_common(
    key: &str,
    name: &str,
    classes: &[String],
    min_score: f32,
    e: &mut Vec<InvalidValue>,
) {
    if !valid_name(name) {
        e.push(InvalidValue::new(
            format!("{key}.name"),
            format!("must be 1-64 characters of A-Z a-z 0-9 _ . - (it appears in events and topics), got {name:?}"),
        ));
    }
    if classes.iter().any(|c| c.trim().is_empty()) {
        e.push(InvalidValue::new(
            format!("{key}.classes"),
            "labels must not be empty",
        ));
    }
    if !(0.0..=1.0).contains(&min_score) {
        e.push(InvalidValue::new(
            format!("{key}.min_score"),
            format!("must be within 0..1, got {min_score}"),
        ));
    }
}

impl ZoneConfig {
    /// `key` names the zone in errors, e.g. `streams[0].zones[1]`.
    pub fn validate(&self, key: &str) -> Vec<InvalidValue> {
        let mut e = Vec::new();
        check_common(key, &self.name, &self.classes, self.min_score, &mut e);
        if self.points.len() < 3 {
            e.push(InvalidValue::new(
                format!("{key}.points"),
                format!("a zone needs at least 3 points, got {}", self.points.len()),
            ));
        } else if let Some(reason) = self.points.iter().find_map(|p| check_point(*p, self.units)) {
            e.push(InvalidValue::new(format!("{key}.points"), reason));
        } else if crate::geometry::polygon_area(&self.points).abs() <= f32::EPSILON {
            e.push(InvalidValue::new(
                format!("{key}.points"),
                "the polygon has no area (points are collinear or repeated)",
            ));
        }
        if self.min_frames == 0 || self.min_frames > 10_000 {
            e.push(InvalidValue::new(
                format!("{key}.min_frames"),
                format!("must be between 1 and 10000, got {}", self.min_frames),
            ));
        }
        e
    }
}

impl LineConfig {
    /// `key` names the line in errors, e.g. `streams[0].lines[0]`.
    pub fn validate(&self, key: &str) -> Vec<InvalidValue> {
        let mut e = Vec::new();
        check_common(key, &self.name, &self.classes, self.min_score, &mut e);
        for (field, p) in [("a", self.a), ("b", self.b)] {
            if let Some(reason) = check_point(p, self.units) {
                e.push(InvalidValue::new(format!("{key}.{field}"), reason));
            }
        }
        if self.a == self.b {
            e.push(InvalidValue::new(
                format!("{key}.b"),
                "must differ from a (a line needs a length)",
            ));
        }
        if let Some(d) = self.min_distance {
            if !(d.is_finite() && (0.0..=10_000.0).contains(&d)) {
                e.push(InvalidValue::new(
                    format!("{key}.min_distance"),
                    format!("must be within 0..10000 pixels, got {d}"),
                ));
            }
        }
        if self.cooldown_frames > 100_000 {
            e.push(InvalidValue::new(
                format!("{key}.cooldown_frames"),
                format!("must be at most 100000, got {}", self.cooldown_frames),
            ));
        }
        e
    }
}

/// Validates a stream's zones and lines together (names must be unique within
/// each list). `key` is the stream's key, e.g. `streams[0]`.
pub fn validate_all(key: &str, zones: &[ZoneConfig], lines: &[LineConfig]) -> Vec<InvalidValue> {
    let mut e = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, z) in zones.iter().enumerate() {
        let k = format!("{key}.zones[{i}]");
        e.extend(z.validate(&k));
        if !seen.insert(z.name.as_str()) {
            e.push(InvalidValue::new(
                format!("{k}.name"),
                format!("duplicate zone name {:?}", z.name),
            ));
        }
    }
    seen.clear();
    for (i, l) in lines.iter().enumerate() {
        let k = format!("{key}.lines[{i}]");
        e.extend(l.validate(&k));
        if !seen.insert(l.name.as_str()) {
            e.push(InvalidValue::new(
                format!("{k}.name"),
                format!("duplicate line name {:?}", l.name),
            ));
        }
    }
    e
}

fn from_tables<T: serde::de::DeserializeOwned>(
    key: &str,
    list: &str,
    tables: &[toml::Table],
) -> (Vec<T>, Vec<InvalidValue>) {
    let mut ok = Vec::new();
    let mut errs = Vec::new();
    for (i, t) in tables.iter().enumerate() {
        match T::deserialize(toml::Value::Table(t.clone())) {
            Ok(v) => ok.push(v),
            Err(err) => errs.push(InvalidValue::new(
                format!("{key}.{list}[{i}]"),
                err.message().to_string(),
            )),
        }
    }
    (ok, errs)
}

/// Parses a stream's opaque `zones` tables (as `vigil-core`'s
/// `StreamConfig::zones` holds them) and validates them; every problem is
/// returned, named by key. `key` is the stream's key, e.g. `streams[0]`.
pub fn zones_from_tables(
    key: &str,
    tables: &[toml::Table],
) -> Result<Vec<ZoneConfig>, Vec<InvalidValue>> {
    let (zones, mut errs) = from_tables::<ZoneConfig>(key, "zones", tables);
    if errs.is_empty() {
        errs = validate_all(key, &zones, &[]);
    }
    if errs.is_empty() {
        Ok(zones)
    } else {
        Err(errs)
    }
}

/// Parses and validates a stream's opaque `lines` tables; see
/// [`zones_from_tables`].
pub fn lines_from_tables(
    key: &str,
    tables: &[toml::Table],
) -> Result<Vec<LineConfig>, Vec<InvalidValue>> {
    let (lines, mut errs) = from_tables::<LineConfig>(key, "lines", tables);
    if errs.is_empty() {
        errs = validate_all(key, &[], &lines);
    }
    if errs.is_empty() {
        Ok(lines)
    } else {
        Err(errs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_defaults_and_validation() {
        let t: toml::Table = toml::from_str(
            r#"name = "door"
               points = [[0.1, 0.1], [0.5, 0.1], [0.5, 0.9]]
               units = "norm""#,
        )
        .expect("toml");
        let zones = zones_from_tables("streams[0]", &[t]).expect("valid");
        assert_eq!(zones[0].min_frames, 3);
        assert_eq!(zones[0].anchor, Anchor::BottomCenter);
        let bad = ZoneConfig {
            name: "a b".into(),
            points: vec![[0.0, 0.0], [2.0, 0.0]],
            units: Units::Norm,
            classes: vec![],
            min_score: 1.5,
            min_frames: 0,
            anchor: Anchor::Center,
        };
        let keys: Vec<_> = bad.validate("z").into_iter().map(|e| e.key).collect();
        assert_eq!(keys, ["z.name", "z.min_score", "z.points", "z.min_frames"]);
    }

    #[test]
    fn unknown_keys_are_named() {
        let t: toml::Table = toml::from_str(
            r#"name = "l"
               a = [0, 0]
               b = [10, 0]
               colour = "red""#,
        )
        .expect("toml");
        let errs = lines_from_tables("streams[2]", &[t]).expect_err("unknown key");
        assert_eq!(errs[0].key, "streams[2].lines[0]");
        assert!(errs[0].reason.contains("colour"), "{}", errs[0].reason);
    }

    #[test]
    fn line_validation_names_keys() {
        let l = LineConfig {
            name: "gate".into(),
            a: [5.0, 5.0],
            b: [5.0, 5.0],
            units: Units::Px,
            classes: vec![],
            min_score: 0.0,
            anchor: Anchor::default(),
            min_distance: Some(-1.0),
            cooldown_frames: 10,
        };
        let keys: Vec<_> = validate_all("s", &[], &[l.clone(), l])
            .into_iter()
            .map(|e| e.key)
            .collect();
        assert_eq!(
            keys,
            [
                "s.lines[0].b",
                "s.lines[0].min_distance",
                "s.lines[1].b",
                "s.lines[1].min_distance",
                "s.lines[1].name"
            ]
        );
    }
}
