//! Moves an MP4's `moov` box (the index) in front of its `mdat` (the media),
//! as `ffmpeg -movflags +faststart` does.
//!
//! OpenCV's writer puts `moov` at the end, where a browser fetching the file
//! over HTTP finds it only after downloading everything; with `moov` first a
//! `<video>` element starts playing, and seeks with `Range` requests, at once.
//! Moving `moov` shifts the media by its size, so every chunk offset in the
//! `stco`/`co64` tables is rewritten. Pure Rust and streaming: only `moov`
//! (kilobytes to a few megabytes) is held in memory.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Why a file could not be rewritten. The original is left untouched.
#[derive(Debug, thiserror::Error)]
pub enum FaststartError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: not an MP4 that can be made progressive: {reason}")]
    Format { path: PathBuf, reason: String },
}

/// A top-level box: where it starts and how long it is (header included).
#[derive(Debug, Clone, Copy)]
struct BoxPos {
    kind: [u8; 4],
    start: u64,
    len: u64,
}

/// Largest `moov` accepted; a real index for hours of video is a few MB, so
/// anything larger is a corrupt length, not something to allocate.
const MAX_MOOV: u64 = 256 * 1024 * 1024;

/// Rewrites `path` in place (through a temporary file and a rename) so that
/// `moov` precedes `mdat`. Returns false when it already did (nothing written).
pub fn faststart(path: &Path) -> Result<bool, FaststartError> {
    let io_err = |source| FaststartError::Io {
        path: path.to_path_buf(),
        source,
    };
    let fmt_err = |reason: String| FaststartError::Format {
        path: path.to_path_buf(),
        reason,
    };
    let mut file = File::open(path).map_err(io_err)?;
    let file_len = file.metadata().map_err(io_err)?.len();
    let boxes = top_level_boxes(&mut file, file_len).map_err(fmt_err)?;
    let moov = boxes
        .iter()
        .find(|b| &b.kind == b"moov")
        .copied()
        .ok_or_else(|| fmt_err("no moov box".into()))?;
    let mdat = boxes
        .iter()
        .find(|b| &b.kind == b"mdat")
        .copied()
        .ok_or_else(|| fmt_err("no mdat box".into()))?;
    if moov.start < mdat.start {
        return Ok(false);
    }
    if moov.len > MAX_MOOV {
        return Err(fmt_err(format!(
            "moov of {} bytes is implausible",
            moov.len
        )));
    }
    let mut moov_bytes = vec![0u8; moov.len as usize];
    file.seek(SeekFrom::Start(moov.start)).map_err(io_err)?;
    file.read_exact(&mut moov_bytes).map_err(io_err)?;
    shift_chunk_offsets(&mut moov_bytes, moov.len).map_err(fmt_err)?;

    // Everything before the first mdat (ftyp, free, ...) stays first; then
    // moov; then the rest of the file without the old moov.
    let tmp = path.with_extension("faststart.part");
    let result = (|| -> io::Result<()> {
        let mut out = BufWriter::new(File::create(&tmp)?);
        let mut input = BufReader::new(&mut file);
        copy_range(&mut input, &mut out, 0, mdat.start)?;
        out.write_all(&moov_bytes)?;
        copy_range(&mut input, &mut out, mdat.start, moov.start - mdat.start)?;
        let after = moov.start + moov.len;
        copy_range(&mut input, &mut out, after, file_len - after)?;
        let f = out.into_inner().map_err(io::IntoInnerError::into_error)?;
        f.sync_all()?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err(e));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_err(e)
    })?;
    // The new name on disk too, before the job is recorded as done (the
    // data was synced above; issue #15 item 12).
    vigil_core::fsutil::sync_dir_of(path).map_err(io_err)?;
    Ok(true)
}

fn copy_range(
    input: &mut BufReader<&mut File>,
    out: &mut impl Write,
    start: u64,
    len: u64,
) -> io::Result<()> {
    input.seek(SeekFrom::Start(start))?;
    let copied = io::copy(&mut input.take(len), out)?;
    if copied != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("file ended {} bytes early", len - copied),
        ));
    }
    Ok(())
}

/// Lists the top-level boxes, checking that their lengths tile the file.
fn top_level_boxes(file: &mut File, file_len: u64) -> Result<Vec<BoxPos>, String> {
    let mut boxes = Vec::new();
    let mut pos = 0u64;
    // Bounded: every box is at least 8 bytes long.
    while pos < file_len {
        file.seek(SeekFrom::Start(pos)).map_err(|e| e.to_string())?;
        let mut head = [0u8; 16];
        let avail = (file_len - pos).min(16) as usize;
        if avail < 8 {
            return Err(format!("{avail} stray bytes at offset {pos}"));
        }
        file.read_exact(&mut head[..avail])
            .map_err(|e| e.to_string())?;
        let size32 = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let kind = [head[4], head[5], head[6], head[7]];
        let len = match size32 {
            0 => file_len - pos,
            1 if avail == 16 => u64::from_be_bytes([
                head[8], head[9], head[10], head[11], head[12], head[13], head[14], head[15],
            ]),
            1 => return Err(format!("truncated 64-bit box size at offset {pos}")),
            n => u64::from(n),
        };
        if len < 8 || len > file_len - pos {
            return Err(format!(
                "box {:?} at offset {pos} has length {len}, beyond the file's {file_len} bytes",
                String::from_utf8_lossy(&kind)
            ));
        }
        boxes.push(BoxPos {
            kind,
            start: pos,
            len,
        });
        pos += len;
    }
    Ok(boxes)
}

