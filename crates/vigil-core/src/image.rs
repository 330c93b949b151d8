/// An owned 8-bit BGR image, row-major, tightly packed (`width * 3` bytes a row).
///
/// BGR because that is what decoders (OpenCV/FFmpeg) hand out and what
/// Ultralytics preprocesses from; keeping one plain layout lets stages pass
/// frames without sharing any library's matrix type.
#[derive(Clone, PartialEq, Eq)]
pub struct ImageBgr {
    width: u32,
    height: u32,
    data: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("image buffer has {got} bytes, expected {expected} for {width}x{height} BGR")]
    BadLength {
        width: u32,
        height: u32,
        expected: usize,
        got: usize,
    },
    #[error("image has zero width or height")]
    Empty,
}

impl ImageBgr {
    pub fn new(width: u32, height: u32, data: Vec<u8>) -> Result<Self, ImageError> {
        if width == 0 || height == 0 {
            return Err(ImageError::Empty);
        }
        let expected = width as usize * height as usize * 3;
        if data.len() != expected {
            return Err(ImageError::BadLength {
                width,
                height,
                expected,
                got: data.len(),
            });
        }
        Ok(Self {
            width,
            height,
            data,
        })
    }

    /// A uniformly coloured image; handy for tests and warm-up.
    pub fn filled(width: u32, height: u32, bgr: [u8; 3]) -> Self {
        let data = bgr
            .iter()
            .copied()
            .cycle()
            .take(width as usize * height as usize * 3)
            .collect();
        Self {
            width: width.max(1),
            height: height.max(1),
            data,
        }
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    pub fn data(&self) -> &[u8] {
        &self.data
    }

    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }

    pub fn into_data(self) -> Vec<u8> {
        self.data
    }
}

impl std::fmt::Debug for ImageBgr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ImageBgr({}x{})", self.width, self.height)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_wrong_length() {
        assert!(matches!(
            ImageBgr::new(2, 2, vec![0; 11]),
            Err(ImageError::BadLength { expected: 12, .. })
        ));
        assert!(ImageBgr::new(2, 2, vec![0; 12]).is_ok());
        assert!(matches!(
            ImageBgr::new(0, 2, vec![]),
            Err(ImageError::Empty)
        ));
    }
}
