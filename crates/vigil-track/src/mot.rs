//! MOTChallenge text formats, so the tracker can be run and scored on public
//! benchmark detections (`vigil track --mot DET.txt`).
//!
//! Input (det.txt): `frame,id,x,y,w,h,score[,...]`, frames 1-based, `id` and
//! extra columns ignored, `x,y` the top-left corner in pixels. Output (results):
//! `frame,track_id,x,y,w,h,score,-1,-1,-1`, the layout TrackEval and the MOT
//! devkits read.

use std::io::{self, BufRead, Write};

use vigil_core::config::TrackerConfig;
use vigil_core::{BBox, Detection, Track};

use crate::{ByteTracker, TrackerError};

/// Largest frame number accepted: ~92 hours at 30 fps. Every frame up to the
/// largest one is stepped, so a typo such as `1000000000` would otherwise turn
/// into a very long run of empty frames.
pub const MAX_FRAME: u64 = 10_000_000;

/// MOTChallenge input carries no classes; every box is this one.
pub const MOT_CLASS_ID: u32 = 0;
/// Label given to MOTChallenge boxes.
pub const MOT_LABEL: &str = "object";

/// Why a MOT run failed. Line numbers are 1-based, as an editor shows them.
#[derive(Debug, thiserror::Error)]
pub enum MotError {
    /// The input could not be read (distinct from `Write`, so a closed pipe
    /// on stdout is not reported as a bad input file).
    #[error("reading detections: {0}")]
    Read(#[source] io::Error),
    /// A malformed line, so the user can go straight to it.
    #[error("line {line}: {reason}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it, naming the field.
        reason: String,
    },
    /// The results could not be written.
    #[error("writing results: {0}")]
    Write(#[source] io::Error),
    /// The tracker refused its settings.
    #[error(transparent)]
    Tracker(#[from] TrackerError),
}

/// One detection row of a MOTChallenge det file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MotDetection {
    /// 1-based frame number.
    pub frame: u64,
    /// The box, converted from MOT's top-left + size to corners.
    pub bbox: BBox,
    /// The detector's confidence, which decides the association stage.
    pub score: f32,
}

impl MotDetection {
    /// As a tracker input (class 0, label "object").
    pub fn to_detection(&self) -> Detection {
        Detection {
            class_id: MOT_CLASS_ID,
            label: MOT_LABEL.to_string(),
            score: self.score,
            bbox: self.bbox,
            track_id: None,
        }
    }
}

/// Parses one line; `Ok(None)` for a blank line. Fields are separated by
/// commas (with optional spaces around them) or, on a line with no comma, by
/// whitespace.
pub fn parse_line(line: &str, line_no: usize) -> Result<Option<MotDetection>, MotError> {
    let err = |reason: String| MotError::Line {
        line: line_no,
        reason,
    };
    let line = line.trim();
    if line.is_empty() {
        return Ok(None);
    }
    let fields: Vec<&str> = if line.contains(',') {
        line.split(',').map(str::trim).collect()
    } else {
        line.split_whitespace().collect()
    };
    if fields.len() < 7 {
        return Err(err(format!(
            "expected at least 7 fields (frame,id,x,y,w,h,score), got {}",
            fields.len()
        )));
    }
    let frame = parse_frame(fields[0]).map_err(&err)?;
    let num = |idx: usize, name: &str| -> Result<f32, MotError> {
        let raw = fields[idx];
        match raw.parse::<f32>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(err(format!("{name} {raw:?} is not a finite number"))),
        }
    };
    let x = num(2, "x")?;
    let y = num(3, "y")?;
    let w = num(4, "width")?;
    let h = num(5, "height")?;
    let score = num(6, "score")?;
    if w <= 0.0 || h <= 0.0 {
        return Err(err(format!("box size must be positive, got {w} x {h}")));
    }
    Ok(Some(MotDetection {
        frame,
        bbox: BBox::from_xywh(x, y, w, h),
        score,
    }))
}

fn parse_frame(raw: &str) -> Result<u64, String> {
    // Some exporters write frames as floats ("12.000000"); accept whole ones.
    let frame = match raw.parse::<u64>() {
        Ok(f) => Some(f),
        Err(_) => raw
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite() && f.fract() == 0.0 && *f >= 0.0 && *f <= MAX_FRAME as f64)
            .map(|f| f as u64),
    };
    match frame {
        Some(0) => Err("frame numbers start at 1, got 0".to_string()),
        Some(f) if f > MAX_FRAME => Err(format!("frame {f} is larger than {MAX_FRAME}")),
        Some(f) => Ok(f),
        None => Err(format!("frame {raw:?} is not a positive integer")),
    }
}

/// Reads a whole det file. The first malformed line is an error naming it.
pub fn parse_detections<R: BufRead>(mut input: R) -> Result<Vec<MotDetection>, MotError> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    let mut line_no = 0;
    loop {
        buf.clear();
        if input.read_until(b'\n', &mut buf).map_err(MotError::Read)? == 0 {
            return Ok(out);
        }
        line_no += 1;
        let line = std::str::from_utf8(&buf).map_err(|_| MotError::Line {
            line: line_no,
            reason: "not valid UTF-8".to_string(),
        })?;
        if let Some(d) = parse_line(line, line_no)? {
            out.push(d);
        }
    }
}

