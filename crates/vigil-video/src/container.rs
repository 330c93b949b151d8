//! Recognising the container of an untrusted video file by its first bytes.
//!
//! FFmpeg picks a demuxer by probing, and some demuxers read other files or
//! URLs named inside the input (HLS and DASH playlists, `ffconcat` lists,
//! SDP, image sequences). An upload or a file named by an API client must be
//! a self-contained video, so it is accepted only when its magic bytes name
//! one of a few plain containers, and FFmpeg is then told to use exactly that
//! demuxer (no probing) with access to the file alone.

use std::io::Read;
use std::path::Path;

/// The self-contained containers vigil accepts from untrusted sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// ISO base media: MP4, MOV, M4V, 3GP (external data references are off
    /// by default in FFmpeg's demuxer).
    Mp4,
    /// Matroska and WebM.
    Matroska,
    /// RIFF AVI.
    Avi,
    /// MPEG transport stream (188-byte packets).
    MpegTs,
    /// MPEG program stream (`.mpg`, `.vob`).
    MpegPs,
}

impl Container {
    /// The FFmpeg demuxer forced for this container.
    pub fn ffmpeg_format(self) -> &'static str {
        match self {
            Container::Mp4 => "mov",
            Container::Matroska => "matroska",
            Container::Avi => "avi",
            Container::MpegTs => "mpegts",
            Container::MpegPs => "mpeg",
        }
    }

    /// What the error message lists as accepted.
    pub const ACCEPTED: &'static str = "MP4/MOV, Matroska/WebM, AVI, MPEG-TS, MPEG-PS";

    /// Recognises the container from the start of a file (the first 1 KiB is
    /// plenty; at least 4 × 188 bytes are needed to be sure of MPEG-TS).
    pub fn sniff(head: &[u8]) -> Option<Container> {
        if head.len() >= 12 && &head[4..8] == b"ftyp" {
            return Some(Container::Mp4);
        }
        // QuickTime files from old cameras may start with other atoms.
        if head.len() >= 8
            && matches!(&head[4..8], b"moov" | b"mdat" | b"wide" | b"free" | b"skip")
            && u32::from_be_bytes([head[0], head[1], head[2], head[3]]) >= 8
        {
            return Some(Container::Mp4);
        }
        if head.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
            return Some(Container::Matroska);
        }
        if head.len() >= 12 && &head[0..4] == b"RIFF" && &head[8..12] == b"AVI " {
            return Some(Container::Avi);
        }
        if head.starts_with(&[0x00, 0x00, 0x01, 0xBA]) {
            return Some(Container::MpegPs);
        }
        if head.len() >= 188 * 4 && (0..4).all(|i| head[i * 188] == 0x47) {
            return Some(Container::MpegTs);
        }
        None
    }

    /// Reads the start of `path` and recognises it; `None` when the file is
    /// not one of the accepted containers (or cannot be read).
    pub fn sniff_file(path: &Path) -> std::io::Result<Option<Container>> {
        let mut head = Vec::with_capacity(1024);
        std::fs::File::open(path)?
            .take(1024)
            .read_to_end(&mut head)?;
        Ok(Container::sniff(&head))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_are_recognised_and_playlists_are_not() {
        let mut mp4 = vec![0, 0, 0, 0x20];
        mp4.extend_from_slice(b"ftypisom\0\0\x02\0");
        assert_eq!(Container::sniff(&mp4), Some(Container::Mp4));
        assert_eq!(
            Container::sniff(b"RIFF\x10\0\0\0AVI LIST"),
            Some(Container::Avi)
        );
        assert_eq!(
            Container::sniff(&[0x1A, 0x45, 0xDF, 0xA3, 0x9F]),
            Some(Container::Matroska)
        );
        let mut ts = vec![0u8; 188 * 4];
        for i in 0..4 {
            ts[i * 188] = 0x47;
        }
        assert_eq!(Container::sniff(&ts), Some(Container::MpegTs));
        for hostile in [
            &b"#EXTM3U\n#EXT-X-VERSION:3\n/etc/passwd\n"[..],
            b"ffconcat version 1.0\nfile '/x.avi'\n",
            b"<?xml version=\"1.0\"?><MPD",
            b"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\n",
            b"\x89PNG\r\n\x1a\n",
            b"",
            b"GIF89a",
        ] {
            assert_eq!(Container::sniff(hostile), None, "{hostile:?}");
        }
    }
}
