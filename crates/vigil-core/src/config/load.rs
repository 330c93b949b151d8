//! Reading `vigil.toml` with `VIGIL_<SECTION>_<KEY>` environment overrides.

use std::path::Path;

use super::Config;

/// Why a config could not be used; each message names the file or variable and key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("{origin}: {}", .problems.join("; "))]
    Invalid {
        origin: String,
        problems: Vec<String>,
    },
}

/// Table sections that `VIGIL_<SECTION>_<KEY>` may override. The arrays of
/// tables (`[[streams]]`, `[[webhooks]]`) have no single key to address.
const SECTIONS: &[&str] = &[
    "model", "batch", "tracker", "queue", "server", "storage", "jobs", "events", "drift", "health",
    "shard",
];

impl Config {
    /// Loads a file, applies environment overrides, and validates every value.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string(), std::env::vars())
    }

    /// Like [`Config::load`] for defaults plus environment only (no file).
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_toml("", "defaults", std::env::vars())
    }

    /// Parses `text` (named `origin` in errors) and applies `VIGIL_*` overrides from `env`.
    pub fn from_toml(
        text: &str,
        origin: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let parse_err = |origin: &str, e: toml::de::Error| ConfigError::Parse {
            origin: origin.to_string(),
            message: e.message().to_string()
                + &e.span()
                    .map(|s| format!(" (at line {})", line_of(text, s.start)))
                    .unwrap_or_default(),
        };
        // Parse the file alone first so errors point at its lines.
        let mut cfg: Config = toml::from_str(text).map_err(|e| parse_err(origin, e))?;
        let overrides = env_overrides(env);
        if !overrides.is_empty() {
            let mut value: toml::Table = toml::from_str(text).map_err(|e| parse_err(origin, e))?;
            let mut names = Vec::new();
            for (var, section, key, raw) in overrides {
                let sec = value
                    .entry(section)
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                if let toml::Value::Table(t) = sec {
                    t.insert(key, parse_scalar(&raw));
                }
                names.push(var);
            }
            let origin = format!("{origin} with {}", names.join(", "));
            cfg = toml::Value::Table(value)
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Parse {
                    origin: origin.clone(),
                    message: e.message().to_string(),
                })?;
        }
        let problems = cfg.validate();
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigError::Invalid {
                origin: origin.to_string(),
                problems: problems.iter().map(ToString::to_string).collect(),
            })
        }
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// `VIGIL_MODEL_CONF=0.3` → ("VIGIL_MODEL_CONF", "model", "conf", "0.3"); only
/// known sections, so unrelated `VIGIL_*` variables do not break start-up.
fn env_overrides(
    env: impl IntoIterator<Item = (String, String)>,
) -> Vec<(String, String, String, String)> {
    let mut out: Vec<_> = env
        .into_iter()
        .filter_map(|(k, v)| {
            let rest = k.strip_prefix("VIGIL_")?.to_ascii_lowercase();
            let section = SECTIONS
                .iter()
                .find(|s| rest.starts_with(&format!("{s}_")))?;
            let key = rest[section.len() + 1..].to_string();
            Some((k, section.to_string(), key, v))
        })
        .collect();
    out.sort();
    out
}

/// Environment values are typed the way TOML would read them (numbers, bools,
/// arrays); anything else is a string, so `VIGIL_MODEL_PATH=/m.onnx` works unquoted.
fn parse_scalar(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn empty_text_gives_defaults() {
        let c = Config::from_toml("", "t", env(&[])).unwrap();
        assert_eq!(c, Config::default());
    }

    #[test]
    fn unknown_key_is_named() {
        let e = Config::from_toml("[model]\nconfidence = 0.3\n", "cfg.toml", env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cfg.toml") && e.contains("confidence") && e.contains("line 2"),
            "{e}"
        );
    }

    #[test]
    fn bad_value_is_named() {
        let e = Config::from_toml("[model]\nconf = 3.0\n", "c", env(&[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("model.conf"), "{e}");
    }

    #[test]
    fn env_overrides_win_and_are_typed() {
        let c = Config::from_toml(
            "[model]\nconf = 0.3\n",
            "c",
            env(&[
                ("VIGIL_MODEL_CONF", "0.5"),
                ("VIGIL_MODEL_PATH", "/m.onnx"),
                ("VIGIL_BATCH_MAX_SIZE", "8"),
                ("VIGIL_UNRELATED", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(c.model.conf, 0.5);
        assert_eq!(c.model.path, std::path::PathBuf::from("/m.onnx"));
        assert_eq!(c.batch.max_size, 8);
    }

    #[test]
    fn env_override_with_unknown_key_fails_naming_variable() {
        let e = Config::from_toml("", "c", env(&[("VIGIL_MODEL_NOPE", "1")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("VIGIL_MODEL_NOPE") && e.contains("nope"), "{e}");
    }
}
