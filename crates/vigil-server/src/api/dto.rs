//! The API's bodies and their OpenAPI schemas. `*Doc` types exist only
//! for the document, where the real type's serde shape cannot derive one.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use vigil_core::Detection;
use vigil_jobs::JobStatus;

use super::params::{IntRange, NumRange};

/// An opaque upload (`format: binary`).
pub struct Binary;

impl utoipa::PartialSchema for Binary {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .into()
    }
}

impl ToSchema for Binary {}

/// `POST /v1/jobs` as `multipart/form-data`: the `video` part is read,
/// any other part is skipped (so a plain HTML form works).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct JobUpload {
    #[schema(value_type = String, format = Binary)]
    pub(crate) video: Vec<u8>,
}

/// A detection as the API returns it (mirrors `vigil_core::Detection`).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DetectionDoc {
    pub(crate) class_id: u32,
    pub(crate) label: String,
    pub(crate) score: f32,
    /// `[x1, y1, x2, y2]` in source-frame pixels.
    pub(crate) bbox: [f32; 4],
    /// Present when tracking is on.
    pub(crate) track_id: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub(crate) status: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    pub(crate) ready: bool,
    /// `cpu`, `cuda` or `openvino` (what `auto` resolved to); absent until loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) device: Option<String>,
    /// `fp32`, `bf16`, `fp16` or `int8` (what `auto` resolved to).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) precision: Option<String>,
    /// The ONNX Runtime in use, `onnxruntime-<version>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) backend: Option<String>,
    /// The model's file name (never its path on the server).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) model: Option<String>,
    /// Why not ready yet: the model loading, or the job queue (NATS) not
    /// reachable yet, with the last error. Absent once ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
}

/// What `POST /v1/detect` found, in the pixels of the picture as shown.
#[derive(Serialize, ToSchema)]
pub struct DetectResponse {
    /// The picture's width as shown: after its EXIF orientation (a phone's
    /// portrait photo stored landscape is answered portrait).
    pub(crate) width: u32,
    /// The picture's height as shown (after its EXIF orientation).
    pub(crate) height: u32,
    /// Boxes in the picture's own pixels, also when a large JPEG was
    /// decoded at a fraction of its size for the model.
    #[schema(value_type = Vec<DetectionDoc>)]
    pub(crate) detections: Vec<Detection>,
}

/// The query of `POST /v1/jobs` (documentation; [`job_params`] parses it
/// with the limits below).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct JobQuery {
    /// Run the detector on every Nth frame. With `fps` too, both apply:
    /// every Nth frame, and of those at most `fps` a second.
    #[param(minimum = 1, maximum = 1000000)]
    pub(crate) every: Option<u64>,
    /// Run the detector at most this many frames per second of video time.
    #[param(exclusive_minimum = 0, maximum = 1000)]
    pub(crate) fps: Option<f64>,
    /// Minimum score reported. At least this daemon's `model.conf` (the
    /// document's `minimum`): the detector has already dropped lower boxes.
    #[param(minimum = 0, maximum = 1)]
    pub(crate) conf: Option<f64>,
    /// Report ByteTrack tracks (with `track_id`) rather than raw
    /// detections. Default true.
    pub(crate) track: Option<bool>,
}

/// `every` of a job: 1 = every frame; a million frames is hours of video.
pub const JOB_EVERY: IntRange = IntRange {
    min: 1,
    max: 1_000_000,
};
/// `fps` of a job, as a stream's `fps` in the config.
pub const JOB_FPS: NumRange = NumRange {
    min: 0.0,
    min_exclusive: true,
    max: 1000.0,
};
/// `limit` of `GET /v1/events`: a page, not the whole outbox.
pub const EVENTS_LIMIT: IntRange = IntRange { min: 1, max: 1000 };

#[derive(Serialize, ToSchema)]
pub struct JobCreated {
    pub(crate) id: String,
    /// Always `queued`.
    pub(crate) status: JobStatus,
}

#[derive(Serialize, ToSchema)]
pub struct JobView {
    pub(crate) id: String,
    pub(crate) status: JobStatus,
    /// 0.0–1.0: frames done / frames total.
    #[schema(minimum = 0, maximum = 1)]
    pub(crate) progress: f64,
    pub(crate) frames_done: u64,
    pub(crate) frames_total: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    /// With `queue.backend = "nats"`: the worker (`host/pid`) running or
    /// that ran the job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) worker: Option<String>,
}

