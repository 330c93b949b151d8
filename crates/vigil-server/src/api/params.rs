//! Query-string parsing that refuses exactly what the OpenAPI document
//! forbids, naming the parameter.
//!
//! axum's `Query<T>` would accept unknown keys, let the last of repeated
//! keys win and answer a type error with serde's wording ("invalid digit
//! found in string") without saying which parameter; a client generated
//! from the document needs the server to draw the same lines the document
//! draws. Every limit lives in one [`IntRange`] / [`NumRange`] that both
//! the parser and the document read.

use std::collections::HashMap;

use crate::api::error::ApiError;

/// The query string as key → value, unknown and repeated keys refused.
pub struct QueryParams {
    values: HashMap<String, String>,
}

impl QueryParams {
    /// `pairs` as axum's `Query<Vec<(String, String)>>` decodes them;
    /// `known` are the parameters the route documents.
    pub fn parse(pairs: Vec<(String, String)>, known: &[&str]) -> Result<Self, ApiError> {
        let mut values = HashMap::new();
        for (k, v) in pairs {
            if !known.contains(&k.as_str()) {
                return Err(ApiError::BadRequest(format!(
                    "unknown query parameter {k:?}; this route takes {}",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                )));
            }
            if values.contains_key(&k) {
                return Err(ApiError::BadRequest(format!(
                    "query parameter {k:?} is given more than once"
                )));
            }
            values.insert(k, v);
        }
        Ok(Self { values })
    }

    fn raw(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// An integer within `range`, or `None` when absent.
    pub fn int(&self, name: &str, range: IntRange) -> Result<Option<u64>, ApiError> {
        let Some(raw) = self.raw(name) else {
            return Ok(None);
        };
        match raw.parse::<u64>() {
            Ok(v) if (range.min..=range.max).contains(&v) => Ok(Some(v)),
            _ => Err(ApiError::BadRequest(format!(
                "{name} must be an integer from {} to {}, got {raw:?}",
                range.min, range.max
            ))),
        }
    }

    /// A finite number within `range`, or `None` when absent.
    pub fn number(&self, name: &str, range: NumRange) -> Result<Option<f64>, ApiError> {
        let Some(raw) = self.raw(name) else {
            return Ok(None);
        };
        match raw.parse::<f64>() {
            Ok(v) if v.is_finite() && range.contains(v) => Ok(Some(v)),
            _ => Err(ApiError::BadRequest(format!(
                "{name} must be a number {}, got {raw:?}",
                range.describe()
            ))),
        }
    }

    /// `true` or `false` (the only spellings the document allows).
    pub fn boolean(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.raw(name) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(raw) => Err(ApiError::BadRequest(format!(
                "{name} must be true or false, got {raw:?}"
            ))),
        }
    }

    /// One of `allowed`, or `None` when absent.
    pub fn choice<'a>(&self, name: &str, allowed: &[&'a str]) -> Result<Option<&'a str>, ApiError> {
        let Some(raw) = self.raw(name) else {
            return Ok(None);
        };
        allowed
            .iter()
            .find(|a| **a == raw)
            .map(|a| Some(*a))
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "{name} must be one of {}, got {raw:?}",
                    allowed.join(", ")
                ))
            })
    }
}

/// Inclusive integer bounds of a parameter.
#[derive(Debug, Clone, Copy)]
pub struct IntRange {
    pub min: u64,
    pub max: u64,
}

/// Bounds of a number parameter; the lower one may be exclusive.
#[derive(Debug, Clone, Copy)]
pub struct NumRange {
    pub min: f64,
    pub min_exclusive: bool,
    pub max: f64,
}

impl NumRange {
    fn contains(self, v: f64) -> bool {
        let above = if self.min_exclusive {
            v > self.min
        } else {
            v >= self.min
        };
        above && v <= self.max
    }

    fn describe(self) -> String {
        if self.min_exclusive {
            format!("above {} and at most {}", self.min, self.max)
        } else {
            format!("from {} to {}", self.min, self.max)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)], known: &[&str]) -> Result<QueryParams, ApiError> {
        QueryParams::parse(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            known,
        )
    }

    fn message(e: ApiError) -> String {
        e.to_string()
    }

    #[test]
    fn unknown_and_repeated_keys_are_named() {
        let e = q(&[("evry", "2")], &["every", "fps"]).err().map(message);
        assert!(e.is_some_and(|m| m.contains("\"evry\"") && m.contains("every, fps")));
        let e = q(&[("limit", "1"), ("limit", "2")], &["limit"])
            .err()
            .map(message);
        assert!(e.is_some_and(|m| m.contains("\"limit\" is given more than once")));
    }

    #[test]
    fn integers_outside_the_range_are_refused() {
        let r = IntRange { min: 1, max: 1000 };
        let p = q(&[("limit", "2147483648")], &["limit"]).ok();
        let e = p.map(|p| p.int("limit", r).err().map(message));
        assert!(e
            .flatten()
            .is_some_and(|m| m.contains("limit must be an integer from 1 to 1000")));
        for bad in ["0", "-1", "1.5", "", "abc"] {
            let p = q(&[("limit", bad)], &["limit"]).ok();
            assert!(p.is_some_and(|p| p.int("limit", r).is_err()), "{bad:?}");
        }
        let p = q(&[("limit", "1000")], &["limit"]).ok();
        assert_eq!(
            p.map(|p| p.int("limit", r).ok().flatten()),
            Some(Some(1000))
        );
    }

    #[test]
    fn numbers_must_be_finite_and_within_bounds() {
        let r = NumRange {
            min: 0.0,
            min_exclusive: true,
            max: 1000.0,
        };
        for bad in ["0", "NaN", "inf", "1e400", "1000.5", "x"] {
            let p = q(&[("fps", bad)], &["fps"]).ok();
            assert!(p.is_some_and(|p| p.number("fps", r).is_err()), "{bad:?}");
        }
        let p = q(&[("fps", "0.5")], &["fps"]).ok();
        assert_eq!(
            p.map(|p| p.number("fps", r).ok().flatten()),
            Some(Some(0.5))
        );
    }

    #[test]
    fn booleans_and_choices_take_only_their_spellings() {
        let p = q(&[("track", "1")], &["track"]).ok();
        assert!(p.is_some_and(|p| p.boolean("track").is_err()));
        let p = q(&[("status", "")], &["status"]).ok();
        let e = p.map(|p| p.choice("status", &["pending", "dead"]).err().map(message));
        assert!(e
            .flatten()
            .is_some_and(|m| m.contains("status must be one of pending, dead")));
    }
}
