//! `PATCH /v1/streams/{id}`: RFC 7396 merge patches over a stream's
//! configuration, `If-Match` comparison, and which edits need a restart.

use serde_json::Value;
use vigil_core::config::StreamConfig;
use vigil_video::mask_url;

use super::StreamError;

/// Largest nesting a patch may have; far above any real configuration, low
/// enough that recursion can never exhaust the stack.
const MAX_DEPTH: usize = 32;

/// RFC 7396: objects merge key by key, `null` removes a key, anything else
/// replaces the target.
fn merge(target: &mut Value, patch: &Value, depth: usize) -> Result<(), StreamError> {
    if depth > MAX_DEPTH {
        return Err(StreamError::Invalid(format!(
            "the patch nests deeper than {MAX_DEPTH} levels"
        )));
    }
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return Ok(());
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge(t.entry(k.clone()).or_insert(Value::Null), v, depth + 1)?;
            }
        }
    }
    Ok(())
}

/// `current` with `patch` merged in, parsed back into a configuration.
/// Removing a key resets it to its default. The id cannot change, and a
/// `url` sent back exactly as the API showed it (credentials masked) keeps
/// the stored URL, so a client can round-trip what it read.
pub fn apply(current: &StreamConfig, patch: &Value) -> Result<StreamConfig, StreamError> {
    if !patch.is_object() {
        return Err(StreamError::Invalid(
            "the body must be a JSON object (an RFC 7396 merge patch)".into(),
        ));
    }
    let key = format!("streams[{}]", current.id);
    let mut doc = serde_json::to_value(current)
        .map_err(|e| StreamError::Internal(format!("cannot encode the stream: {e}")))?;
    reject_unknown_nulls(&doc, patch, &key)?;
    reject_nulls_in_arrays(patch, &key)?;
    merge(&mut doc, patch, 0)?;
    if doc.get("id") != Some(&Value::String(current.id.clone())) {
        return Err(StreamError::Invalid(format!(
            "{key}.id: cannot be changed (delete the stream and add it under the new id)"
        )));
    }
    let masked = mask_url(&current.url);
    if doc.get("url").and_then(Value::as_str) == Some(masked.as_str()) {
        doc["url"] = Value::String(current.url.clone());
    }
    serde_json::from_value(doc).map_err(|e| StreamError::Invalid(format!("{key}: {e}")))
}

/// Where `null` stands in a stream document outside a merge: anywhere below
/// the top level. Top-level `every`, `fps` and `tracker` may be `null` (not
/// set, as `GET` shows them); below that a key is left out for its default,
/// so `{"masks": [{"name": null, ...}]}` is refused as the schema says, not
/// read as "no name" by one field's decoder and refused by the next one's.
/// Returns the path of the first `null`, e.g. `masks[0].name`.
pub fn nested_null(doc: &Value) -> Option<String> {
    doc.as_object()?
        .iter()
        .find_map(|(k, v)| if v.is_null() { None } else { first_null(v, k) })
}

/// Why a `null` at `path` is refused (the same words for a new stream and a
/// patch).
pub fn null_refused(path: &str) -> String {
    format!("{path}: null is not a value here; leave the key out for its default")
}

/// The path of the first `null` in `v`, itself at `path`.
fn first_null(v: &Value, path: &str) -> Option<String> {
    match v {
        Value::Null => Some(path.to_string()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, x)| first_null(x, &format!("{path}[{i}]"))),
        Value::Object(m) => m
            .iter()
            .find_map(|(k, x)| first_null(x, &format!("{path}.{k}"))),
        _ => None,
    }
}

/// In a merge patch `null` removes a key of an object, but an array is a
/// value that replaces the old one whole: a `null` inside it is not a
/// removal, and is refused as in a new stream.
fn reject_nulls_in_arrays(patch: &Value, key: &str) -> Result<(), StreamError> {
    fn find(v: &Value, path: &str) -> Option<String> {
        match v {
            Value::Object(m) => m.iter().find_map(|(k, x)| {
                let here = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                find(x, &here)
            }),
            Value::Array(_) => first_null(v, path),
            _ => None,
        }
    }
    match find(patch, "") {
        Some(path) => Err(StreamError::Invalid(format!(
            "{key}.{}",
            null_refused(&path)
        ))),
        None => Ok(()),
    }
}

