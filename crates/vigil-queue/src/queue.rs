//! Submitting, claiming and finishing jobs.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{
    self,
    consumer::{pull, AckPolicy, PullConsumer},
    context::Publish,
    kv,
    message::AckKind,
    object_store::{self, ObjectStore},
    stream::{DiscardPolicy, RetentionPolicy, StorageType},
};
use futures_util::StreamExt;
use vigil_core::JobParams;
use vigil_jobs::now_ms;

use crate::record::{input_object, result_object};
use crate::{ctx, EventPublisher, JobRecord, JobStatus, QueueError, SubmitError};

const JOBS_STREAM: &str = "VIGIL_JOBS";
const JOBS_SUBJECT: &str = "vigil.jobs";
const CONSUMER: &str = "vigil-workers";
const JOBS_BUCKET: &str = "vigil-jobs";
const OBJECTS_BUCKET: &str = "vigil-videos";
/// Claims retried when the record changes under us (another node writing
/// the same job at the same instant); more means something is wrong.
const CLAIM_TRIES: usize = 5;

/// How to reach NATS and how the shared queue behaves.
#[derive(Debug, Clone)]
pub struct NatsOptions {
    pub url: String,
    /// A claimed job not reported on for this long goes to another worker.
    pub ack_wait: Duration,
    /// Deliveries before a job is marked failed instead of run again.
    pub max_deliver: u32,
    /// Jobs waiting or running before uploads are refused.
    pub queue_size: usize,
    /// Job records and files expire this long after their last write;
    /// zero keeps them.
    pub retention: Duration,
    /// How long to wait for the server when connecting.
    pub connect_timeout: Duration,
    /// Retention of the events stream.
    pub events_retention: Duration,
}

/// Jobs as the work-queue consumer sees them (for the `vigil_jobs` gauge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueCounts {
    /// Not yet handed to a worker.
    pub waiting: u64,
    /// Handed to a worker and not yet finished.
    pub in_progress: u64,
}

/// A handle on the shared queue; cheap to clone.
#[derive(Clone)]
pub struct NatsQueue(Arc<Inner>);

struct Inner {
    js: jetstream::Context,
    kv: kv::Store,
    objects: ObjectStore,
    consumer: PullConsumer,
    opts: NatsOptions,
}

/// One job message handed to this worker.
pub struct Delivery {
    msg: jetstream::Message,
    /// The job id (the message body).
    pub id: String,
    /// 1 on first delivery; more after a worker died or stalled.
    pub delivered: i64,
}

/// What [`NatsQueue::claim`] found.
pub enum ClaimOutcome {
    /// The job is ours to run.
    Run(Box<Claim>),
    /// Already succeeded or failed (a redelivery after another worker
    /// finished it): nothing to do; the message is acknowledged.
    AlreadyFinished(JobRecord),
    /// Delivered more than `max_deliver` times: marked failed.
    GaveUp(JobRecord),
    /// No record (expired or never written): the message is dropped.
    Missing,
}

/// A job this worker holds. Every write goes through a compare-and-set on
/// the record's revision, so once another worker has claimed the job (this
/// one stalled past `ack_wait`), every further write here fails and this
/// worker's result is discarded: a job completes at most once.
pub struct Claim {
    queue: NatsQueue,
    msg: jetstream::Message,
    record: JobRecord,
    revision: u64,
}

fn encode(r: &JobRecord) -> Result<bytes::Bytes, QueueError> {
    serde_json::to_vec(r)
        .map(bytes::Bytes::from)
        .map_err(ctx("encode job record"))
}

/// A NATS server list for logs and errors: each entry through the one
/// [`vigil_core::mask_url`] (credentials, `token@` and query values hidden).
pub fn mask_nats_url(urls: &str) -> String {
    urls.split(',')
        .map(|u| vigil_core::mask_url(u.trim()))
        .collect::<Vec<_>>()
        .join(",")
}

