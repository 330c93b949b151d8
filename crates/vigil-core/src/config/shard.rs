use serde::{Deserialize, Serialize};

use super::InvalidValue;

/// `[shard]`: which of the configured `[[streams]]` this process runs, so
/// that N stream nodes (a Kubernetes StatefulSet) share one camera list.
///
/// Stream `i` (its position in the list) belongs to replica `i % count`:
/// deterministic, needs no coordination, and every node computes the same
/// split from the same config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShardConfig {
    /// Stream-node replicas sharing the camera list.
    pub count: u32,
    /// This replica's 0-based index. When unset and `count > 1`, the
    /// ordinal at the end of the `HOSTNAME` environment variable is used
    /// (a StatefulSet pod `vigil-streams-2` is replica 2).
    pub index: Option<u32>,
}

impl Default for ShardConfig {
    fn default() -> Self {
        Self {
            count: 1,
            index: None,
        }
    }
}

/// Why [`ShardConfig::resolve_index`] cannot tell which replica this is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardIndexError {
    #[error(
        "shard.count = {count} but shard.index is unset and HOSTNAME is not set; \
         set shard.index (VIGIL_SHARD_INDEX) or run as a StatefulSet pod"
    )]
    NoHostname { count: u32 },
    #[error(
        "shard.index is unset and HOSTNAME {host:?} does not end in -<ordinal>; \
         set shard.index (VIGIL_SHARD_INDEX)"
    )]
    NoOrdinal { host: String },
    #[error("HOSTNAME {host:?} is replica {ordinal} but shard.count is {count}")]
    OrdinalTooHigh {
        host: String,
        ordinal: u32,
        count: u32,
    },
}

impl ShardConfig {
    pub fn validate(&self) -> Vec<InvalidValue> {
        let mut e = Vec::new();
        if self.count == 0 || self.count > 10_000 {
            e.push(InvalidValue::new(
                "shard.count",
                format!("must be between 1 and 10000, got {}", self.count),
            ));
        }
        if let Some(i) = self.index {
            if i >= self.count {
                e.push(InvalidValue::new(
                    "shard.index",
                    format!("must be below shard.count ({}), got {i}", self.count),
                ));
            }
        }
        e
    }

    /// This replica's index: the configured one, else the hostname's
    /// ordinal suffix; an error when neither says (a misdeployed replica
    /// must not silently run every camera).
    pub fn resolve_index(&self, hostname: Option<&str>) -> Result<u32, ShardIndexError> {
        if let Some(i) = self.index {
            return Ok(i);
        }
        if self.count <= 1 {
            return Ok(0);
        }
        let host = hostname.ok_or(ShardIndexError::NoHostname { count: self.count })?;
        let ordinal = host
            .rsplit_once('-')
            .and_then(|(_, n)| n.parse::<u32>().ok())
            .ok_or_else(|| ShardIndexError::NoOrdinal {
                host: host.to_string(),
            })?;
        if ordinal >= self.count {
            return Err(ShardIndexError::OrdinalTooHigh {
                host: host.to_string(),
                ordinal,
                count: self.count,
            });
        }
        Ok(ordinal)
    }

    /// Whether the stream at `position` in the configured list is ours.
    pub fn owns(&self, index: u32, position: usize) -> bool {
        self.count <= 1 || position % self.count as usize == index as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(count: u32, index: Option<u32>) -> ShardConfig {
        ShardConfig { count, index }
    }

    #[test]
    fn index_comes_from_the_statefulset_hostname() {
        assert_eq!(shard(3, None).resolve_index(Some("vigil-streams-2")), Ok(2));
        assert_eq!(
            shard(3, Some(1)).resolve_index(Some("vigil-streams-2")),
            Ok(1)
        );
        assert_eq!(shard(1, None).resolve_index(None), Ok(0));
        let e = shard(3, None)
            .resolve_index(Some("vigil-streams"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not end in -<ordinal>"), "{e}");
        let e = shard(3, None)
            .resolve_index(Some("vigil-streams-5"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("replica 5"), "{e}");
        assert!(shard(3, None).resolve_index(None).is_err());
    }

    #[test]
    fn every_stream_has_exactly_one_owner() {
        let n = 3;
        for pos in 0..20 {
            let owners: Vec<u32> = (0..n).filter(|&i| shard(n, None).owns(i, pos)).collect();
            assert_eq!(owners, vec![pos as u32 % n]);
        }
        assert!(shard(1, None).owns(0, 7));
    }

    #[test]
    fn bad_values_are_named() {
        assert_eq!(shard(0, None).validate()[0].key, "shard.count");
        assert_eq!(shard(2, Some(2)).validate()[0].key, "shard.index");
        assert!(shard(2, Some(1)).validate().is_empty());
    }
}