/// The body of `POST /v1/streams`: the fields of a `[[streams]]` entry
/// (`every` and `fps` exclusive). Unknown fields are refused.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct StreamConfigDoc {
    /// Unique; appears in URLs and metric labels.
    #[schema(pattern = r"^[A-Za-z0-9_.-]{1,64}$")]
    pub(crate) id: String,
    /// A camera URL (`rtsp://user:pass@host/path`; credentials are masked
    /// wherever the URL is shown).
    #[schema(pattern = r"^(rtsp|rtsps|http|https)://\S+$")]
    pub(crate) url: String,
    /// Run the detector on every Nth frame.
    #[schema(minimum = 1, maximum = 4294967295_u64)]
    pub(crate) every: Option<u64>,
    /// Run the detector at most this many frames per second.
    #[schema(exclusive_minimum = 0, maximum = 1000)]
    pub(crate) fps: Option<f64>,
    /// Files only (config streams): network streams reconnect instead.
    #[schema(nullable = false)]
    r#loop: Option<bool>,
    /// Decoded frames buffered before the oldest is dropped (default 8).
    #[schema(nullable = false, minimum = 1, maximum = 1024)]
    pub(crate) ring_capacity: Option<u64>,
    /// No frame for this long → reconnect (default 10).
    #[schema(nullable = false, exclusive_minimum = 0, maximum = 3600)]
    pub(crate) stall_timeout_s: Option<f64>,
    /// First reconnect delay, doubling up to `reconnect_max_s` (default 1).
    #[schema(nullable = false, exclusive_minimum = 0, maximum = 3600)]
    pub(crate) reconnect_initial_s: Option<f64>,
    /// Longest reconnect delay (default 30); at least `reconnect_initial_s`.
    #[schema(nullable = false, exclusive_minimum = 0, maximum = 3600)]
    pub(crate) reconnect_max_s: Option<f64>,
    #[schema(nullable = false)]
    pub(crate) transport: Option<TransportDoc>,
    /// Zones for `zone.entered` / `zone.left` events.
    #[schema(nullable = false)]
    pub(crate) zones: Option<Vec<ZoneDoc>>,
    /// Counting lines for `line.crossed` events.
    #[schema(nullable = false)]
    pub(crate) lines: Option<Vec<LineDoc>>,
    /// `false` pauses the stream without forgetting it (default `true`).
    #[schema(nullable = false)]
    pub(crate) enabled: Option<bool>,
    /// Object filters by class label, or `"*"` for every class.
    #[schema(nullable = false)]
    pub(crate) filters: Option<std::collections::BTreeMap<String, ObjectFilterDoc>>,
    /// Polygons where detections are ignored.
    #[schema(nullable = false, max_items = 64)]
    pub(crate) masks: Option<Vec<MaskDoc>>,
    /// Which events the stream raises.
    #[schema(nullable = false)]
    pub(crate) events: Option<StreamEventsDoc>,
    /// Overrides of `[tracker]` keys for this stream, e.g. `{"track_buffer": 60}`.
    #[schema(value_type = Option<Object>)]
    pub(crate) tracker: Option<serde_json::Value>,
    /// Motion gating (`[streams.motion]`): the detector runs only when
    /// something moved; on by default.
    #[schema(nullable = false)]
    pub(crate) motion: Option<MotionDoc>,
}

/// The body of `PATCH /v1/streams/{id}`: a JSON merge patch (RFC 7396) of
/// the stream's settings. Every key is optional; `null` resets a key to its
/// default; arrays are replaced whole, objects (`filters`, `events`,
/// `tracker`) merged key by key. `id` may only repeat the current id; a
/// `url` sent back masked keeps the stored one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct StreamPatchDoc {
    #[schema(pattern = r"^[A-Za-z0-9_.-]{1,64}$")]
    pub(crate) id: Option<String>,
    #[schema(pattern = r"^(rtsp|rtsps|http|https)://\S+$")]
    pub(crate) url: Option<String>,
    #[schema(minimum = 1, maximum = 4294967295_u64)]
    pub(crate) every: Option<u64>,
    #[schema(exclusive_minimum = 0, maximum = 1000)]
    pub(crate) fps: Option<f64>,
    r#loop: Option<bool>,
    #[schema(minimum = 1, maximum = 1024)]
    pub(crate) ring_capacity: Option<u64>,
    #[schema(exclusive_minimum = 0, maximum = 3600)]
    pub(crate) stall_timeout_s: Option<f64>,
    #[schema(exclusive_minimum = 0, maximum = 3600)]
    pub(crate) reconnect_initial_s: Option<f64>,
    #[schema(exclusive_minimum = 0, maximum = 3600)]
    pub(crate) reconnect_max_s: Option<f64>,
    pub(crate) transport: Option<TransportDoc>,
    pub(crate) zones: Option<Vec<ZoneDoc>>,
    pub(crate) lines: Option<Vec<LineDoc>>,
    pub(crate) enabled: Option<bool>,
    #[schema(value_type = Option<Object>)]
    pub(crate) filters: Option<serde_json::Value>,
    #[schema(max_items = 64)]
    pub(crate) masks: Option<Vec<MaskDoc>>,
    #[schema(value_type = Option<Object>)]
    pub(crate) events: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub(crate) tracker: Option<serde_json::Value>,
    pub(crate) motion: Option<MotionPatchDoc>,
}

