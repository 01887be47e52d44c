//! Configuration: a TOML file, then environment variables, then flags, in
//! rising precedence. Values are passed down explicitly; there is no global
//! config. Every key and its default is listed in feedfold.example.toml, and a
//! test checks that file against `Config::default()`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::dedup::{FeedPolicy, FoldConfig};
use crate::fetch::FetchConfig;
use crate::scheduler::SchedulerConfig;

/// Serde adapter for durations written as "30s", "10m", "14days".
pub mod duration {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Database URL. Empty means the embedded default: `feedfold.db` in the
    /// working directory, or in $STATE_DIRECTORY under systemd.
    pub database_url: String,
    /// Address of the HTTP listener for /healthz, /readyz and /metrics.
    /// Empty disables it.
    pub listen: String,
    pub log_format: LogFormat,
    /// tracing filter directives, e.g. "info" or "feedfold=debug".
    pub log_filter: String,
    /// Name of this daemon instance in feed leases. Empty: hostname + pid.
    pub instance: String,
    pub fetch: FetchConfig,
    pub fold: FoldConfig,
    pub scheduler: SchedulerConfig,
    /// Feeds declared in the config, added on start (never removed).
    pub feeds: Vec<FeedEntry>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database_url: String::new(),
            listen: "127.0.0.1:9187".to_string(),
            log_format: LogFormat::Text,
            log_filter: "info,sqlx=warn".to_string(),
            instance: String::new(),
            fetch: FetchConfig::default(),
            fold: FoldConfig::default(),
            scheduler: SchedulerConfig::default(),
            feeds: Vec::new(),
        }
    }
}

/// One feed declared in the config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedEntry {
    pub url: String,
    #[serde(default)]
    pub title: Option<String>,
    /// "normal", "original_only" or "never".
    #[serde(default = "default_policy")]
    pub fold_policy: String,
    /// Languages the feed publishes in (ISO 639-1), when known.
    #[serde(default)]
    pub languages: Vec<String>,
    /// Whether translations from this feed may fold into other-language stories.
    #[serde(default = "default_true")]
    pub fold_translations: bool,
}

fn default_policy() -> String {
    "normal".to_string()
}

fn default_true() -> bool {
    true
}

impl FeedEntry {
    pub fn policy(&self) -> Result<FeedPolicy, String> {
        FeedPolicy::parse(&self.fold_policy).ok_or_else(|| {
            format!(
                "feed {}: unknown fold_policy `{}` (expected normal, original_only or never)",
                self.url, self.fold_policy
            )
        })
    }
}

/// Where settings come from besides the file; `Env::from_process` reads the
/// real environment, tests build one by hand.
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub database_url: Option<String>,
    pub listen: Option<String>,
    pub log_filter: Option<String>,
    pub config_path: Option<PathBuf>,
    pub state_directory: Option<PathBuf>,
    pub configuration_directory: Option<PathBuf>,
    pub home: Option<PathBuf>,
}

impl Env {
    pub fn from_process() -> Env {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Env {
            database_url: var("FEEDFOLD_DATABASE_URL").or_else(|| var("DATABASE_URL")),
            listen: var("FEEDFOLD_LISTEN"),
            log_filter: var("FEEDFOLD_LOG"),
            config_path: var("FEEDFOLD_CONFIG").map(PathBuf::from),
            // systemd may pass several colon-separated directories; the
            // first is ours.
            state_directory: var("STATE_DIRECTORY")
                .map(|v| PathBuf::from(v.split(':').next().unwrap_or_default())),
            configuration_directory: var("CONFIGURATION_DIRECTORY")
                .map(|v| PathBuf::from(v.split(':').next().unwrap_or_default())),
            home: var("HOME").map(PathBuf::from),
        }
    }
}

/// Overrides given on the command line.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub config: Option<PathBuf>,
    pub database: Option<String>,
    pub listen: Option<String>,
    pub log_format: Option<LogFormat>,
}

