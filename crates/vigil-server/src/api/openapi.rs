//! The served OpenAPI document: what the handlers' `#[utoipa::path]`
//! annotations say, plus what is true of every route because of the layers
//! around them, plus this daemon's own limits.
//!
//! Cross-cutting answers live here rather than on each handler so a route
//! added later cannot forget them: every operation can time out (408, the
//! timeout layer) and every operation that declares the bearer scheme can
//! answer 401 (the token middleware). A route with its own 408 or 401
//! description keeps it.

use serde_json::{json, Map, Value};
use utoipa::OpenApi;
use vigil_core::config::Config;

use crate::api::ApiDoc;

/// The document as `/openapi.json` serves it for a daemon running `cfg`.
pub fn document(cfg: &Config) -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_else(|e| {
        // Serialising utoipa's own types cannot fail; if it ever did, an
        // empty document is a clearer answer than a 500 on every fetch.
        tracing::error!(error = %e, "cannot serialise the OpenAPI document");
        json!({})
    });
    add_common_responses(&mut doc, cfg);
    tune_job_query(&mut doc, cfg);
    exclusive_every_fps(&mut doc);
    fix_link_keys(&mut doc);
    doc
}

/// utoipa 5.5 writes a link's fields in snake case (`operation_id`); the
/// OpenAPI spelling is camel case, and clients ignore the others.
fn fix_link_keys(doc: &mut Value) {
    for (_path, op) in operations(doc) {
        let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
            continue;
        };
        for links in responses
            .values_mut()
            .filter_map(|r| r.get_mut("links"))
            .filter_map(Value::as_object_mut)
        {
            for link in links.values_mut().filter_map(Value::as_object_mut) {
                for (from, to) in [
                    ("operation_id", "operationId"),
                    ("operation_ref", "operationRef"),
                    ("request_body", "requestBody"),
                ] {
                    if let Some(v) = link.remove(from) {
                        link.insert(to.to_string(), v);
                    }
                }
            }
        }
    }
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    })
}

fn operations(doc: &mut Value) -> impl Iterator<Item = (&String, &mut Map<String, Value>)> {
    doc.get_mut("paths")
        .and_then(Value::as_object_mut)
        .into_iter()
        .flat_map(|paths| paths.iter_mut())
        .flat_map(|(path, item)| {
            item.as_object_mut()
                .into_iter()
                .flat_map(|m| m.values_mut())
                .filter_map(Value::as_object_mut)
                .map(move |op| (path, op))
        })
}

/// Every operation with its HTTP method (the key it sits under).
fn operations_with_method(
    doc: &mut Value,
) -> impl Iterator<Item = (String, &mut Map<String, Value>)> {
    doc.get_mut("paths")
        .and_then(Value::as_object_mut)
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .flat_map(|item| {
            item.as_object_mut()
                .into_iter()
                .flat_map(|m| m.iter_mut())
                .filter_map(|(method, op)| op.as_object_mut().map(|op| (method.clone(), op)))
        })
}

fn add_common_responses(doc: &mut Value, cfg: &Config) {
    let timeout = format!(
        "the request took longer than `server.request_timeout_s` ({} s; uploads: `server.upload_timeout_s`)",
        cfg.server.request_timeout_s
    );
    for (method, op) in operations_with_method(doc) {
        let secured = op
            .get("security")
            .and_then(Value::as_array)
            .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
        let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
            continue;
        };
        responses
            .entry("408")
            .or_insert_with(|| error_response(&timeout));
        // crate::edge: DNS rebinding (Host) and CSRF (Origin) defences.
        responses.entry("421").or_insert_with(|| {
            error_response(
                "no `server.token` is set and `Host` is not an IP address, `localhost` or one of `server.hostnames`",
            )
        });
        if !matches!(method.as_str(), "get" | "head" | "options" | "trace") {
            responses.entry("403").or_insert_with(|| {
                error_response(
                    "a cross-origin request: `Origin` (or `Sec-Fetch-Site: cross-site`) names another site",
                )
            });
        }
        if secured {
            let mut unauthorized = error_response(
                "`server.token` is set and the request has no valid `Authorization: Bearer` header",
            );
            unauthorized["headers"] = json!({
                "WWW-Authenticate": {"schema": {"type": "string"}, "description": "`Bearer realm=\"vigil\"`"}
            });
            responses.entry("401").or_insert(unauthorized);
            // Only browsers carry the console's cookie; bearer clients never
            // see this.
            responses.entry("403").or_insert_with(|| {
                error_response(
                    "authorised by the console's session cookie, but a state change or live view from another origin (`Origin` is not this `Host`)",
                )
            });
        }
    }
}

/// `conf` of a job may not go below `model.conf` (the detector has already
/// dropped those boxes); the minimum is this daemon's, so it is filled in
/// at serving time.
fn tune_job_query(doc: &mut Value, cfg: &Config) {
    let Some(params) = doc
        .pointer_mut("/paths/~1v1~1jobs/post/parameters")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for p in params {
        if p["name"] == "conf" {
            p["schema"]["minimum"] = json!(f64::from(cfg.model.conf));
        }
    }
}

