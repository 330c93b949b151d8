//! Just enough of the Prometheus text format to read the daemon's own
//! `/metrics`: every bench number comes from there, so it agrees with what
//! an operator's Prometheus would record for the same run.

use std::collections::BTreeMap;

/// One sample: metric name, labels, value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed scrape.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    pub samples: Vec<Sample>,
}

impl Scrape {
    /// Parses the text exposition; comment lines and lines that do not
    /// parse are skipped (the daemon writes none of the latter).
    pub fn parse(text: &str) -> Scrape {
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(parse_line)
            .collect();
        Scrape { samples }
    }

    /// The value of `name` whose labels include all of `labels`, summed
    /// over the matching series (0 when none matches).
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).is_some_and(|x| x == v))
            })
            .map(|s| s.value)
            .sum()
    }

    /// Cumulative histogram buckets `(le, count)` of `name` with `labels`.
    pub fn buckets(&self, name: &str, labels: &[(&str, &str)]) -> Vec<(f64, f64)> {
        let bucket = format!("{name}_bucket");
        let mut out: Vec<(f64, f64)> = self
            .samples
            .iter()
            .filter(|s| {
                s.name == bucket
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).is_some_and(|x| x == v))
            })
            .filter_map(|s| {
                let le = s.labels.get("le")?;
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                };
                Some((le, s.value))
            })
            .collect();
        out.sort_by(|a, b| a.0.total_cmp(&b.0));
        out
    }
}

fn parse_line(line: &str) -> Option<Sample> {
    let (head, value) = line.rsplit_once(' ')?;
    let value: f64 = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    let (name, labels) = match head.split_once('{') {
        None => (head.to_string(), BTreeMap::new()),
        Some((name, rest)) => (name.to_string(), parse_labels(rest.strip_suffix('}')?)?),
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

fn parse_labels(text: &str) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '\\' => {
                    let (_, e) = chars.next()?;
                    value.push(match e {
                        'n' => '\n',
                        other => other,
                    });
                }
                '"' => break i,
                c => value.push(c),
            }
        };
        out.insert(key.trim().to_string(), value);
        rest = after[end + 1..].trim_start_matches(',');
    }
    Some(out)
}

/// The `q` quantile of the observations between two scrapes of a
/// cumulative histogram, interpolated linearly inside the bucket (as
/// Prometheus' `histogram_quantile` does). `None` without observations.
pub fn quantile(q: f64, start: &[(f64, f64)], end: &[(f64, f64)]) -> Option<f64> {
    let delta: Vec<(f64, f64)> = end
        .iter()
        .map(|(le, c)| {
            let before = start.iter().find(|(l, _)| l == le).map_or(0.0, |(_, c)| *c);
            (*le, (c - before).max(0.0))
        })
        .collect();
    let total = delta.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut prev = (0.0, 0.0);
    for &(le, count) in &delta {
        if count >= rank {
            if le.is_infinite() {
                // Above the last finite bucket: report that bound.
                return Some(prev.0);
            }
            let span = count - prev.1;
            let frac = if span > 0.0 {
                (rank - prev.1) / span
            } else {
                1.0
            };
            return Some(prev.0 + (le - prev.0) * frac);
        }
        prev = (le, count);
    }
    Some(prev.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_labels_with_escapes_and_sums() {
        let s = Scrape::parse(
            "# TYPE x counter\nx{stream=\"a\",outcome=\"processed\"} 10\nx{stream=\"b\",outcome=\"processed\"} 5\nx{stream=\"a\",outcome=\"still\"} 2\ny 3.5\nz{l=\"q\\\"uote\"} 1\n",
        );
        assert_eq!(s.sum("x", &[("outcome", "processed")]), 15.0);
        assert_eq!(s.sum("x", &[("stream", "a")]), 12.0);
        assert_eq!(s.sum("y", &[]), 3.5);
        assert_eq!(
            s.samples.last().map(|x| x.labels["l"].clone()),
            Some("q\"uote".into())
        );
    }

    #[test]
    fn quantile_interpolates_between_scrapes() {
        let start = [(0.1, 0.0), (0.2, 0.0), (f64::INFINITY, 0.0)];
        let end = [(0.1, 50.0), (0.2, 100.0), (f64::INFINITY, 100.0)];
        let p95 = quantile(0.95, &start, &end).unwrap();
        assert!((p95 - 0.19).abs() < 1e-9, "{p95}");
        assert_eq!(quantile(0.5, &end, &end), None);
    }
}
