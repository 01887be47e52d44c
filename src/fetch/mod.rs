//! HTTP and file fetching: conditional GET, limits, charset decoding, the
//! SSRF guard and per-host politeness. It does not parse or store: it turns a
//! feed source into an `Outcome`.

use std::time::Duration;

pub mod charset;

/// Conditional-GET validators carried from one poll to the next.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// Freshness hints from HTTP caching headers (Cache-Control max-age, Expires).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheHints {
    pub max_age: Option<Duration>,
}

/// Why a fetch failed; stored on the feed as its error class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    InvalidUrl,
    Blocked,
    Dns,
    Connect,
    Tls,
    Timeout,
    TooLarge,
    RedirectLoop,
    TooManyRedirects,
    Http4xx,
    Http5xx,
    Io,
    Parse,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::InvalidUrl => "invalid_url",
            ErrorClass::Blocked => "blocked",
            ErrorClass::Dns => "dns",
            ErrorClass::Connect => "connect",
            ErrorClass::Tls => "tls",
            ErrorClass::Timeout => "timeout",
            ErrorClass::TooLarge => "too_large",
            ErrorClass::RedirectLoop => "redirect_loop",
            ErrorClass::TooManyRedirects => "too_many_redirects",
            ErrorClass::Http4xx => "http_4xx",
            ErrorClass::Http5xx => "http_5xx",
            ErrorClass::Io => "io",
            ErrorClass::Parse => "parse",
        }
    }
}

/// A successful fetch: the body decoded to UTF-8, ready for `parse::feed`.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    pub text: String,
    pub http_status: Option<u16>,
    /// Bytes received on the wire (before decompression).
    pub bytes: u64,
    pub validators: Validators,
    pub hints: CacheHints,
    /// Set when a chain of only permanent redirects (301/308) moved the feed.
    pub moved_to: Option<String>,
}

/// The result of one fetch. Every failure mode is a value, never a panic.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Fetched(Fetched),
    NotModified {
        validators: Validators,
        hints: CacheHints,
        moved_to: Option<String>,
    },
    /// 410: the publisher says the feed is gone for good.
    Gone { status: u16 },
    /// 429 or 503; `retry_after` from the header when present.
    RateLimited {
        status: u16,
        retry_after: Option<Duration>,
    },
    Failed {
        class: ErrorClass,
        message: String,
        http_status: Option<u16>,
    },
}

/// Client settings; defaults are documented in feedfold.example.toml.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FetchConfig {
    pub user_agent: String,
    #[serde(with = "crate::config::duration")]
    pub connect_timeout: Duration,
    #[serde(with = "crate::config::duration")]
    pub timeout: Duration,
    pub max_body_bytes: u64,
    pub max_decompressed_bytes: u64,
    pub max_redirects: usize,
    pub max_per_host: usize,
    #[serde(with = "crate::config::duration")]
    pub host_spacing: Duration,
    pub max_concurrent: usize,
    /// Allow connections to private, loopback and link-local networks.
    pub allow_private_networks: bool,
    /// CIDRs allowed even when private networks are refused.
    pub allowed_cidrs: Vec<String>,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            user_agent: format!(
                "feedfold/{} (+{})",
                env!("CARGO_PKG_VERSION"),
                env!("CARGO_PKG_REPOSITORY")
            ),
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            max_body_bytes: 16 * 1024 * 1024,
            max_decompressed_bytes: 64 * 1024 * 1024,
            max_redirects: 10,
            max_per_host: 2,
            host_spacing: Duration::from_secs(1),
            max_concurrent: 32,
            allow_private_networks: false,
            allowed_cidrs: Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("invalid fetch configuration: {0}")]
    Config(String),
}

/// Shared HTTP client with per-host politeness state. Cheap to clone.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
}

impl Fetcher {
    pub fn new(config: &FetchConfig) -> Result<Fetcher, BuildError> {
        crate::install_crypto_provider();
        let client = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .build()
            .map_err(|e| BuildError::Config(e.to_string()))?;
        Ok(Fetcher { client })
    }

    /// Fetches a feed source: an http(s) URL, a file:// URL or a local path.
    pub async fn fetch(&self, source: &str, validators: &Validators) -> Outcome {
        if !source.starts_with("http://") && !source.starts_with("https://") {
            let path = source.strip_prefix("file://").unwrap_or(source);
            return match tokio::fs::read(path).await {
                Ok(bytes) => Outcome::Fetched(Fetched {
                    text: charset::decode(&bytes, None),
                    http_status: None,
                    bytes: bytes.len() as u64,
                    validators: Validators::default(),
                    hints: CacheHints::default(),
                    moved_to: None,
                }),
                Err(e) => Outcome::Failed {
                    class: ErrorClass::Io,
                    message: format!("cannot read {path}: {e}"),
                    http_status: None,
                },
            };
        }
        let mut req = self.client.get(source);
        if let Some(etag) = &validators.etag {
            req = req.header("If-None-Match", etag);
        }
        match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                match resp.bytes().await {
                    Ok(b) => Outcome::Fetched(Fetched {
                        text: charset::decode(&b, None),
                        http_status: Some(status),
                        bytes: b.len() as u64,
                        validators: Validators::default(),
                        hints: CacheHints::default(),
                        moved_to: None,
                    }),
                    Err(e) => Outcome::Failed {
                        class: ErrorClass::Connect,
                        message: e.to_string(),
                        http_status: Some(status),
                    },
                }
            }
            Err(e) => Outcome::Failed {
                class: ErrorClass::Connect,
                message: e.to_string(),
                http_status: None,
            },
        }
    }
}