impl NatsQueue {
    /// Connects and creates (or reuses) the buckets, streams and consumer.
    /// Fails with the URL named when the server does not answer within
    /// `connect_timeout`, rather than waiting forever.
    pub async fn connect(opts: NatsOptions) -> Result<NatsQueue, QueueError> {
        let what = format!("connect to {}", mask_nats_url(&opts.url));
        let connecting = async_nats::ConnectOptions::new()
            .name("vigil")
            .connection_timeout(opts.connect_timeout)
            .connect(opts.url.as_str());
        let client = tokio::time::timeout(opts.connect_timeout, connecting)
            .await
            .map_err(|_| QueueError::new(what.clone(), "timed out"))?
            .map_err(|e| QueueError::new(what, e))?;
        let js = jetstream::new(client);
        let kv = match js.get_key_value(JOBS_BUCKET).await {
            Ok(kv) => kv,
            Err(_) => {
                // The bucket's stream is created by hand, with the KV
                // conventions (ADR-8) that `create_key_value` would use:
                // that call first reads account info in a shape servers
                // before 2.10 (Debian 12 ships 2.9) do not send.
                js.get_or_create_stream(jetstream::stream::Config {
                    name: format!("KV_{JOBS_BUCKET}"),
                    description: Some("vigil job status, one record per job".into()),
                    subjects: vec![format!("$KV.{JOBS_BUCKET}.>")],
                    max_messages_per_subject: 1,
                    max_age: opts.retention,
                    storage: StorageType::File,
                    allow_rollup: true,
                    deny_delete: true,
                    allow_direct: true,
                    discard: DiscardPolicy::New,
                    ..Default::default()
                })
                .await
                .map_err(ctx("create KV bucket vigil-jobs"))?;
                js.get_key_value(JOBS_BUCKET)
                    .await
                    .map_err(ctx("open KV bucket vigil-jobs"))?
            }
        };
        let objects = match js.get_object_store(OBJECTS_BUCKET).await {
            Ok(o) => o,
            Err(_) => js
                .create_object_store(object_store::Config {
                    bucket: OBJECTS_BUCKET.into(),
                    description: Some("vigil uploads and results".into()),
                    max_age: opts.retention,
                    storage: StorageType::File,
                    ..Default::default()
                })
                .await
                .map_err(ctx("create object store vigil-videos"))?,
        };
        let stream = js
            .get_or_create_stream(jetstream::stream::Config {
                name: JOBS_STREAM.into(),
                subjects: vec![JOBS_SUBJECT.into()],
                retention: RetentionPolicy::WorkQueue,
                max_messages: i64::try_from(opts.queue_size).unwrap_or(i64::MAX),
                discard: DiscardPolicy::New,
                storage: StorageType::File,
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            })
            .await
            .map_err(ctx("create stream VIGIL_JOBS"))?;
        // Redelivery limits are enforced here, not by the server: a message
        // the server stops delivering would sit in the work queue forever,
        // with its job stuck in "running".
        let consumer: PullConsumer = stream
            .get_or_create_consumer(
                CONSUMER,
                pull::Config {
                    durable_name: Some(CONSUMER.into()),
                    description: Some("vigil workers".into()),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: opts.ack_wait,
                    ..Default::default()
                },
            )
            .await
            .map_err(ctx("create consumer vigil-workers"))?;
        Ok(NatsQueue(Arc::new(Inner {
            js,
            kv,
            objects,
            consumer,
            opts,
        })))
    }

    /// Starts publishing events to `vigil.events.<stream>.<type>`.
    pub async fn event_publisher(&self) -> Result<EventPublisher, QueueError> {
        EventPublisher::start(&self.0.js, self.0.opts.events_retention).await
    }

    /// Stores the upload, writes the `queued` record, then enqueues the job.
    /// When the queue refuses it, the record and upload are removed again.
    pub async fn submit(
        &self,
        id: &str,
        params: JobParams,
        input: &Path,
    ) -> Result<JobRecord, SubmitError> {
        let counts = self.counts().await?;
        let busy = counts.waiting + counts.in_progress;
        if busy >= self.0.opts.queue_size as u64 {
            return Err(SubmitError::Full(busy));
        }
        let mut file = tokio::fs::File::open(input)
            .await
            .map_err(ctx("read the upload"))?;
        self.0
            .objects
            .put(input_object(id).as_str(), &mut file)
            .await
            .map_err(ctx("store the upload"))?;
        let record = JobRecord::queued(id, params, now_ms());
        if let Err(e) = self.0.kv.create(id, encode(&record)?).await {
            self.forget(id).await;
            return Err(QueueError::new("write job record", e).into());
        }
        let publish = async {
            self.0
                .js
                .send_publish(
                    JOBS_SUBJECT,
                    Publish::build()
                        .payload(id.to_string().into())
                        .message_id(id),
                )
                .await
                .map_err(|e| e.to_string())?
                .await
                .map_err(|e| e.to_string())
        };
        if let Err(e) = publish.await {
            self.forget(id).await;
            if e.contains("maximum messages") {
                return Err(SubmitError::Full(self.0.opts.queue_size as u64));
            }
            return Err(QueueError::new("enqueue job", e).into());
        }
        Ok(record)
    }

    /// Best effort: a job that could not be queued leaves nothing behind.
    async fn forget(&self, id: &str) {
        let _ = self.0.kv.purge(id).await;
        let _ = self.0.objects.delete(input_object(id)).await;
    }