/// `motion` in a merge patch: keys merge one by one, and a key set to
/// `null` goes back to its default (RFC 7396 removes it).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct MotionPatchDoc {
    pub(crate) enabled: Option<bool>,
    #[schema(exclusive_minimum = 0, maximum = 255)]
    pub(crate) threshold: Option<f64>,
    #[schema(exclusive_minimum = 0, maximum = 1)]
    pub(crate) min_area: Option<f64>,
    #[schema(exclusive_minimum = 0, maximum = 86400)]
    pub(crate) stationary_after_s: Option<f64>,
    #[schema(exclusive_minimum = 0, maximum = 86400)]
    pub(crate) check_every_s: Option<f64>,
}

/// A stream's motion gating (`[streams.motion]`); keys left out keep their
/// defaults (in a `PATCH`: their current values).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct MotionDoc {
    /// Gate the detector on motion (default `true`).
    #[schema(nullable = false)]
    pub(crate) enabled: Option<bool>,
    /// Noise floor: least change of a thumbnail cell's luma (default 12).
    #[schema(nullable = false, exclusive_minimum = 0, maximum = 255)]
    pub(crate) threshold: Option<f64>,
    /// Least connected changed area, a fraction of the frame (default 0.003).
    #[schema(nullable = false, exclusive_minimum = 0, maximum = 1)]
    pub(crate) min_area: Option<f64>,
    /// Seconds a box must stay put to become stationary (default 3).
    #[schema(nullable = false, exclusive_minimum = 0, maximum = 86400)]
    pub(crate) stationary_after_s: Option<f64>,
    /// Seconds between check frames while nothing moves (default 5).
    #[schema(nullable = false, exclusive_minimum = 0, maximum = 86400)]
    pub(crate) check_every_s: Option<f64>,
}

/// One entry of a stream's `filters`; a class entry overrides `"*"` key
/// by key. Detections failing a filter start no track and raise no event.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct ObjectFilterDoc {
    #[schema(nullable = false, minimum = 0, maximum = 1)]
    pub(crate) min_score: Option<f64>,
    /// Box area: pixels when above 1, else a fraction of the frame.
    #[schema(nullable = false, minimum = 0, maximum = 1000000000)]
    pub(crate) min_area: Option<f64>,
    #[schema(nullable = false, minimum = 0, maximum = 1000000000)]
    pub(crate) max_area: Option<f64>,
    /// Box width / height.
    #[schema(nullable = false, minimum = 0, maximum = 1000000000)]
    pub(crate) min_ratio: Option<f64>,
    #[schema(nullable = false, minimum = 0, maximum = 1000000000)]
    pub(crate) max_ratio: Option<f64>,
    /// Processed frames a track must be seen in before it raises events.
    #[schema(nullable = false, minimum = 0, maximum = 10000)]
    pub(crate) min_frames: Option<u64>,
}

/// How a mask decides that a detection lies in it.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum MaskTestDoc {
    /// The box's bottom-centre is inside (the default).
    BottomCenter,
    /// At least `min_overlap` of the box's area is inside.
    Overlap,
}

/// A polygon where detections are ignored.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct MaskDoc {
    #[schema(nullable = false)]
    pub(crate) name: Option<String>,
    #[schema(min_items = 3, max_items = 1000, value_type = Vec<[f64; 2]>)]
    pub(crate) points: Vec<[f64; 2]>,
    #[schema(nullable = false)]
    pub(crate) units: Option<UnitsDoc>,
    #[schema(nullable = false)]
    pub(crate) test: Option<MaskTestDoc>,
    /// With `test = "overlap"` (default 0.5).
    #[schema(nullable = false, exclusive_minimum = 0, maximum = 1)]
    pub(crate) min_overlap: Option<f64>,
    /// Labels the mask applies to; empty = every label.
    #[schema(nullable = false)]
    pub(crate) classes: Option<Vec<String>>,
}

/// A stream's `events` settings.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct StreamEventsDoc {
    /// Event types raised; empty = all.
    #[schema(nullable = false, value_type = Option<Vec<EventTypeDoc>>)]
    pub(crate) types: Option<Vec<vigil_core::EventType>>,
}

