//! feedfold's benchmark suite (issue 7). One binary, one subcommand per
//! benchmark; `bench/run.sh` runs them and collects the `ROW` lines each
//! prints into one table. Benchmarks print numbers; nothing here asserts a
//! time.

mod corpus;
mod fanout;
mod fp;
mod ingest;
mod util;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "feedfold benchmarks; see BENCHMARKS.md")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Writes a generated corpus: feed files and raw items (JSON lines).
    Gen {
        #[arg(long, default_value_t = 42)]
        seed: u64,
        #[arg(long, default_value_t = 1000)]
        items: usize,
        #[arg(long)]
        out: PathBuf,
        /// Feed file sizes in bytes (RSS, Atom and JSON Feed each).
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "10000,100000,1000000,5000000"
        )]
        sizes: Vec<usize>,
    },
    /// Ingest throughput (prepare → fold → store) vs the bulk-load floor.
    Ingest {
        /// sqlite or postgres.
        #[arg(long)]
        backend: String,
        /// Stored-item sizes at which a timed batch is ingested.
        #[arg(long, value_delimiter = ',', default_value = "10000")]
        sizes: Vec<usize>,
        /// Items per timed batch.
        #[arg(long, default_value_t = 10000)]
        batch: usize,
        /// Feeds ingested at once (the daemon refreshes feeds concurrently).
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Fold-decision latency (ingest_item incl. decide) with N stories stored.
    FoldLatency {
        #[arg(long, value_delimiter = ',', default_value = "100000")]
        sizes: Vec<usize>,
        /// Timed ingests per size.
        #[arg(long, default_value_t = 2000)]
        samples: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Fingerprinting docs/s per core vs the simhash crate and Python peers.
    Fingerprint {
        #[arg(long, default_value_t = 3000)]
        docs: usize,
        /// Python with simhash + datasketch installed; peers skipped if absent.
        #[arg(long)]
        python: Option<PathBuf>,
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Feed parsing MB/s and feeds/s vs Python feedparser.
    Parse {
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "10000,100000,1000000,5000000"
        )]
        sizes: Vec<usize>,
        #[arg(long)]
        python: Option<PathBuf>,
        /// Seconds spent per file and parser (at least one run).
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
    },
    /// One 304-heavy polling cycle of `feedfold run` over N local feeds vs a
    /// plain reqwest loop.
    Fanout {
        #[arg(long, default_value_t = 10000)]
        feeds: usize,
        /// Distinct loopback hosts (127.0.x.y) the feeds are spread over.
        #[arg(long, default_value_t = 1000)]
        hosts: usize,
        /// The feedfold binary.
        #[arg(long)]
        feedfold: PathBuf,
    },
    /// Daemon idle and steady-state RSS with N feeds (`feedfold run`).
    Memory {
        #[arg(long, default_value_t = 1000)]
        feeds: usize,
        #[arg(long, default_value_t = 100)]
        hosts: usize,
        /// The feedfold binary.
        #[arg(long)]
        feedfold: PathBuf,
        /// Poll interval given to the daemon, seconds.
        #[arg(long, default_value_t = 30)]
        interval: u64,
        /// How long to sample steady state after the first interval, seconds.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
    /// Exits 0 when BENCH_DATABASE_URL answers, else prints why.
    PgCheck,
    /// The fan-out floor (runs as a child of `fanout`).
    FanoutFloor { list: PathBuf, concurrency: usize },
    /// The local feed server used by fanout and memory (runs as a child).
    Serve {
        #[arg(long)]
        feeds: usize,
        #[arg(long)]
        hosts: usize,
        #[arg(long)]
        port: u16,
        /// Share of conditional requests answered 200 with a changed feed.
        #[arg(long, default_value_t = 0.1)]
        changed: f64,
        /// Items per feed document.
        #[arg(long, default_value_t = 5)]
        items: u64,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    feedfold::install_crypto_provider();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.cmd {
        Cmd::Gen {
            seed,
            items,
            out,
            sizes,
        } => gen_cmd(seed, items, &out, &sizes),
        Cmd::Ingest {
            backend,
            sizes,
            batch,
            concurrency,
            seed,
        } => rt.block_on(ingest::ingest(&backend, &sizes, batch, concurrency, seed)),
        Cmd::FoldLatency {
            sizes,
            samples,
            seed,
        } => rt.block_on(ingest::fold_latency(&sizes, samples, seed)),
        Cmd::Fingerprint { docs, python, seed } => fp::fingerprint(docs, python.as_deref(), seed),
        Cmd::Parse {
            sizes,
            python,
            seconds,
        } => fp::parse(&sizes, python.as_deref(), seconds),
        Cmd::Fanout {
            feeds,
            hosts,
            feedfold,
        } => rt.block_on(fanout::fanout(feeds, hosts, &feedfold)),
        Cmd::Memory {
            feeds,
            hosts,
            feedfold,
            interval,
            seconds,
        } => rt.block_on(fanout::memory(feeds, hosts, &feedfold, interval, seconds)),
        Cmd::PgCheck => rt.block_on(async {
            let url = ingest::admin_url();
            let pool = sqlx::postgres::PgPoolOptions::new()
                .acquire_timeout(std::time::Duration::from_secs(5))
                .connect(&url)
                .await
                .map_err(|e| anyhow::anyhow!("{}: {e}", feedfold::store::redact_url(&url)))?;
            pool.close().await;
            Ok(())
        }),
        Cmd::FanoutFloor { list, concurrency } => rt.block_on(fanout::floor(&list, concurrency)),
        Cmd::Serve {
            feeds,
            hosts,
            port,
            changed,
            items,
        } => rt.block_on(fanout::serve(feeds, hosts, port, changed, items)),
    }
}

fn gen_cmd(seed: u64, items: usize, out: &std::path::Path, sizes: &[usize]) -> anyhow::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(out)?;
    let mut g = corpus::Gen::new(seed, corpus::GenConfig::default());
    let mut w = std::io::BufWriter::new(std::fs::File::create(out.join("items.jsonl"))?);
    for _ in 0..items {
        let a = g.next_article();
        let v = serde_json::json!({
            "story": a.story, "lang": a.lang, "feed": a.feed, "guid": a.guid, "url": a.url,
            "title": a.title, "html": a.html, "published": a.published.to_rfc3339(),
            "variant": format!("{:?}", a.variant),
        });
        writeln!(w, "{v}")?;
    }
    w.flush()?;
    for &size in sizes {
        for kind in [
            corpus::FeedKind::Rss,
            corpus::FeedKind::Atom,
            corpus::FeedKind::Json,
        ] {
            let (doc, n) = corpus::feed_of_size(kind, size, seed ^ size as u64);
            let path = out.join(format!("{}-{}.{}", kind.name(), size, kind.ext()));
            std::fs::write(&path, &doc)?;
            println!("{} ({} bytes, {n} items)", path.display(), doc.len());
        }
    }
    println!("{} ({items} items)", out.join("items.jsonl").display());
    Ok(())
}