/// A stream's `every` and `fps` are exclusive; JSON Schema can say so.
fn exclusive_every_fps(doc: &mut Value) {
    if let Some(schema) = doc.pointer_mut("/components/schemas/StreamConfigDoc") {
        schema["not"] = json!({"required": ["every", "fps"]});
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Value {
        let mut cfg = Config::default();
        cfg.model.conf = 0.3;
        document(&cfg)
    }

    /// The job status is documented from the one `JobStatus` type, under
    /// the schema name clients already know.
    #[test]
    fn job_status_is_one_documented_enum() {
        let d = doc();
        let s = &d["components"]["schemas"];
        assert_eq!(
            s["JobStatusDoc"]["enum"],
            serde_json::json!(["queued", "running", "succeeded", "failed"])
        );
        assert_eq!(s["JobStatusDoc"]["description"], "A job's state.");
        for view in ["JobView", "JobCreated"] {
            assert_eq!(
                s[view]["properties"]["status"]["$ref"], "#/components/schemas/JobStatusDoc",
                "{view}"
            );
        }
    }

    #[test]
    fn every_v1_operation_documents_401_and_every_operation_408() {
        let d = doc();
        let paths = d["paths"].as_object().cloned().unwrap_or_default();
        assert!(paths.len() >= 15, "{}", paths.len());
        for (path, item) in &paths {
            for (method, op) in item.as_object().cloned().unwrap_or_default() {
                let r = &op["responses"];
                assert!(r.get("408").is_some(), "{method} {path}: no 408");
                // The console's sign-in is the one open /v1 route (it is
                // how a browser gets its credentials); its 401 is a wrong
                // token, checked in its own test.
                let secured = path.starts_with("/v1/");
                if path == "/v1/session" {
                    continue;
                }
                assert_eq!(
                    r.get("401").is_some(),
                    secured,
                    "{method} {path}: 401 documented iff the route needs the token"
                );
                assert!(
                    op.get("operationId").and_then(Value::as_str).is_some(),
                    "{method} {path}: no operationId"
                );
            }
        }
    }

    #[test]
    fn the_console_sign_in_is_open_and_says_when_it_refuses() {
        let d = doc();
        let session = &d["paths"]["/v1/session"];
        for method in ["get", "post", "delete"] {
            assert!(session[method]["security"].is_null(), "{method}");
        }
        assert!(session["get"]["responses"].get("401").is_none());
        assert!(session["post"]["responses"].get("401").is_some());
        let live = &d["paths"]["/v1/streams/{id}/live"]["get"]["responses"];
        for code in ["101", "401", "403", "404", "426"] {
            assert!(live.get(code).is_some(), "live: {code}");
        }
    }

    #[test]
    fn parameters_carry_their_ranges_and_enums() {
        let d = doc();
        let job = &d["paths"]["/v1/jobs"]["post"]["parameters"];
        let param = |name: &str| {
            job.as_array()
                .and_then(|a| a.iter().find(|p| p["name"] == name))
                .map(|p| p["schema"].clone())
                .unwrap_or(Value::Null)
        };
        assert_eq!(param("every")["minimum"], 1);
        assert_eq!(param("every")["maximum"], 1_000_000);
        assert_eq!(param("fps")["exclusiveMinimum"], 0);
        assert_eq!(param("conf")["minimum"], json!(f64::from(0.3f32)));
        assert_eq!(param("conf")["maximum"], 1);
        let events = &d["paths"]["/v1/events"]["get"]["parameters"];
        let limit = events
            .as_array()
            .and_then(|a| a.iter().find(|p| p["name"] == "limit"))
            .map(|p| p["schema"].clone())
            .unwrap_or(Value::Null);
        assert_eq!(
            (limit["minimum"].clone(), limit["maximum"].clone()),
            (json!(1), json!(1000))
        );
        let status = &d["components"]["schemas"]["EventStatusDoc"]["enum"];
        assert_eq!(status, &json!(["pending", "delivered", "dead"]));
    }

    #[test]
    fn creations_link_to_the_created_resources() {
        let d = doc();
        let links = &d["paths"]["/v1/jobs"]["post"]["responses"]["202"]["links"];
        assert!(
            !d.to_string().contains("operation_id"),
            "snake-case link keys left"
        );
        for (name, op) in [
            ("status", "get_job"),
            ("video", "job_video"),
            ("detections", "job_detections"),
        ] {
            assert_eq!(links[name]["operationId"], op, "{links}");
            assert_eq!(links[name]["parameters"]["id"], "$response.body#/id");
        }
        let links = &d["paths"]["/v1/streams"]["post"]["responses"]["201"]["links"];
        assert_eq!(links["delete"]["operationId"], "delete_stream", "{links}");
        // Every link names an operation that exists.
        let ids: Vec<String> = d["paths"]
            .as_object()
            .into_iter()
            .flat_map(|p| p.values())
            .filter_map(Value::as_object)
            .flat_map(|m| m.values())
            .filter_map(|op| op["operationId"].as_str().map(String::from))
            .collect();
        for l in links.as_object().into_iter().flat_map(|m| m.values()) {
            let target = l["operationId"].as_str().unwrap_or("");
            assert!(
                ids.iter().any(|i| i == target),
                "{target} is not an operation"
            );
        }
    }

    #[test]
    fn bodies_are_closed_and_binary_uploads_are_binary() {
        let d = doc();
        let stream = &d["components"]["schemas"]["StreamConfigDoc"];
        assert_eq!(stream["additionalProperties"], false);
        assert_eq!(stream["not"]["required"], json!(["every", "fps"]));
        let detect = &d["paths"]["/v1/detect"]["post"]["requestBody"]["content"];
        for t in ["application/octet-stream", "image/jpeg", "image/png"] {
            assert_eq!(detect[t]["schema"]["format"], "binary", "{t}: {detect}");
        }
        let job = &d["paths"]["/v1/jobs"]["post"]["requestBody"]["content"];
        assert!(job.get("multipart/form-data").is_some(), "{job}");
    }
}