/// A `null` for a key the document lacks is a no-op in RFC 7396, so an
/// unknown key set to `null` would slip past the strict decoding below. Each
/// such key is tried on a copy of the document: the decoder refuses unknown
/// fields and accepts `null` for a known optional one.
fn reject_unknown_nulls(doc: &Value, patch: &Value, key: &str) -> Result<(), StreamError> {
    fn nulls(
        doc: Option<&Value>,
        patch: &Value,
        path: &mut Vec<String>,
        out: &mut Vec<Vec<String>>,
    ) {
        let Some(obj) = patch.as_object() else { return };
        for (k, v) in obj {
            let here = doc.and_then(|d| d.get(k));
            path.push(k.clone());
            if v.is_null() {
                if here.is_none() {
                    out.push(path.clone());
                }
            } else if v.is_object() {
                nulls(here.filter(|h| h.is_object()), v, path, out);
            }
            path.pop();
        }
    }
    let mut found = Vec::new();
    nulls(Some(doc), patch, &mut Vec::new(), &mut found);
    for path in found {
        let mut probe = doc.clone();
        let mut at = &mut probe;
        for (i, k) in path.iter().enumerate() {
            if !at.is_object() {
                *at = Value::Object(Default::default());
            }
            let Some(obj) = at.as_object_mut() else { break };
            let last = i + 1 == path.len();
            at = obj.entry(k.clone()).or_insert_with(|| {
                if last {
                    Value::Null
                } else {
                    Value::Object(Default::default())
                }
            });
        }
        serde_json::from_value::<StreamConfig>(probe)
            .map_err(|e| StreamError::Invalid(format!("{key}: {e}")))?;
    }
    Ok(())
}

/// Whether going from `a` to `b` needs a new decoder and tracker. Rules
/// (zones, lines, filters, masks, events) apply live; everything else —
/// the URL, sampling, buffering, timeouts, tracker settings, pausing —
/// restarts just this stream.
pub fn needs_restart(a: &StreamConfig, b: &StreamConfig) -> bool {
    let rules_only = |c: &StreamConfig| StreamConfig {
        zones: Vec::new(),
        lines: Vec::new(),
        filters: Default::default(),
        masks: Vec::new(),
        events: Default::default(),
        ..c.clone()
    };
    rules_only(a) != rules_only(b)
}