/// Containers on the way from `moov` to the chunk-offset tables.
const CONTAINERS: [&[u8; 4]; 5] = [b"moov", b"trak", b"mdia", b"minf", b"stbl"];

/// Adds `delta` to every chunk offset under the box that fills `buf`.
fn shift_chunk_offsets(buf: &mut [u8], delta: u64) -> Result<(), String> {
    walk(buf, delta, 0)
}

fn walk(buf: &mut [u8], delta: u64, depth: usize) -> Result<(), String> {
    if depth > CONTAINERS.len() {
        return Ok(());
    }
    let header = header_len(buf)?;
    let mut pos = header;
    while pos < buf.len() {
        let rest = &mut buf[pos..];
        let len = box_len(rest)?;
        let child = &mut rest[..len];
        let kind: [u8; 4] = [child[4], child[5], child[6], child[7]];
        if CONTAINERS.contains(&&kind) {
            walk(child, delta, depth + 1)?;
        } else if &kind == b"stco" || &kind == b"co64" {
            patch_table(child, &kind, delta)?;
        }
        pos += len;
    }
    Ok(())
}

fn header_len(buf: &[u8]) -> Result<usize, String> {
    match buf.get(0..4) {
        Some([0, 0, 0, 1]) => Ok(16),
        Some(_) => Ok(8),
        None => Err("truncated box header".into()),
    }
}

fn box_len(buf: &[u8]) -> Result<usize, String> {
    let head = buf.get(0..8).ok_or("truncated box header")?;
    let size32 = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    let len = match size32 {
        0 => buf.len() as u64,
        1 => {
            let b = buf.get(8..16).ok_or("truncated 64-bit box size")?;
            u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
        }
        n => u64::from(n),
    };
    if len < 8 || len > buf.len() as u64 {
        return Err(format!("a box inside moov has length {len}"));
    }
    Ok(len as usize)
}

fn patch_table(b: &mut [u8], kind: &[u8; 4], delta: u64) -> Result<(), String> {
    let name = String::from_utf8_lossy(kind);
    let header = header_len(b)?;
    // full box: version + flags, then the entry count.
    let count_at = header + 4;
    let count = b
        .get(count_at..count_at + 4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .ok_or_else(|| format!("truncated {name}"))?;
    let width = if kind == b"co64" { 8 } else { 4 };
    let table = count_at + 4;
    if table + count * width > b.len() {
        return Err(format!("{name} lists {count} entries beyond its length"));
    }
    for i in 0..count {
        let at = table + i * width;
        if width == 4 {
            let old = u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
            let new = u32::try_from(u64::from(old) + delta)
                .map_err(|_| "a chunk offset passes 4 GiB once moov moves (needs co64)")?;
            b[at..at + 4].copy_from_slice(&new.to_be_bytes());
        } else {
            let mut o = [0u8; 8];
            o.copy_from_slice(&b[at..at + 8]);
            let new = u64::from_be_bytes(o)
                .checked_add(delta)
                .ok_or("co64 offset overflows")?;
            b[at..at + 8].copy_from_slice(&new.to_be_bytes());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        v
    }

    fn stco(offsets: &[u32]) -> Vec<u8> {
        let mut body = vec![0, 0, 0, 0];
        body.extend_from_slice(&(offsets.len() as u32).to_be_bytes());
        for o in offsets {
            body.extend_from_slice(&o.to_be_bytes());
        }
        bx(b"stco", &body)
    }

    /// ftyp, mdat with two chunks, moov at the end pointing at them.
    fn tail_moov_file() -> (Vec<u8>, Vec<u8>) {
        let ftyp = bx(b"ftyp", b"isom\0\0\0\0");
        let mdat = bx(b"mdat", b"AAAABBBB");
        let a = (ftyp.len() + 8) as u32;
        let stbl = bx(b"stbl", &stco(&[a, a + 4]));
        let trak = bx(b"trak", &bx(b"mdia", &bx(b"minf", &stbl)));
        let moov = bx(b"moov", &[bx(b"mvhd", &[0; 8]), trak].concat());
        ([ftyp.clone(), mdat.clone(), moov.clone()].concat(), moov)
    }

    #[test]
    fn moves_moov_first_and_shifts_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v.mp4");
        let (data, moov) = tail_moov_file();
        std::fs::write(&p, &data).unwrap();
        assert!(faststart(&p).unwrap());
        let out = std::fs::read(&p).unwrap();
        assert_eq!(out.len(), data.len());
        assert_eq!(&out[20..24], b"moov", "moov follows ftyp");
        // The chunk offsets still point at the chunk bytes.
        let s = out.windows(4).position(|w| w == b"stco").unwrap();
        let first = u32::from_be_bytes(out[s + 12..s + 16].try_into().unwrap()) as usize;
        let second = u32::from_be_bytes(out[s + 16..s + 20].try_into().unwrap()) as usize;
        assert_eq!(&out[first..first + 4], b"AAAA");
        assert_eq!(&out[second..second + 4], b"BBBB");
        assert_eq!(first, 16 + moov.len() + 8);
        // A second run finds nothing to do.
        assert!(!faststart(&p).unwrap());
    }

    #[test]
    fn refuses_garbage_and_leaves_it_alone() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.mp4");
        std::fs::write(&p, b"\0\0\0\x40moovtruncated").unwrap();
        let e = faststart(&p).unwrap_err().to_string();
        assert!(e.contains("length 64"), "{e}");
        assert_eq!(std::fs::read(&p).unwrap(), b"\0\0\0\x40moovtruncated");
        std::fs::write(&p, bx(b"ftyp", b"isom")).unwrap();
        assert!(faststart(&p).unwrap_err().to_string().contains("no moov"));
    }
}
