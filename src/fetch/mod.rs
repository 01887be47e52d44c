//! HTTP and file fetching: conditional GET, limits, charset decoding, the
//! SSRF guard and per-host politeness. It does not parse or store: it turns a
//! feed source into an `Outcome`.
//!
//! Design notes:
//! - Redirects are followed by hand (reqwest's policy is `none`) so that every
//!   hop is re-checked by the SSRF guard, loops are named, and `moved_to` is
//!   only reported when every hop was permanent (301/308).
//! - Decompression is done here, not by reqwest, so the wire size can be
//!   capped (`max_body_bytes`) separately from the inflated size
//!   (`max_decompressed_bytes`); see `body`.
//! - The total timeout wraps request *and* body read of each hop, with the
//!   budget shared across hops, so a server dribbling one byte a second is
//!   cut off. Time spent queueing for politeness does not count.
//! - When a host answers 429/503 every later fetch to it waits; waits longer
//!   than `politeness::MAX_POLITE_WAIT` (5 s) return `RateLimited` at once,
//!   without a request, carrying the remaining wait.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use tracing::Instrument;
use url::{Host, Url};

mod body;
pub mod charset;
pub mod guard;
pub mod headers;
mod politeness;

pub use politeness::MAX_POLITE_WAIT;

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
    /// Freshness lifetime from `Expires` (relative to the response `Date`).
    pub expires: Option<Duration>,
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
    /// The URL the body came from after any redirects (base for relative
    /// links); `None` for local files.
    pub final_url: Option<String>,
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
    Gone {
        status: u16,
    },
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

/// Shared HTTP client with per-host politeness state. Cheap to clone: clones
/// share the connection pool, the host table and the global cap.
#[derive(Clone)]
pub struct Fetcher {
    inner: Arc<Inner>,
}

struct Inner {
    client: reqwest::Client,
    config: FetchConfig,
    guard: Arc<guard::Guard>,
    polite: politeness::Politeness,
    /// A proxy is configured in the environment: the proxy resolves target
    /// names, so the guard resolves and checks them itself first.
    proxied: bool,
}

/// What one request (one redirect hop) produced.
enum Step {
    Redirect { status: u16, location: String },
    Final(Outcome),
}

const ACCEPT: &str = "application/rss+xml, application/atom+xml, application/feed+json, \
                      application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5";

fn failed(class: ErrorClass, message: impl Into<String>, http_status: Option<u16>) -> Outcome {
    Outcome::Failed {
        class,
        message: message.into(),
        http_status,
    }
}

