//! Command-line interface: parses arguments, loads the config and hands
//! explicit values to the library. `anyhow` is used here and in main only.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand};
use futures_util::StreamExt;

use tokio_util::sync::CancellationToken;

use crate::config::{Config, Env, Flags, LogFormat};
use crate::daemon;
use crate::dedup::FeedPolicy;
use crate::fetch::{Fetcher, Outcome, Validators};
use crate::refresh::{self, FeedReport};
use crate::store::{self, Feed, NewFeed, Opened, Store};

/// feedfold polls RSS, Atom and JSON feeds and folds syndicated copies of
/// one story into one canonical story, stored in SQLite or PostgreSQL.
#[derive(Debug, Parser)]
#[command(name = "feedfold", version, about, long_about = None)]
pub struct Cli {
    /// Config file (default: $CONFIGURATION_DIRECTORY/feedfold.toml,
    /// ./feedfold.toml, ~/.config/feedfold/feedfold.toml, /etc/feedfold/feedfold.toml).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Database URL: sqlite:PATH (default sqlite:feedfold.db) or postgres://...
    /// Overrides FEEDFOLD_DATABASE_URL and DATABASE_URL.
    #[arg(long, global = true, value_name = "URL")]
    database: Option<String>,
    /// Log format.
    #[arg(long, global = true, value_name = "FORMAT", value_parser = ["text", "json"])]
    log_format: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon: poll feeds on schedule until SIGTERM.
    Run {
        /// Address for /healthz, /readyz and /metrics ("" disables).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Poll feeds once and print a summary.
    Poll {
        /// Poll every enabled feed now, whether due or not.
        #[arg(long)]
        once: bool,
    },
    /// Manage feeds.
    #[command(subcommand)]
    Feeds(FeedsCommand),
    /// Add every feed of an OPML file (nested outlines included).
    ImportOpml { file: PathBuf },
    /// Write all feeds as OPML 2.0 to FILE or stdout.
    ExportOpml { file: Option<PathBuf> },
    /// Fetch or read one feed and print its items as feedfold sees them,
    /// without storing anything.
    Inspect {
        /// An http(s) URL, a file:// URL or a path.
        source: String,
        #[arg(long)]
        json: bool,
    },
    /// The newest canonical stories, with copy counts and the feeds that carried them.
    Stories {
        /// Only stories first published within this long (e.g. 24h, 7days).
        #[arg(long, value_name = "DURATION")]
        since: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Move a folded item back into a story of its own; the fold is not repeated.
    Unfold { item: i64 },
    /// Apply database migrations (run and poll apply them too).
    Migrate,
    /// Exit 0 if the daemon's /healthz answers 200 (for container healthchecks).
    Healthcheck {
        #[arg(long, default_value = "http://127.0.0.1:9187/healthz")]
        url: String,
    },
}

#[derive(Debug, Subcommand)]
enum FeedsCommand {
    /// Add a feed by URL or local path.
    Add(AddFeed),
    /// List feeds with their polling state.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a feed and its items.
    Remove { feed: String },
    /// Re-enable a disabled feed and poll it soon.
    Enable { feed: String },
    /// Disable a feed.
    Disable {
        feed: String,
        #[arg(long, default_value = "disabled by user")]
        reason: String,
    },
}

#[derive(Debug, Args)]
struct AddFeed {
    url: String,
    #[arg(long)]
    title: Option<String>,
    /// normal, original_only (never folded into others) or never (no folding).
    #[arg(long, default_value = "normal")]
    policy: String,
    /// Languages the feed publishes in, comma-separated ISO 639-1 codes.
    #[arg(long)]
    languages: Option<String>,
    /// Do not fold this feed's items as translations.
    #[arg(long)]
    no_translations: bool,
}

/// Entry point used by the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        // A reader that went away (`feedfold inspect … | head`) is not an error.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

async fn dispatch(cli: Cli) -> Result<ExitCode> {
    crate::install_crypto_provider();
    let flags = Flags {
        config: cli.config.clone(),
        database: cli.database.clone(),
        listen: match &cli.command {
            Command::Run { listen } => listen.clone(),
            _ => None,
        },
        log_format: match cli.log_format.as_deref() {
            Some("json") => Some(LogFormat::Json),
            Some(_) => Some(LogFormat::Text),
            None => None,
        },
    };
    if let Command::Healthcheck { url } = &cli.command {
        return healthcheck(url).await;
    }
    let (config, _path) = Config::load(&flags, &Env::from_process())?;
    crate::daemon::init_logging(config.log_format == LogFormat::Json, &config.log_filter)?;
    if let Command::Run { .. } = &cli.command {
        return run_daemon(config).await;
    }
    if let Command::Inspect { source, json } = &cli.command {
        inspect(&config, source, *json, &mut std::io::stdout().lock()).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let opened = store::open(&config.database_url).await.with_context(|| {
        format!(
            "cannot open database {}",
            store::redact_url(&config.database_url)
        )
    })?;
    match opened {
        Opened::Sqlite(s) => with_store(cli.command, config, s).await,
        Opened::Postgres(s) => with_store(cli.command, config, s).await,
    }
}

async fn with_store<S: Store>(command: Command, config: Config, store: S) -> Result<ExitCode> {
    store.migrate().await.context("cannot apply migrations")?;
    let result = run_command(command, &config, &store).await;
    store.close().await;
    result
}

async fn run_command<S: Store>(command: Command, config: &Config, store: &S) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match command {
        Command::Migrate => {
            writeln!(out, "migrations applied ({})", store.backend())?;
        }
        Command::Feeds(cmd) => feeds_command(cmd, store, &mut out).await?,
        Command::ImportOpml { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let feeds = crate::opml::parse(&text)
                .with_context(|| format!("invalid OPML in {}", file.display()))?;
            let (mut added, mut known) = (0, 0);
            for f in feeds {
                let (_, new) = store
                    .ensure_feed(&NewFeed {
                        url: f.url,
                        title: f.title,
                        fold_translations: true,
                        ..Default::default()
                    })
                    .await?;
                if new { added += 1 } else { known += 1 }
            }
            writeln!(out, "imported {added} feeds ({known} already present)")?;
        }
        Command::ExportOpml { file } => {
            let feeds: Vec<_> = store
                .feeds()
                .await?
                .into_iter()
                .map(|f| crate::opml::OpmlFeed {
                    url: f.url,
                    title: f.title,
                    site_url: f.site_url,
                })
                .collect();
            let text = crate::opml::export(&feeds);
            match file {
                Some(path) => std::fs::write(&path, text)
                    .with_context(|| format!("cannot write {}", path.display()))?,
                None => out.write_all(text.as_bytes())?,
            }
        }
        Command::Stories { since, limit } => {
            let since = match since {
                Some(s) => {
                    let d = humantime::parse_duration(&s)
                        .map_err(|e| anyhow!("invalid --since `{s}`: {e}"))?;
                    Some(chrono::Utc::now() - chrono::Duration::from_std(d)?)
                }
                None => None,
            };
            for s in store.newest_stories(since, limit).await? {
                let when = s
                    .first_published_at
                    .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                    .unwrap_or_else(|| "-".into());
                writeln!(
                    out,
                    "{when}  [{} cop{}]  {}\n    story {}  {}\n    carried by: {}",
                    s.copies,
                    if s.copies == 1 { "y" } else { "ies" },
                    s.title.as_deref().unwrap_or("(untitled)"),
                    s.story_id,
                    s.url.as_deref().unwrap_or(""),
                    s.feeds.join(", ")
                )?;
            }
        }
        Command::Unfold { item } => match store.unfold(item).await? {
            Some(story) => writeln!(out, "item {item} moved to new story {story}")?,
            None => bail!("item {item} is not folded into another story"),
        },
        Command::Poll { once } => {
            add_config_feeds(config, store).await?;
            let summary = poll_pass(config, store, once).await?;
            writeln!(out, "{summary}")?;
        }
        Command::Run { .. } | Command::Inspect { .. } | Command::Healthcheck { .. } => {
            unreachable!("handled before the store opens")
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn feeds_command<S: Store>(cmd: FeedsCommand, store: &S, out: &mut impl Write) -> Result<()> {
    match cmd {
        FeedsCommand::Add(a) => {
            let policy = FeedPolicy::parse(&a.policy).ok_or_else(|| {
                anyhow!(
                    "unknown --policy `{}` (normal, original_only, never)",
                    a.policy
                )
            })?;
            let feed = store
                .add_feed(&NewFeed {
                    url: normalize_source(&a.url)?,
                    title: a.title,
                    fold_policy: policy,
                    languages: a.languages,
                    fold_translations: !a.no_translations,
                })
                .await?;
            writeln!(out, "added feed {} {}", feed.id, feed.url)?;
        }
        FeedsCommand::List { json } => {
            let feeds = store.feeds().await?;
            if json {
                let rows: Vec<_> = feeds.iter().map(feed_json).collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
            } else {
                for f in &feeds {
                    write_feed(out, f)?;
                }
            }
        }
        FeedsCommand::Remove { feed } => {
            let f = find_feed(store, &feed).await?;
            store.remove_feed(f.id).await?;
            writeln!(out, "removed feed {} {}", f.id, f.url)?;
        }
        FeedsCommand::Enable { feed } => {
            let f = find_feed(store, &feed).await?;
            store.set_feed_enabled(f.id, true, None).await?;
            writeln!(out, "enabled feed {} {}", f.id, f.url)?;
        }
        FeedsCommand::Disable { feed, reason } => {
            let f = find_feed(store, &feed).await?;
            store.set_feed_enabled(f.id, false, Some(&reason)).await?;
            writeln!(out, "disabled feed {} {}", f.id, f.url)?;
        }
    }
    Ok(())
}

/// Local paths are stored absolute so that the daemon finds them from any
/// working directory.
fn normalize_source(source: &str) -> Result<String> {
    if source.contains("://") {
        let url = url::Url::parse(source).with_context(|| format!("invalid URL `{source}`"))?;
        match url.scheme() {
            "http" | "https" | "file" => Ok(source.to_string()),
            other => bail!(
                "unsupported URL scheme `{other}` in `{source}` (use http, https, file or a path)"
            ),
        }
    } else {
        let path = std::path::Path::new(source);
        let abs = std::fs::canonicalize(path)
            .with_context(|| format!("cannot find feed file `{source}`"))?;
        Ok(abs.display().to_string())
    }
}

async fn find_feed<S: Store>(store: &S, key: &str) -> Result<Feed> {
    if let Ok(id) = key.parse::<i64>()
        && let Some(f) = store.feed(id).await?
    {
        return Ok(f);
    }
    if let Some(f) = store.feed_by_url(key).await? {
        return Ok(f);
    }
    if let Ok(abs) = normalize_source(key)
        && let Some(f) = store.feed_by_url(&abs).await?
    {
        return Ok(f);
    }
    bail!("no feed with id or URL `{key}`")
}

fn write_feed(out: &mut impl Write, f: &Feed) -> std::io::Result<()> {
    let state = if f.enabled {
        "enabled".to_string()
    } else {
        format!(
            "DISABLED ({})",
            f.disabled_reason.as_deref().unwrap_or("no reason")
        )
    };
    writeln!(
        out,
        "{:>5}  {}  {}",
        f.id,
        f.url,
        f.title.as_deref().unwrap_or("")
    )?;
    writeln!(
        out,
        "       {state}; last status {}{}; errors {}{}; next poll {}",
        f.last_status.as_deref().unwrap_or("never polled"),
        f.last_http_status
            .map(|s| format!(" (HTTP {s})"))
            .unwrap_or_default(),
        f.error_count,
        match (&f.last_error_class, &f.last_error) {
            (Some(c), Some(e)) => format!(" [{c}: {e}]"),
            _ => String::new(),
        },
        f.next_poll_at.format("%Y-%m-%d %H:%M:%S UTC"),
    )?;
    if f.etag.is_some() || f.last_modified.is_some() {
        writeln!(
            out,
            "       validators: etag {} / last-modified {}",
            f.etag.as_deref().unwrap_or("-"),
            f.last_modified.as_deref().unwrap_or("-")
        )?;
    }
    Ok(())
}

fn feed_json(f: &Feed) -> serde_json::Value {
    serde_json::json!({
        "id": f.id, "url": f.url, "title": f.title, "site_url": f.site_url,
        "enabled": f.enabled, "disabled_reason": f.disabled_reason,
        "fold_policy": f.fold_policy.as_str(), "languages": f.languages,
        "last_status": f.last_status, "last_http_status": f.last_http_status,
        "last_error_class": f.last_error_class, "last_error": f.last_error,
        "error_count": f.error_count, "next_poll_at": f.next_poll_at,
        "last_polled_at": f.last_polled_at, "etag": f.etag, "last_modified": f.last_modified,
    })
}

async fn add_config_feeds<S: Store>(config: &Config, store: &S) -> Result<()> {
    for entry in &config.feeds {
        let policy = entry.policy().map_err(|e| anyhow!(e))?;
        store
            .ensure_feed(&NewFeed {
                url: entry.url.clone(),
                title: entry.title.clone(),
                fold_policy: policy,
                languages: (!entry.languages.is_empty()).then(|| entry.languages.join(",")),
                fold_translations: entry.fold_translations,
            })
            .await?;
    }
    Ok(())
}

/// Totals of one `poll` pass.
#[derive(Debug, Default)]
struct PassSummary {
    feeds_ok: u32,
    feeds_failed: u32,
    items_new: u32,
    items_seen_before: u32,
    items_updated: u32,
    items_folded: u32,
    stories_created: u32,
    failures: Vec<(String, String)>,
    elapsed: Duration,
}

impl std::fmt::Display for PassSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (url, err) in &self.failures {
            writeln!(f, "failed: {url}: {err}")?;
        }
        write!(
            f,
            "feeds: {} ok, {} failed; items: {} new, {} already seen, {} updated, {} folded into existing stories; {} new stories; {:.2}s",
            self.feeds_ok,
            self.feeds_failed,
            self.items_new,
            self.items_seen_before,
            self.items_updated,
            self.items_folded,
            self.stories_created,
            self.elapsed.as_secs_f64()
        )
    }
}

async fn poll_pass<S: Store>(config: &Config, store: &S, all: bool) -> Result<PassSummary> {
    let started = std::time::Instant::now();
    let ctx = refresh::Context::new(
        store.clone(),
        Fetcher::new(&config.fetch)?,
        config.fold.clone(),
        config.scheduler.clone(),
    );
    let now = chrono::Utc::now();
    let feeds: Vec<Feed> = store
        .feeds()
        .await?
        .into_iter()
        .filter(|f| f.enabled && (all || f.next_poll_at <= now))
        .collect();
    let concurrency = config.fetch.max_concurrent.max(1);
    let reports: Vec<FeedReport> = futures_util::stream::iter(feeds)
        .map(|feed| {
            let ctx = ctx.clone();
            async move { refresh::feed(&ctx, feed).await }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut s = PassSummary::default();
    for r in reports {
        if r.ok() {
            s.feeds_ok += 1;
        } else {
            s.feeds_failed += 1;
            s.failures.push((
                r.url.clone(),
                r.error.clone().unwrap_or_else(|| r.outcome.clone()),
            ));
        }
        s.items_new += r.items_new;
        s.items_seen_before += r.items_unchanged + r.items_updated;
        s.items_updated += r.items_updated;
        s.items_folded += r.items_folded;
        s.stories_created += r.stories_created;
    }
    s.elapsed = started.elapsed();
    Ok(s)
}

async fn inspect(config: &Config, source: &str, json: bool, out: &mut impl Write) -> Result<()> {
    let fetcher = Fetcher::new(&config.fetch)?;
    let source = normalize_source(source)?;
    let fetched = match fetcher.fetch(&source, &Validators::default()).await {
        Outcome::Fetched(f) => f,
        Outcome::NotModified { .. } => bail!("{source}: not modified"),
        Outcome::Gone { status } => bail!("{source}: gone (HTTP {status})"),
        Outcome::RateLimited { status, .. } => bail!("{source}: rate limited (HTTP {status})"),
        Outcome::Failed { class, message, .. } => bail!("{source}: {} ({message})", class.as_str()),
    };
    let base = source.starts_with("http").then_some(source.as_str());
    let parsed = crate::parse::feed(&fetched.text, base)
        .with_context(|| format!("cannot parse {source}"))?;
    let ctx = refresh::prepare::FeedContext {
        feed_id: 0,
        feed_url: source.clone(),
        language: parsed.language.clone(),
    };
    let prepared = refresh::prepare::items(&ctx, &parsed.items, &[], chrono::Utc::now());
    if json {
        let items: Vec<_> = prepared
            .items
            .iter()
            .map(|i| {
                serde_json::json!({
                    "identity": i.identity, "guid": i.guid, "title": i.title, "url": i.url,
                    "canonical_url": i.canonical_url, "origin_url": i.origin_url,
                    "published_at": i.published_at, "updated_at": i.updated_at, "lang": i.lang,
                    "text_len": i.signature.text_len, "content_chars": i.content_text.chars().count(),
                    "fingerprint": format!("{:016x}", i.signature.simhash as u64),
                    "fp_version": i.signature.fp_version,
                    "content_hash": i.signature.content_hash.map(|h| format!("{:016x}", h as u64)),
                    "headline_key": i.signature.headline_key,
                })
            })
            .collect();
        let doc = serde_json::json!({
            "source": source, "title": parsed.title, "site_url": parsed.site_url,
            "language": parsed.language, "items": items,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
    } else {
        writeln!(
            out,
            "{}  ({} items)",
            parsed.title.as_deref().unwrap_or("(untitled feed)"),
            prepared.items.len()
        )?;
        for i in &prepared.items {
            writeln!(out, "- {}", i.title.as_deref().unwrap_or("(untitled)"))?;
            writeln!(out, "    identity:    {}", i.identity)?;
            writeln!(out, "    link:        {}", i.url.as_deref().unwrap_or("-"))?;
            writeln!(
                out,
                "    published:   {}  updated: {}",
                i.published_at
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_else(|| "-".into()),
                i.updated_at
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_else(|| "-".into())
            )?;
            writeln!(
                out,
                "    text:        {} chars, {} tokens, lang {}",
                i.content_text.chars().count(),
                i.signature.text_len,
                i.lang.as_deref().unwrap_or("-")
            )?;
            writeln!(
                out,
                "    fingerprint: {:016x} (v{})",
                i.signature.simhash as u64, i.signature.fp_version
            )?;
        }
    }
    Ok(())
}

async fn healthcheck(url: &str) -> Result<ExitCode> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()?;
    match client.get(url).send().await {
        Ok(r) if r.status().is_success() => Ok(ExitCode::SUCCESS),
        Ok(r) => {
            eprintln!("unhealthy: {url} answered {}", r.status());
            Ok(ExitCode::FAILURE)
        }
        Err(e) => {
            eprintln!("unhealthy: {url}: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `feedfold run`: waits for the database, refuses a second daemon on one
/// SQLite file, then runs until SIGTERM/SIGINT.
async fn run_daemon(config: Config) -> Result<ExitCode> {
    let token = CancellationToken::new();
    let on_signal = token.clone();
    tokio::spawn(async move {
        daemon::shutdown_signal().await;
        on_signal.cancel();
    });
    let url = config.database_url.clone();
    let Some(opened) = daemon::connect_with_retry(|| store::open(&url), &token)
        .await
        .with_context(|| format!("cannot open database {}", store::redact_url(&url)))?
    else {
        return Ok(ExitCode::SUCCESS);
    };
    match opened {
        Opened::Sqlite(s) => {
            let _lock = s.lock_instance()?;
            serve(config, s, token).await
        }
        Opened::Postgres(s) => serve(config, s, token).await,
    }
}

async fn serve<S: Store>(config: Config, store: S, token: CancellationToken) -> Result<ExitCode> {
    store.migrate().await.context("cannot apply migrations")?;
    add_config_feeds(&config, &store).await?;
    let ctx = refresh::Context::new(
        store.clone(),
        Fetcher::new(&config.fetch)?,
        config.fold.clone(),
        config.scheduler.clone(),
    );
    let mut settings = daemon::DaemonSettings::new(daemon::refresh_poll(ctx));
    if !config.instance.is_empty() {
        settings.owner = config.instance.clone();
    }
    settings.listen = config.listen.clone();
    settings.scheduler = config.scheduler.clone();
    settings.max_concurrent = config.fetch.max_concurrent.max(1);
    daemon::run(store.clone(), settings, token.cancelled_owned()).await?;
    store.close().await;
    Ok(ExitCode::SUCCESS)
}