    /// The job's record, from whichever node wrote it.
    pub async fn get(&self, id: &str) -> Result<Option<JobRecord>, QueueError> {
        Ok(self.entry(id).await?.map(|(r, _)| r))
    }

    async fn entry(&self, id: &str) -> Result<Option<(JobRecord, u64)>, QueueError> {
        // KV keys are subject tokens: ids are generated hex, but an id from a
        // URL could be anything, and an invalid key is simply "no such job".
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Ok(None);
        }
        let Some(e) = self.0.kv.entry(id).await.map_err(ctx("read job record"))? else {
            return Ok(None);
        };
        if e.operation != kv::Operation::Put {
            return Ok(None);
        }
        let r = serde_json::from_slice(&e.value).map_err(ctx("decode job record"))?;
        Ok(Some((r, e.revision)))
    }

    /// A result file of a succeeded job, streamed from the Object Store,
    /// with its size.
    pub async fn open_result(
        &self,
        record: &JobRecord,
        name: &str,
    ) -> Result<Option<(object_store::Object, u64)>, QueueError> {
        match self
            .0
            .objects
            .get(result_object(&record.id, record.attempt, name))
            .await
        {
            Ok(o) => {
                let size = o.info().size as u64;
                Ok(Some((o, size)))
            }
            Err(e) if e.kind() == object_store::GetErrorKind::NotFound => Ok(None),
            Err(e) => Err(QueueError::new("read result", e)),
        }
    }

    /// Waiting and in-progress jobs, from the consumer's own bookkeeping
    /// (cheap: one request, however many jobs exist).
    pub async fn counts(&self) -> Result<QueueCounts, QueueError> {
        let mut c = self.0.consumer.clone();
        let info = c.info().await.map_err(ctx("read queue state"))?;
        Ok(QueueCounts {
            waiting: info.num_pending,
            in_progress: u64::try_from(info.num_ack_pending).unwrap_or(0),
        })
    }

    /// The next job for this worker, waiting at most `wait`. One at a time:
    /// a worker never holds a job it is not running.
    pub async fn next(&self, wait: Duration) -> Result<Option<Delivery>, QueueError> {
        let mut batch = self
            .0
            .consumer
            .fetch()
            .max_messages(1)
            .expires(wait)
            .messages()
            .await
            .map_err(ctx("fetch a job"))?;
        let msg = match batch.next().await {
            None => return Ok(None),
            Some(Err(e)) => return Err(QueueError::new("fetch a job", e)),
            Some(Ok(m)) => m,
        };
        let delivered = msg.info().map_or(1, |i| i.delivered);
        let id = String::from_utf8_lossy(&msg.payload).into_owned();
        Ok(Some(Delivery { msg, id, delivered }))
    }

    /// Takes the job for `worker`, unless it is finished, gone, or has been
    /// delivered too often.
    pub async fn claim(&self, d: Delivery, worker: &str) -> Result<ClaimOutcome, QueueError> {
        for _ in 0..CLAIM_TRIES {
            let Some((mut rec, revision)) = self.entry(&d.id).await? else {
                ack(&d.msg, AckKind::Term).await;
                return Ok(ClaimOutcome::Missing);
            };
            if rec.status.is_final() {
                ack(&d.msg, AckKind::Ack).await;
                return Ok(ClaimOutcome::AlreadyFinished(rec));
            }
            let limit = i64::from(self.0.opts.max_deliver);
            if d.delivered > limit {
                rec.status = JobStatus::Failed;
                rec.error = Some(format!(
                    "gave up after {limit} attempts: every worker that took this job stopped or crashed before finishing it"
                ));
                rec.finished_ms = Some(now_ms());
                match self.0.kv.update(&d.id, encode(&rec)?, revision).await {
                    Ok(_) => {
                        ack(&d.msg, AckKind::Term).await;
                        return Ok(ClaimOutcome::GaveUp(rec));
                    }
                    Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => continue,
                    Err(e) => return Err(QueueError::new("write job record", e)),
                }
            }
            rec.status = JobStatus::Running;
            rec.worker = Some(worker.to_string());
            rec.attempt += 1;
            rec.frames_done = 0;
            rec.error = None;
            match self.0.kv.update(&d.id, encode(&rec)?, revision).await {
                Ok(revision) => {
                    return Ok(ClaimOutcome::Run(Box::new(Claim {
                        queue: self.clone(),
                        msg: d.msg,
                        record: rec,
                        revision,
                    })))
                }
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => continue,
                Err(e) => return Err(QueueError::new("write job record", e)),
            }
        }
        Err(QueueError::new(
            format!("claim job {}", d.id),
            "its record kept changing; leaving it for redelivery",
        ))
    }
}