/// RTSP transport.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum TransportDoc {
    Tcp,
    Udp,
}

/// Coordinates of a zone's points or a line's ends: source pixels, or
/// fractions (0–1) of the frame.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum UnitsDoc {
    Px,
    Norm,
}

/// Which point of a box places an object.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum AnchorDoc {
    BottomCenter,
    Center,
    TopCenter,
    BottomLeft,
    BottomRight,
    TopLeft,
    TopRight,
}

/// A polygonal zone. Names are unique per stream; the polygon must have an
/// area; with `units = "norm"` coordinates are at most 1.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct ZoneDoc {
    #[schema(pattern = r"^[A-Za-z0-9_.-]{1,64}$")]
    pub(crate) name: String,
    #[schema(min_items = 3, value_type = Vec<[f64; 2]>)]
    pub(crate) points: Vec<[f64; 2]>,
    #[schema(nullable = false)]
    pub(crate) units: Option<UnitsDoc>,
    /// Labels that count; empty = every label.
    #[schema(nullable = false)]
    pub(crate) classes: Option<Vec<String>>,
    #[schema(nullable = false, minimum = 0, maximum = 1)]
    pub(crate) min_score: Option<f64>,
    #[schema(nullable = false, minimum = 1, maximum = 10000)]
    pub(crate) min_frames: Option<u64>,
    #[schema(nullable = false)]
    pub(crate) anchor: Option<AnchorDoc>,
}

/// A counting line from `a` to `b` (which must differ). Names are unique
/// per stream.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct LineDoc {
    #[schema(pattern = r"^[A-Za-z0-9_.-]{1,64}$")]
    pub(crate) name: String,
    pub(crate) a: [f64; 2],
    pub(crate) b: [f64; 2],
    #[schema(nullable = false)]
    pub(crate) units: Option<UnitsDoc>,
    #[schema(nullable = false)]
    pub(crate) classes: Option<Vec<String>>,
    #[schema(nullable = false, minimum = 0, maximum = 1)]
    pub(crate) min_score: Option<f64>,
    /// Hysteresis band in pixels (default 2 % of the frame diagonal).
    #[schema(nullable = false, minimum = 0, maximum = 10000)]
    pub(crate) min_distance: Option<f64>,
    #[schema(nullable = false, minimum = 0, maximum = 100000)]
    pub(crate) cooldown_frames: Option<u64>,
}

/// The query of `GET /v1/events` (documentation; [`events`] parses it).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct EventsQuery {
    /// Most events returned (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub(crate) limit: Option<u64>,
    /// Only events with this delivery status.
    pub(crate) status: Option<EventStatusDoc>,
}

/// Delivery status of an event: `pending` until every matching webhook has
/// it, `dead` after `max_attempts`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum EventStatusDoc {
    Pending,
    Delivered,
    Dead,
}

/// An event type: the schema lists [`vigil_core::EventType::ALL`], so
/// the document cannot drift from the enum the daemon raises.
pub struct EventTypeDoc;

impl utoipa::PartialSchema for EventTypeDoc {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("An event type (the contract's names)."))
            .enum_values(Some(
                vigil_core::EventType::ALL.map(vigil_core::EventType::as_str),
            ))
            .into()
    }
}

impl ToSchema for EventTypeDoc {}

/// One webhook's delivery of an event.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DeliveryDoc {
    /// The webhook URL without credentials or query.
    pub(crate) webhook: String,
    pub(crate) status: EventStatusDoc,
    pub(crate) attempts: u64,
    pub(crate) last_error: Option<String>,
}

/// An event as stored, with its delivery status. Stream-level events
/// (`drift.detected`, `camera.anomaly`) have no track fields and carry
/// their own fields at the top level.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct EventRecordDoc {
    /// UUID; receivers deduplicate on it.
    pub(crate) id: String,
    pub(crate) r#type: EventTypeDoc,
    pub(crate) stream: String,
    /// Wall-clock capture time, RFC 3339 UTC.
    pub(crate) at: String,
    pub(crate) pts_ms: f64,
    pub(crate) track_id: Option<u64>,
    pub(crate) label: Option<String>,
    pub(crate) score: Option<f64>,
    /// `[x1, y1, x2, y2]` in source pixels.
    pub(crate) bbox: Option<[f64; 4]>,
    pub(crate) zone: Option<String>,
    pub(crate) line: Option<String>,
    /// `in` or `out`.
    pub(crate) direction: Option<String>,
    pub(crate) snapshot_url: Option<String>,
    pub(crate) status: EventStatusDoc,
    pub(crate) deliveries: Vec<DeliveryDoc>,
}