impl Config {
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Invalid {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// Loads the file (explicit path, or the first default location that
    /// exists), then applies environment and flags.
    pub fn load(flags: &Flags, env: &Env) -> Result<(Config, Option<PathBuf>), ConfigError> {
        let explicit = flags.config.clone().or_else(|| env.config_path.clone());
        let path = match explicit {
            Some(p) => Some(p),
            None => default_locations(env).into_iter().find(|p| p.is_file()),
        };
        let mut config = match &path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.clone(),
                    source,
                })?;
                Config::parse(&text, p)?
            }
            None => Config::default(),
        };
        if let Some(url) = &env.database_url {
            config.database_url = url.clone();
        }
        if let Some(l) = &env.listen {
            config.listen = l.clone();
        }
        if let Some(f) = &env.log_filter {
            config.log_filter = f.clone();
        }
        if let Some(url) = &flags.database {
            config.database_url = url.clone();
        }
        if let Some(l) = &flags.listen {
            config.listen = l.clone();
        }
        if let Some(f) = flags.log_format {
            config.log_format = f;
        }
        if config.database_url.is_empty() {
            config.database_url = default_database_url(env);
        }
        for feed in &config.feeds {
            feed.policy().map_err(|message| ConfigError::Invalid {
                path: path.clone().unwrap_or_default(),
                message,
            })?;
        }
        Ok((config, path))
    }
}

/// Config file locations tried in order when none is given.
pub fn default_locations(env: &Env) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(dir) = &env.configuration_directory {
        out.push(dir.join("feedfold.toml"));
    }
    out.push(PathBuf::from("feedfold.toml"));
    if let Some(home) = &env.home {
        out.push(home.join(".config/feedfold/feedfold.toml"));
    }
    out.push(PathBuf::from("/etc/feedfold/feedfold.toml"));
    out
}

/// The embedded default: SQLite in systemd's state directory when run as a
/// service, else in the working directory.
pub fn default_database_url(env: &Env) -> String {
    let path = match &env.state_directory {
        Some(dir) => dir.join("feedfold.db"),
        None => PathBuf::from("feedfold.db"),
    };
    format!("sqlite:{}", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_named() {
        let err = Config::parse("databse_url = 'x'", Path::new("f.toml")).unwrap_err();
        assert!(err.to_string().contains("databse_url"), "{err}");
        let err = Config::parse("[fetch]\ntimeuot = '1s'", Path::new("f.toml")).unwrap_err();
        assert!(err.to_string().contains("timeuot"), "{err}");
    }

    #[test]
    fn precedence_is_file_then_env_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "database_url = 'sqlite:file.db'\nlisten = '127.0.0.1:1'\n",
        )
        .unwrap();
        let flags = Flags {
            config: Some(path.clone()),
            ..Default::default()
        };
        let (c, _) = Config::load(&flags, &Env::default()).unwrap();
        assert_eq!(c.database_url, "sqlite:file.db");
        let env = Env {
            database_url: Some("sqlite:env.db".into()),
            ..Default::default()
        };
        let (c, _) = Config::load(&flags, &env).unwrap();
        assert_eq!(c.database_url, "sqlite:env.db");
        assert_eq!(c.listen, "127.0.0.1:1");
        let flags = Flags {
            database: Some("sqlite:flag.db".into()),
            ..flags
        };
        let (c, _) = Config::load(&flags, &env).unwrap();
        assert_eq!(c.database_url, "sqlite:flag.db");
    }

    #[test]
    fn default_database_follows_systemd_state_directory() {
        let env = Env {
            state_directory: Some(PathBuf::from("/var/lib/feedfold")),
            ..Default::default()
        };
        assert_eq!(
            default_database_url(&env),
            "sqlite:/var/lib/feedfold/feedfold.db"
        );
        assert_eq!(default_database_url(&Env::default()), "sqlite:feedfold.db");
    }

    #[test]
    fn missing_explicit_file_is_an_error() {
        let flags = Flags {
            config: Some(PathBuf::from("/nonexistent/feedfold.toml")),
            ..Default::default()
        };
        let err = Config::load(&flags, &Env::default()).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/feedfold.toml"));
    }

    #[test]
    fn bad_fold_policy_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[[feeds]]\nurl = 'https://a.example/feed'\nfold_policy = 'sometimes'\n",
        )
        .unwrap();
        let flags = Flags {
            config: Some(path),
            ..Default::default()
        };
        let err = Config::load(&flags, &Env::default()).unwrap_err();
        assert!(err.to_string().contains("sometimes"), "{err}");
    }

    /// feedfold.example.toml documents every key with its real default.
    #[test]
    fn example_file_matches_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("feedfold.example.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let parsed = Config::parse(&text, &path).unwrap();
        assert_eq!(parsed, Config::default());
        // Every key of the defaults appears in the file (commented or not is
        // not enough: the parsed equality above needs them uncommented).
        let defaults = toml::to_string(&Config::default()).unwrap();
        for line in defaults.lines() {
            if let Some((key, _)) = line.split_once(" = ") {
                assert!(
                    text.contains(&format!("{key} = ")),
                    "{key} missing from example"
                );
            }
        }
    }
}