/// Acknowledgements are best effort: a lost ack means a redelivery, which
/// [`NatsQueue::claim`] recognises as finished.
async fn ack(msg: &jetstream::Message, kind: AckKind) {
    if let Err(e) = msg.ack_with(kind).await {
        tracing::warn!(error = %e, "cannot acknowledge a job message; it will be redelivered");
    }
}

impl Claim {
    pub fn record(&self) -> &JobRecord {
        &self.record
    }

    /// Copies the upload to `path`; returns its size.
    pub async fn download_input(&self, path: &Path) -> Result<u64, QueueError> {
        let mut obj = self
            .queue
            .0
            .objects
            .get(input_object(&self.record.id))
            .await
            .map_err(ctx("read the upload"))?;
        let mut file = tokio::fs::File::create(path)
            .await
            .map_err(ctx("write the upload locally"))?;
        let n = tokio::io::copy(&mut obj, &mut file)
            .await
            .map_err(ctx("copy the upload"))?;
        tokio::io::AsyncWriteExt::flush(&mut file)
            .await
            .map_err(ctx("write the upload locally"))?;
        Ok(n)
    }

    /// Reports progress: resets the redelivery timer and updates the
    /// record. `Ok(false)` means another worker has taken the job over;
    /// stop and drop it.
    pub async fn progress(&mut self, done: u64, total: Option<u64>) -> Result<bool, QueueError> {
        ack(&self.msg, AckKind::Progress).await;
        self.record.frames_done = done;
        self.record.frames_total = total;
        self.write().await
    }

    /// Stores the result files (name, local path) and marks the job
    /// succeeded after `frames` frames. `Ok(false)`: the job was taken over
    /// meanwhile; the files are removed again and the other worker's result
    /// stands.
    pub async fn succeed(
        mut self,
        frames: u64,
        files: &[(&str, &Path)],
    ) -> Result<bool, QueueError> {
        let mut stored = Vec::new();
        for (name, path) in files {
            // Keep the job while a large result uploads.
            ack(&self.msg, AckKind::Progress).await;
            let object = result_object(&self.record.id, self.record.attempt, name);
            let mut file = tokio::fs::File::open(path)
                .await
                .map_err(ctx("read a result file"))?;
            self.queue
                .0
                .objects
                .put(object.as_str(), &mut file)
                .await
                .map_err(ctx("store a result file"))?;
            stored.push(object);
        }
        self.record.status = JobStatus::Succeeded;
        self.record.finished_ms = Some(now_ms());
        self.record.frames_done = frames;
        self.record.frames_total = Some(frames);
        let ours = self.write().await?;
        if ours {
            if let Err(e) = self.msg.double_ack().await {
                tracing::warn!(job = %self.record.id, error = %e, "job finished but its ack was not confirmed; a redelivery will see it finished");
            }
        } else {
            for o in stored {
                let _ = self.queue.0.objects.delete(o).await;
            }
        }
        Ok(ours)
    }

    /// Marks the job failed (a bad upload: running it again cannot help).
    pub async fn fail(mut self, error: String) -> Result<bool, QueueError> {
        self.record.status = JobStatus::Failed;
        self.record.error = Some(error);
        self.record.finished_ms = Some(now_ms());
        let ours = self.write().await?;
        if ours {
            ack(&self.msg, AckKind::Term).await;
        }
        Ok(ours)
    }

    /// Gives the job back (this worker is shutting down): queued again and
    /// redelivered at once to another worker.
    pub async fn release(mut self) -> Result<(), QueueError> {
        self.record.status = JobStatus::Queued;
        self.record.worker = None;
        self.record.frames_done = 0;
        if self.write().await? {
            ack(&self.msg, AckKind::Nak(None)).await;
        }
        Ok(())
    }

    /// Compare-and-set of the record; false when someone else wrote since.
    async fn write(&mut self) -> Result<bool, QueueError> {
        match self
            .queue
            .0
            .kv
            .update(&self.record.id, encode(&self.record)?, self.revision)
            .await
        {
            Ok(rev) => {
                self.revision = rev;
                Ok(true)
            }
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(false),
            Err(e) => Err(QueueError::new("write job record", e)),
        }
    }
}

#[cfg(test)]
mod mask_tests {
    use super::mask_nats_url;

    #[test]
    fn nats_credentials_are_hidden() {
        assert_eq!(
            mask_nats_url("nats://vigil:s3cret@nats:4222,tls://tok3n@n2:4222?x=1"),
            "nats://***@nats:4222,tls://***@n2:4222?x=***"
        );
        assert_eq!(mask_nats_url("nats://nats:4222"), "nats://nats:4222");
    }
}