/// Writes one result line: `frame,id,x,y,w,h,score,-1,-1,-1`.
pub fn write_track<W: Write>(out: &mut W, frame: u64, t: &Track) -> io::Result<()> {
    writeln!(
        out,
        "{},{},{:.2},{:.2},{:.2},{:.2},{:.3},-1,-1,-1",
        frame,
        t.id,
        no_neg_zero(t.bbox.x1, 2),
        no_neg_zero(t.bbox.y1, 2),
        no_neg_zero(t.bbox.x2 - t.bbox.x1, 2),
        no_neg_zero(t.bbox.y2 - t.bbox.y1, 2),
        no_neg_zero(t.score, 3),
    )
}

/// `-0.001` would print as `-0.00`; print `0.00` instead.
fn no_neg_zero(v: f32, decimals: i32) -> f32 {
    if (v * 10f32.powi(decimals)).round() == 0.0 {
        0.0
    } else {
        v
    }
}

/// What a run did, for logging.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Frames stepped (the largest frame number in the input).
    pub frames: u64,
    /// Detection rows read.
    pub detections: usize,
    /// Result lines written.
    pub result_lines: usize,
    /// Confirmed tracks (the largest id written, as ids are consecutive).
    pub tracks: u64,
}

/// Tracks a whole det file and writes the results: every frame from 1 to the
/// largest one present is stepped in order, frames without detections
/// included, so the lost-track buffer counts real frames. Rows may come in any
/// order. `fps` scales the buffer.
pub fn run<R: BufRead, W: Write>(
    input: R,
    mut out: W,
    cfg: &TrackerConfig,
    fps: f64,
) -> Result<RunSummary, MotError> {
    let mut tracker = ByteTracker::new(cfg.clone(), fps)?;
    let mut dets = parse_detections(input)?;
    dets.sort_by_key(|d| d.frame);
    let max_frame = dets.last().map_or(0, |d| d.frame);
    let mut summary = RunSummary {
        detections: dets.len(),
        ..RunSummary::default()
    };
    let mut frame_dets = Vec::new();
    let mut rest = dets.as_slice();
    let mut max_id = 0;
    for frame in 1..=max_frame {
        let n = rest.iter().take_while(|d| d.frame == frame).count();
        let (now, later) = rest.split_at(n);
        rest = later;
        frame_dets.clear();
        frame_dets.extend(now.iter().map(MotDetection::to_detection));
        let result = tracker.update(&frame_dets, 1.0);
        for t in &result.tracks {
            write_track(&mut out, frame, t).map_err(MotError::Write)?;
            max_id = max_id.max(t.id);
        }
        summary.result_lines += result.tracks.len();
        summary.frames = frame;
    }
    out.flush().map_err(MotError::Write)?;
    // Ids are handed out consecutively on confirmation, so the largest id
    // written is the number of tracks written (a merged-away one aside).
    summary.tracks = max_id;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line_err(s: &str) -> String {
        parse_line(s, 7).unwrap_err().to_string()
    }

    #[test]
    fn parses_commas_spaces_and_extra_columns() {
        let d = parse_line("3, -1, 10.5, 20, 30, 40, 0.9, -1, -1, -1\r\n", 1)
            .unwrap()
            .unwrap();
        assert_eq!(d.frame, 3);
        assert_eq!(d.bbox, BBox::new(10.5, 20.0, 40.5, 60.0));
        assert_eq!(d.score, 0.9);
        let d = parse_line("4 7 1 2 3 4 0.5", 1).unwrap().unwrap();
        assert_eq!(d.frame, 4);
        assert_eq!(
            parse_line("12.000,1,1,2,3,4,0.5", 1)
                .unwrap()
                .unwrap()
                .frame,
            12
        );
        assert_eq!(parse_line("   \t", 1).unwrap(), None);
    }

    #[test]
    fn malformed_lines_name_the_line_and_reason() {
        assert_eq!(
            line_err("1,2,3"),
            "line 7: expected at least 7 fields (frame,id,x,y,w,h,score), got 3"
        );
        assert!(line_err("0,1,1,2,3,4,0.5").contains("start at 1"));
        assert!(line_err("x,1,1,2,3,4,0.5").contains("frame \"x\""));
        assert!(line_err("1.5,1,1,2,3,4,0.5").contains("frame \"1.5\""));
        assert!(line_err("1,1,1,2,3,4,nan").contains("score"));
        assert!(line_err("1,1,1,2,-3,4,0.5").contains("positive"));
        assert!(line_err("1,1,,2,3,4,0.5").contains("x \"\""));
        assert!(line_err("99999999999,1,1,2,3,4,0.5").contains("larger"));
    }

    #[test]
    fn reports_line_numbers_across_blank_lines_and_bad_utf8() {
        let text = b"1,-1,0,0,10,10,0.9\n\n2,-1,0,0,10\n";
        let e = parse_detections(&text[..]).unwrap_err().to_string();
        assert!(e.starts_with("line 3:"), "{e}");
        let bytes = b"1,-1,0,0,10,10,0.9\n\xff\xfe\n";
        let e = parse_detections(&bytes[..]).unwrap_err().to_string();
        assert_eq!(e, "line 2: not valid UTF-8");
    }

    #[test]
    fn formats_results() {
        let t = Track {
            id: 4,
            class_id: 0,
            label: "object".into(),
            score: 0.8765,
            bbox: BBox::new(-0.001, 2.0, 12.345, 42.0),
            matched: true,
            age: 0,
        };
        let mut out = Vec::new();
        write_track(&mut out, 9, &t).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "9,4,0.00,2.00,12.35,40.00,0.877,-1,-1,-1\n"
        );
    }

    #[test]
    fn empty_input_writes_nothing() {
        let mut out = Vec::new();
        let s = run(&b"\n\n"[..], &mut out, &TrackerConfig::default(), 30.0).unwrap();
        assert!(out.is_empty());
        assert_eq!(s, RunSummary::default());
    }
}