impl Fetcher {
    pub fn new(config: &FetchConfig) -> Result<Fetcher, BuildError> {
        crate::install_crypto_provider();
        if config.max_per_host == 0 {
            return Err(BuildError::Config(
                "fetch.max_per_host must be at least 1".into(),
            ));
        }
        if config.max_concurrent == 0 {
            return Err(BuildError::Config(
                "fetch.max_concurrent must be at least 1".into(),
            ));
        }
        if config.max_concurrent > tokio::sync::Semaphore::MAX_PERMITS
            || config.max_per_host > tokio::sync::Semaphore::MAX_PERMITS
        {
            return Err(BuildError::Config(
                "fetch concurrency limits are too large".into(),
            ));
        }
        let guard = Arc::new(
            guard::Guard::new(config.allow_private_networks, &config.allowed_cidrs)
                .map_err(BuildError::Config)?,
        );
        let proxy_hosts = guard::proxy_hosts_from_env();
        let proxied = !proxy_hosts.is_empty();
        let client = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .connect_timeout(config.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_gzip()
            .no_brotli()
            .no_deflate()
            .dns_resolver(guard::GuardedResolver::new(Arc::clone(&guard), proxy_hosts))
            .build()
            .map_err(|e| BuildError::Config(e.to_string()))?;
        Ok(Fetcher {
            inner: Arc::new(Inner {
                client,
                config: config.clone(),
                guard,
                polite: politeness::Politeness::new(
                    config.max_per_host,
                    config.max_concurrent,
                    config.host_spacing,
                ),
                proxied,
            }),
        })
    }

    /// Fetches a feed source: an http(s) URL, a file:// URL or a local path.
    pub async fn fetch(&self, source: &str, validators: &Validators) -> Outcome {
        let source = source.trim();
        let span = tracing::debug_span!("fetch", source = %source);
        let work = async {
            let lower = source.get(..8).unwrap_or(source).to_ascii_lowercase();
            if lower.starts_with("http://") || lower.starts_with("https://") {
                self.fetch_http(source, validators).await
            } else if source.contains("://") && !lower.starts_with("file://") {
                failed(
                    ErrorClass::InvalidUrl,
                    format!("unsupported URL scheme in {source}: use http, https or file"),
                    None,
                )
            } else {
                self.fetch_file(source).await
            }
        };
        // Belt and braces: a panic deep in a dependency becomes a failed
        // fetch of one feed, not a dead worker.
        match std::panic::AssertUnwindSafe(work.instrument(span))
            .catch_unwind()
            .await
        {
            Ok(outcome) => outcome,
            Err(_) => failed(
                ErrorClass::Io,
                "internal error while fetching (panic)",
                None,
            ),
        }
    }

    async fn fetch_file(&self, source: &str) -> Outcome {
        use tokio::io::AsyncReadExt;
        let path = if source
            .get(..7)
            .is_some_and(|p| p.eq_ignore_ascii_case("file://"))
        {
            match Url::parse(source).ok().and_then(|u| u.to_file_path().ok()) {
                Some(p) => p,
                None => {
                    return failed(
                        ErrorClass::InvalidUrl,
                        format!("invalid file URL {source}"),
                        None,
                    );
                }
            }
        } else {
            PathBuf::from(source)
        };
        let max = self.inner.config.max_body_bytes;
        let file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) => {
                return failed(
                    ErrorClass::Io,
                    format!("cannot read {}: {e}", path.display()),
                    None,
                );
            }
        };
        let mut bytes = Vec::new();
        if let Err(e) = file
            .take(max.saturating_add(1))
            .read_to_end(&mut bytes)
            .await
        {
            return failed(
                ErrorClass::Io,
                format!("cannot read {}: {e}", path.display()),
                None,
            );
        }
        if bytes.len() as u64 > max {
            return failed(
                ErrorClass::TooLarge,
                format!(
                    "{} is larger than fetch.max_body_bytes = {max}",
                    path.display()
                ),
                None,
            );
        }
        Outcome::Fetched(Fetched {
            text: charset::decode(&bytes, None),
            http_status: None,
            bytes: bytes.len() as u64,
            validators: Validators::default(),
            hints: CacheHints::default(),
            moved_to: None,
            final_url: None,
        })
    }

    async fn fetch_http(&self, source: &str, validators: &Validators) -> Outcome {
        let cfg = &self.inner.config;
        let mut url = match Url::parse(source.trim()) {
            Ok(u) => u,
            Err(e) => {
                return failed(
                    ErrorClass::InvalidUrl,
                    format!("invalid URL {source}: {e}"),
                    None,
                );
            }
        };
        url.set_fragment(None);
        let mut chain = vec![url.to_string()];
        let mut seen: HashSet<String> = HashSet::from([url.to_string()]);
        let mut all_permanent = true;
        let mut remaining = cfg.timeout;
        loop {
            if let Err(outcome) = self.precheck(&url).await {
                return outcome;
            }
            let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
            let slot = match self.inner.polite.acquire(&host).await {
                Ok(slot) => slot,
                Err(limited) => {
                    tracing::debug!(%host, wait = ?limited.remaining, "host is rate-limiting us; not requesting");
                    return Outcome::RateLimited {
                        status: limited.status,
                        retry_after: Some(limited.remaining),
                    };
                }
            };
            if remaining.is_zero() {
                return failed(
                    ErrorClass::Timeout,
                    format!(
                        "total timeout of {:?} used up before requesting {url}",
                        cfg.timeout
                    ),
                    None,
                );
            }
            let started = tokio::time::Instant::now();
            let step = match tokio::time::timeout(remaining, self.exchange(&url, validators)).await
            {
                Ok(step) => step,
                Err(_) => Step::Final(failed(
                    ErrorClass::Timeout,
                    format!(
                        "no complete response from {url} within the total timeout of {:?}",
                        cfg.timeout
                    ),
                    None,
                )),
            };
            drop(slot);
            remaining = remaining.saturating_sub(started.elapsed());

            match step {
                Step::Redirect { status, location } => {
                    let mut next = match url.join(&location) {
                        Ok(n) => n,
                        Err(e) => {
                            return failed(
                                ErrorClass::InvalidUrl,
                                format!(
                                    "HTTP {status} from {url} has an invalid Location {location:?}: {e}"
                                ),
                                Some(status),
                            );
                        }
                    };
                    next.set_fragment(None);
                    let next_s = next.to_string();
                    if !seen.insert(next_s.clone()) {
                        chain.push(next_s);
                        return failed(
                            ErrorClass::RedirectLoop,
                            format!("redirect loop: {}", chain.join(" -> ")),
                            Some(status),
                        );
                    }
                    if chain.len() > cfg.max_redirects {
                        return failed(
                            ErrorClass::TooManyRedirects,
                            format!(
                                "more than fetch.max_redirects = {} redirects starting at {source} (next: {next_s})",
                                cfg.max_redirects
                            ),
                            Some(status),
                        );
                    }
                    tracing::debug!(status, from = %url, to = %next_s, "redirect");
                    all_permanent &= status == 301 || status == 308;
                    chain.push(next_s);
                    url = next;
                }
                Step::Final(outcome) => {
                    if let Outcome::RateLimited {
                        status,
                        retry_after,
                    } = &outcome
                    {
                        self.inner.polite.rate_limited(&host, *status, *retry_after);
                    }
                    let moved = (chain.len() > 1 && all_permanent).then(|| url.to_string());
                    return match outcome {
                        Outcome::Fetched(mut f) => {
                            f.moved_to = moved;
                            f.final_url = Some(url.to_string());
                            Outcome::Fetched(f)
                        }
                        Outcome::NotModified {
                            validators, hints, ..
                        } => Outcome::NotModified {
                            validators,
                            hints,
                            moved_to: moved,
                        },
                        other => other,
                    };
                }
            }
        }
    }

    /// Scheme and SSRF checks that must happen before each hop. IP literals
    /// never reach the resolver, so they are checked here.
    async fn precheck(&self, url: &Url) -> Result<(), Outcome> {
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(failed(
                ErrorClass::InvalidUrl,
                format!(
                    "refusing to fetch {url}: only http and https are allowed over the network"
                ),
                None,
            ));
        }
        let ip = match url.host() {
            Some(Host::Ipv4(v4)) => Some(std::net::IpAddr::V4(v4)),
            Some(Host::Ipv6(v6)) => Some(std::net::IpAddr::V6(v6)),
            Some(Host::Domain(_)) => None,
            None => {
                return Err(failed(
                    ErrorClass::InvalidUrl,
                    format!("{url} has no host"),
                    None,
                ));
            }
        };
        let host = url.host_str().unwrap_or_default();
        if let Some(ip) = ip {
            return self
                .inner
                .guard
                .check(host, ip)
                .map_err(|b| failed(ErrorClass::Blocked, b.to_string(), None));
        }
        if self.inner.proxied {
            let port = url.port_or_known_default().unwrap_or(80);
            if let Err(e) = guard::resolve_checked(&self.inner.guard, host, port).await {
                return Err(match e.downcast_ref::<guard::Blocked>() {
                    Some(b) => failed(ErrorClass::Blocked, b.to_string(), None),
                    None => failed(ErrorClass::Dns, format!("cannot resolve {host}: {e}"), None),
                });
            }
        }
        Ok(())
    }

    /// One request: send, classify the status, and for 2xx read the body.
    async fn exchange(&self, url: &Url, validators: &Validators) -> Step {
        let cfg = &self.inner.config;
        let mut req = self
            .inner
            .client
            .get(url.clone())
            .header(reqwest::header::ACCEPT, ACCEPT)
            .header(reqwest::header::ACCEPT_ENCODING, "gzip, br, deflate");
        if let Some(etag) = &validators.etag {
            req = req.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        if let Some(lm) = &validators.last_modified {
            req = req.header(reqwest::header::IF_MODIFIED_SINCE, lm);
        }
        let mut resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Step::Final(classify_reqwest(&e, url, None)),
        };
        let status = resp.status().as_u16();
        tracing::debug!(status, %url, "response");
        metrics::counter!("feedfold_http_responses_total", "class" => status_class(status))
            .increment(1);
        let h = resp.headers();
        let header = |name: reqwest::header::HeaderName| {
            h.get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned())
        };
        let now = chrono::Utc::now();
        match status {
            301 | 302 | 303 | 307 | 308 => {
                return match header(reqwest::header::LOCATION) {
                    Some(location) if !location.is_empty() => Step::Redirect { status, location },
                    _ => Step::Final(failed(
                        ErrorClass::InvalidUrl,
                        format!("HTTP {status} from {url} without a Location header"),
                        Some(status),
                    )),
                };
            }
            410 => return Step::Final(Outcome::Gone { status }),
            429 | 503 => {
                let retry_after = header(reqwest::header::RETRY_AFTER)
                    .and_then(|v| headers::parse_retry_after(&v, now));
                return Step::Final(Outcome::RateLimited {
                    status,
                    retry_after,
                });
            }
            _ => {}
        }
        let hints = CacheHints {
            max_age: header(reqwest::header::CACHE_CONTROL)
                .and_then(|v| headers::parse_max_age(&v)),
            expires: header(reqwest::header::EXPIRES).and_then(|v| {
                headers::parse_expires(&v, header(reqwest::header::DATE).as_deref(), now)
            }),
        };
        let new_validators = Validators {
            etag: header(reqwest::header::ETAG).filter(|v| !v.is_empty()),
            last_modified: header(reqwest::header::LAST_MODIFIED).filter(|v| !v.is_empty()),
        };
        if status == 304 {
            return Step::Final(Outcome::NotModified {
                validators: Validators {
                    etag: new_validators.etag.or_else(|| validators.etag.clone()),
                    last_modified: new_validators
                        .last_modified
                        .or_else(|| validators.last_modified.clone()),
                },
                hints,
                moved_to: None,
            });
        }
        if !(200..300).contains(&status) {
            let class = if (500..600).contains(&status) {
                ErrorClass::Http5xx
            } else {
                // 4xx, and statuses feedfold cannot act on (1xx leftovers,
                // 300/305/306): the request as made cannot succeed.
                ErrorClass::Http4xx
            };
            let reason = resp.status().canonical_reason().unwrap_or("");
            return Step::Final(failed(
                class,
                format!("HTTP {status} {reason} from {url}").replace("  ", " "),
                Some(status),
            ));
        }

        let charset =
            header(reqwest::header::CONTENT_TYPE).and_then(|v| headers::charset_param(&v));
        let encoding = header(reqwest::header::CONTENT_ENCODING);
        if let Some(len) = resp.content_length()
            && len > cfg.max_body_bytes
        {
            return Step::Final(failed(
                ErrorClass::TooLarge,
                format!(
                    "{url} declares Content-Length {len}, over fetch.max_body_bytes = {}",
                    cfg.max_body_bytes
                ),
                Some(status),
            ));
        }
        let mut decoder = match body::Decoder::new(encoding.as_deref(), cfg.max_decompressed_bytes)
        {
            Ok(d) => d,
            Err(e) => return Step::Final(decode_failure(e, url, status)),
        };
        let mut wire: u64 = 0;
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    wire = wire.saturating_add(chunk.len() as u64);
                    if wire > cfg.max_body_bytes {
                        metrics::counter!("feedfold_fetched_bytes_total").increment(wire);
                        return Step::Final(failed(
                            ErrorClass::TooLarge,
                            format!(
                                "body of {url} exceeds fetch.max_body_bytes = {}; stopped reading",
                                cfg.max_body_bytes
                            ),
                            Some(status),
                        ));
                    }
                    if let Err(e) = decoder.push(&chunk) {
                        metrics::counter!("feedfold_fetched_bytes_total").increment(wire);
                        return Step::Final(decode_failure(e, url, status));
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    metrics::counter!("feedfold_fetched_bytes_total").increment(wire);
                    return Step::Final(classify_reqwest(&e, url, Some(status)));
                }
            }
        }
        metrics::counter!("feedfold_fetched_bytes_total").increment(wire);
        let bytes = match decoder.finish() {
            Ok(b) => b,
            Err(e) => return Step::Final(decode_failure(e, url, status)),
        };
        Step::Final(Outcome::Fetched(Fetched {
            text: charset::decode(&bytes, charset.as_deref()),
            http_status: Some(status),
            bytes: wire,
            validators: new_validators,
            hints,
            moved_to: None,
            final_url: None,
        }))
    }
}

fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

fn decode_failure(e: body::DecodeError, url: &Url, status: u16) -> Outcome {
    match e {
        body::DecodeError::TooLarge(cap) => failed(
            ErrorClass::TooLarge,
            format!(
                "body of {url} exceeds fetch.max_decompressed_bytes = {cap} once decoded; stopped reading"
            ),
            Some(status),
        ),
        body::DecodeError::Corrupt(msg) => failed(
            ErrorClass::Parse,
            format!("cannot decode the compressed body of {url}: {msg}"),
            Some(status),
        ),
        body::DecodeError::Unsupported(enc) => failed(
            ErrorClass::Parse,
            format!("{url} sent unsupported Content-Encoding {enc:?}"),
            Some(status),
        ),
    }
}

/// Maps a reqwest error to an error class by inspecting its source chain;
/// the message carries the whole chain, which is what operators need.
fn classify_reqwest(e: &reqwest::Error, url: &Url, http_status: Option<u16>) -> Outcome {
    let mut parts = vec![e.to_string()];
    let mut blocked = None;
    let mut tls = false;
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if find_in::<rustls::Error>(s).is_some() {
            tls = true;
        }
        if let Some(b) = find_in::<guard::Blocked>(s) {
            blocked = Some(b.to_string());
        }
        let text = s.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        source = s.source();
    }
    if let Some(msg) = blocked {
        return failed(ErrorClass::Blocked, msg, http_status);
    }
    let chain = parts.join(": ");
    let lower = chain.to_ascii_lowercase();
    let class = if e.is_timeout() {
        ErrorClass::Timeout
    } else if tls
        || lower.contains("certificate")
        || lower.contains("tls handshake")
        || lower.contains("invalid peer")
    {
        ErrorClass::Tls
    } else if e.is_dns() || lower.contains("dns error") || lower.contains("failed to lookup") {
        ErrorClass::Dns
    } else {
        ErrorClass::Connect
    };
    failed(class, format!("{url}: {chain}"), http_status)
}

/// Finds a `T` in `e`, looking through (nested) io::Error payloads, which
/// std hides from `source()` and which carry rustls and resolver errors.
fn find_in<'a, T: std::error::Error + 'static>(
    mut e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    for _ in 0..8 {
        if let Some(t) = e.downcast_ref::<T>() {
            return Some(t);
        }
        let inner = e.downcast_ref::<std::io::Error>()?.get_ref()?;
        e = inner;
    }
    None
}