/// `If-Match` against the current `ETag`: `*`, or a comma-separated list
/// of entity tags (weak ones compared by their value, as for a
/// `PATCH` whose representation is JSON either way).
pub fn etag_matches(header: &str, current: &str) -> bool {
    header
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cam() -> StreamConfig {
        StreamConfig {
            id: "cam".into(),
            url: "rtsp://admin:hunter2@10.0.0.5/live".into(),
            every: Some(2),
            ..StreamConfig::default()
        }
    }

    #[test]
    fn merge_patch_follows_rfc_7396() {
        // The examples of RFC 7396 appendix A that matter here.
        let mut t = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge(&mut t, &json!({"a": "z", "c": {"f": null}}), 0).unwrap();
        assert_eq!(t, json!({"a": "z", "c": {"d": "e"}}));
        let mut t = json!({"a": [{"b": "c"}]});
        merge(&mut t, &json!({"a": [1]}), 0).unwrap();
        assert_eq!(t, json!({"a": [1]}));
        let mut t = json!({"a": "foo"});
        merge(&mut t, &json!({"a": {"bb": {"ccc": null}}}), 0).unwrap();
        assert_eq!(t, json!({"a": {"bb": {}}}));
    }

    #[test]
    fn unknown_keys_are_refused_even_when_null() {
        // Found by the API fuzzer: `{"u": null}` is a no-op merge but not a
        // valid document; a null for a known optional key stays a no-op.
        for bad in [json!({"u": null}), json!({"-": null, "every": 3})] {
            let e = apply(&cam(), &bad).expect_err("unknown key");
            assert!(e.to_string().contains("unknown field"), "{e}");
        }
        let c = apply(&cam(), &json!({"fps": null})).expect("fps is optional");
        assert_eq!(c, cam());
    }

    #[test]
    fn apply_resets_removed_keys_and_keeps_a_masked_url() {
        let c = cam();
        let masked = mask_url(&c.url);
        assert_ne!(masked, c.url);
        let next = apply(&c, &json!({"every": null, "fps": 5.0, "url": masked})).unwrap();
        assert_eq!(next.every, None);
        assert_eq!(next.fps, Some(5.0));
        assert_eq!(next.url, c.url, "the masked echo keeps the real URL");
    }

    #[test]
    fn apply_names_bad_fields() {
        let c = cam();
        let e = apply(&c, &json!({"id": "other"})).unwrap_err().to_string();
        assert!(e.contains("streams[cam].id"), "{e}");
        let e = apply(&c, &json!({"evry": 3})).unwrap_err().to_string();
        assert!(e.contains("evry"), "{e}");
        let e = apply(&c, &json!({"every": "three"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("streams[cam]"), "{e}");
        assert!(apply(&c, &json!([1])).is_err());
        let mut deep = json!(1);
        for _ in 0..100 {
            deep = json!({ "zones": deep });
        }
        assert!(apply(&c, &deep).is_err());
    }

    #[test]
    fn only_non_rule_changes_restart() {
        let c = cam();
        let lines = apply(
            &c,
            &json!({"lines": [{"name": "gate", "a": [0, 1], "b": [2, 3]}],
                    "filters": {"*": {"min_score": 0.5}}}),
        )
        .unwrap();
        assert!(!needs_restart(&c, &lines));
        for p in [
            json!({"url": "rtsp://h/other"}),
            json!({"enabled": false}),
            json!({"every": 3}),
            json!({"tracker": {"track_buffer": 60}}),
            json!({"motion": {"enabled": false}}),
        ] {
            assert!(needs_restart(&c, &apply(&c, &p).unwrap()), "{p}");
        }
    }

    #[test]
    fn null_resets_a_key_of_an_object_but_is_refused_inside_an_array() {
        let set = json!({"motion": {"check_every_s": 2.5, "threshold": 30.0}});
        let c = apply(&cam(), &set).unwrap();
        let back = apply(&c, &json!({"motion": {"check_every_s": null}})).unwrap();
        let defaults = vigil_core::config::MotionConfig::default();
        assert_eq!(back.motion.check_every_s, defaults.check_every_s);
        assert_eq!(back.motion.threshold, 30.0);
        let tri = json!([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]]);
        let line = json!({"name": "l", "a": [0.0, 0.0], "b": [1.0, 1.0], "min_score": null});
        for (patch, path) in [
            (
                json!({"masks": [{"points": tri, "test": null}]}),
                "masks[0].test",
            ),
            (
                json!({"zones": [{"name": "z", "points": tri, "classes": null}]}),
                "zones[0].classes",
            ),
            (json!({"lines": [line]}), "lines[0].min_score"),
        ] {
            let err = apply(&c, &patch).unwrap_err().to_string();
            assert!(
                err.contains(&format!("{path}: null is not a value")),
                "{err}"
            );
        }
        let top = json!({"every": null, "fps": null, "tracker": null});
        assert_eq!(nested_null(&top), None);
        let filter = json!({"filters": {"*": {"min_score": null}}});
        assert_eq!(nested_null(&filter).as_deref(), Some("filters.*.min_score"));
    }

    #[test]
    fn motion_settings_merge_key_by_key_and_reset_with_null() {
        let c = cam();
        let next = apply(&c, &json!({"motion": {"check_every_s": 2.5}})).unwrap();
        assert_eq!(next.motion.check_every_s, 2.5);
        assert!(next.motion.enabled, "untouched keys keep their values");
        let back = apply(&next, &json!({"motion": null})).unwrap();
        assert_eq!(back.motion, vigil_core::config::MotionConfig::default());
        let e = apply(&c, &json!({"motion": {"treshold": 3}}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("treshold"), "{e}");
    }

    #[test]
    fn if_match_forms() {
        assert!(etag_matches("\"3\"", "\"3\""));
        assert!(etag_matches("W/\"3\"", "\"3\""));
        assert!(etag_matches("\"1\", \"3\"", "\"3\""));
        assert!(etag_matches("*", "\"3\""));
        assert!(!etag_matches("\"2\"", "\"3\""));
        assert!(!etag_matches("3", "\"3\""));
    }
}
