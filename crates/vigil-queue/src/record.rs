//! Where a job's files live in the Object Store. The record itself is
//! [`vigil_jobs::JobRecord`], stored as JSON in the KV bucket.

pub(crate) fn result_object(id: &str, attempt: u32, name: &str) -> String {
    format!("{id}/{attempt}/{name}")
}

pub(crate) fn input_object(id: &str) -> String {
    format!("{id}/input")
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_core::JobParams;
    use vigil_jobs::JobRecord;

    #[test]
    fn records_round_trip_and_name_their_objects() {
        let mut r = JobRecord::queued("abc", JobParams::default(), 5);
        r.attempt = 2;
        let back: JobRecord = serde_json::from_slice(&serde_json::to_vec(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        assert_eq!(
            result_object(&r.id, r.attempt, "video.mp4"),
            "abc/2/video.mp4"
        );
        assert_eq!(input_object("abc"), "abc/input");
    }
}
