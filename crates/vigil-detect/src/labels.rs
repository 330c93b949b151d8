//! Class labels: the model's own `names` metadata, or COCO-80 as a fallback.

/// COCO-80 in the order Ultralytics uses; the fallback when a model carries no names.
pub const COCO80: [&str; 80] = [
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
];

/// Parses Ultralytics' `names` metadata, a Python dict literal such as
/// `{0: 'person', 1: "o'clock"}`, into a dense list indexed by class id.
///
/// Returns `None` when the text is not such a dict or ids have gaps, so the
/// caller can fall back rather than mislabel classes.
pub fn parse_names(text: &str) -> Option<Vec<String>> {
    let body = text.trim().strip_prefix('{')?.strip_suffix('}')?;
    let mut out: Vec<(usize, String)> = Vec::new();
    let mut rest = body.trim_start();
    while !rest.is_empty() {
        let colon = rest.find(':')?;
        let id: usize = rest[..colon].trim().parse().ok()?;
        rest = rest[colon + 1..].trim_start();
        let quote = rest.chars().next()?;
        if quote != '\'' && quote != '"' {
            return None;
        }
        let mut label = String::new();
        let mut chars = rest[1..].char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        label.push(n);
                    }
                }
                c if c == quote => {
                    end = Some(i + 2);
                    break;
                }
                c => label.push(c),
            }
        }
        out.push((id, label));
        rest = rest[end?..].trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    out.sort_by_key(|(id, _)| *id);
    if out.iter().enumerate().any(|(i, (id, _))| i != *id) {
        return None;
    }
    Some(out.into_iter().map(|(_, l)| l).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ultralytics_dict() {
        let n = parse_names("{0: 'person', 1: 'traffic light', 2: \"o'clock\"}").unwrap();
        assert_eq!(n, vec!["person", "traffic light", "o'clock"]);
    }

    #[test]
    fn rejects_gaps_and_garbage() {
        assert!(parse_names("{0: 'a', 2: 'b'}").is_none());
        assert!(parse_names("person,car").is_none());
        assert!(parse_names("{0: person}").is_none());
    }

    #[test]
    fn empty_dict_is_empty() {
        assert_eq!(parse_names("{}").unwrap(), Vec::<String>::new());
    }
}
