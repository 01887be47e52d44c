//! Integration tests: deployment files and the SQL cookbook.
//!
//! No Docker engine or systemd instance runs here, so these tests keep the
//! deployment files honest by construction: the image's HEALTHCHECK must
//! name a subcommand the binary really has, compose.yaml must carry no
//! secret, and every query in docs/sql.md must run (and find rows) against
//! the real migrations filled with fixtures, on PostgreSQL and SQLite.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{AssertSqlSafe, Executor, PgPool, Row, SqlitePool};

fn repo_file(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn read(rel: &str) -> String {
    let path = repo_file(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------
// Dockerfile / compose / systemd

/// Dockerfile instructions with `\` continuations joined and comments dropped.
fn dockerfile_instructions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
        } else {
            current.push_str(trimmed);
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// The exec-form argv of the Dockerfile's HEALTHCHECK.
fn healthcheck_argv(dockerfile: &str) -> Vec<String> {
    let instructions = dockerfile_instructions(dockerfile);
    let checks: Vec<&String> = instructions
        .iter()
        .filter(|i| i.starts_with("HEALTHCHECK "))
        .collect();
    assert_eq!(checks.len(), 1, "exactly one HEALTHCHECK: {checks:?}");
    let cmd = checks[0]
        .split_once(" CMD ")
        .map(|(_, c)| c.trim())
        .expect("HEALTHCHECK ... CMD [...]");
    serde_json::from_str(cmd)
        .unwrap_or_else(|e| panic!("HEALTHCHECK CMD must be exec form JSON ({e}): {cmd}"))
}

/// Subcommand names from clap's `--help` ("Commands:" section).
fn cli_subcommands() -> BTreeSet<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_feedfold"))
        .arg("--help")
        .output()
        .expect("running feedfold --help");
    assert!(out.status.success(), "feedfold --help failed: {out:?}");
    let help = String::from_utf8_lossy(&out.stdout);
    let mut names = BTreeSet::new();
    let mut in_commands = false;
    for line in help.lines() {
        if line.trim_end() == "Commands:" {
            in_commands = true;
            continue;
        }
        if in_commands {
            if !line.starts_with("  ") {
                break;
            }
            if let Some(name) = line.split_whitespace().next() {
                names.insert(name.to_string());
            }
        }
    }
    names
}

#[test]
fn dockerfile_healthcheck_uses_an_existing_subcommand() {
    let argv = healthcheck_argv(&read("deploy/docker/Dockerfile"));
    assert_eq!(
        argv.first().map(String::as_str),
        Some("feedfold"),
        "{argv:?}"
    );
    let sub = argv.get(1).expect("HEALTHCHECK names a subcommand");
    let subcommands = cli_subcommands();
    assert!(
        subcommands.contains(sub),
        "HEALTHCHECK runs `feedfold {sub}`, but feedfold --help lists only {subcommands:?}"
    );
    // The exact argv must parse: `--help` appended to it exits 0 only if
    // every argument before it is accepted.
    let out = Command::new(env!("CARGO_BIN_EXE_feedfold"))
        .args(&argv[1..])
        .arg("--help")
        .output()
        .expect("running the healthcheck argv");
    assert!(
        out.status.success(),
        "`{} --help` failed: {out:?}",
        argv.join(" ")
    );

    // compose.yaml probes the container the same way.
    let compose = read("deploy/docker/compose.yaml");
    let mut probe = vec!["CMD".to_string()];
    probe.extend(argv.iter().cloned());
    let compose_probe = format!("test: {}", serde_json::to_string(&probe).expect("json"));
    assert!(
        compose.replace("\", \"", "\",\"").contains(&compose_probe),
        "compose.yaml's feedfold healthcheck should be `{compose_probe}`"
    );
}

#[test]
fn dockerfile_runs_as_non_root_and_keeps_state_on_a_volume() {
    let instructions = dockerfile_instructions(&read("deploy/docker/Dockerfile"));
    let runtime_from = instructions
        .iter()
        .rposition(|i| i.starts_with("FROM "))
        .expect("a FROM");
    assert!(
        runtime_from > 0,
        "multi-stage: a builder stage before the runtime one"
    );
    let last_stage: Vec<&String> = instructions[runtime_from..].iter().collect();
    let user = last_stage
        .iter()
        .find(|i| i.starts_with("USER "))
        .expect("runtime stage sets USER");
    let who = user["USER ".len()..].split(':').next().unwrap_or("").trim();
    assert!(who != "root" && who != "0" && !who.is_empty(), "{user}");
    assert!(last_stage.iter().any(|i| i == &"STOPSIGNAL SIGTERM"));
    let volume = last_stage
        .iter()
        .find(|i| i.starts_with("VOLUME "))
        .expect("runtime stage declares a VOLUME");
    let env = last_stage
        .iter()
        .filter(|i| i.starts_with("ENV "))
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let db = env
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("FEEDFOLD_DATABASE_URL="))
        .expect("ENV FEEDFOLD_DATABASE_URL");
    let db_path = db.strip_prefix("sqlite://").expect("SQLite default");
    let dir = Path::new(db_path).parent().expect("db in a directory");
    assert!(
        volume.contains(&format!("\"{}\"", dir.display())),
        "the SQLite default {db_path} must sit on the volume ({volume})"
    );
    assert!(
        env.contains("FEEDFOLD_LISTEN=0.0.0.0:"),
        "the daemon must listen beyond loopback inside the container"
    );
}

/// Values that look like literal secrets: a `password`/`secret`/`token` key
/// given a value that is not a `${VAR}` reference, or a URL with a password.
fn hard_coded_secrets(text: &str) -> Vec<String> {
    let key = regex::Regex::new(
        r#"(?i)^\s*-?\s*"?([A-Z0-9_]*(?:PASSWORD|PASSWD|SECRET|TOKEN)[A-Z0-9_]*)"?\s*[:=]\s*(.*)$"#,
    )
    .expect("regex");
    let url_password = regex::Regex::new(r"[a-z+]+://[^/\s:@]+:([^@\s]+)@").expect("regex");
    let mut found = Vec::new();
    for line in text.lines() {
        let code = line.split(" #").next().unwrap_or("");
        if code.trim_start().starts_with('#') {
            continue;
        }
        if let Some(c) = key.captures(code) {
            let value = c[2].trim().trim_matches('"').trim_matches('\'');
            let is_reference = value.is_empty()
                || value.starts_with("${")
                || value.starts_with("$${")
                // *_FILE variables name a file (Docker secrets), not the secret.
                || c[1].to_ascii_uppercase().ends_with("_FILE");
            if !is_reference {
                found.push(line.to_string());
            }
        }
        for c in url_password.captures_iter(code) {
            if !c[1].starts_with("${") && !c[1].starts_with("$${") {
                found.push(line.to_string());
            }
        }
    }
    found
}

#[test]
fn secret_detector_catches_literal_passwords() {
    // The detector is what keeps compose.yaml honest, so check it bites.
    let bad = "services:\n  db:\n    environment:\n      POSTGRES_PASSWORD: hunter2\n";
    assert_eq!(hard_coded_secrets(bad).len(), 1);
    let bad = "      - FEEDFOLD_DATABASE_URL=postgres://u:hunter2@db/feedfold\n";
    assert_eq!(hard_coded_secrets(bad).len(), 1);
    let bad = "      password = \"hunter2\"\n";
    assert_eq!(hard_coded_secrets(bad).len(), 1);
    let fine = "      POSTGRES_PASSWORD: ${POSTGRES_PASSWORD}\n      # password: example\n      POSTGRES_PASSWORD_FILE: /run/secrets/pg\n";
    assert!(
        hard_coded_secrets(fine).is_empty(),
        "{:?}",
        hard_coded_secrets(fine)
    );
}

#[test]
fn compose_has_no_hard_coded_password_and_reads_the_env_file() {
    let compose = read("deploy/docker/compose.yaml");
    let found = hard_coded_secrets(&compose);
    assert!(
        found.is_empty(),
        "compose.yaml hard-codes secrets: {found:?}"
    );
    // No inline environment at all: everything sensitive comes from the file.
    assert!(
        !compose
            .lines()
            .any(|l| l.trim_start().starts_with("environment:")),
        "compose.yaml sets environment inline; use env_file"
    );
    let env_files = compose.matches("path: feedfold.env").count();
    assert_eq!(env_files, 2, "both services read feedfold.env");
    assert!(compose.contains("condition: service_healthy"));
    assert!(compose.contains("pg_isready"));

    // The example env file holds placeholders only, and the real one is ignored.
    let example = read("deploy/docker/feedfold.env.example");
    for line in example
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains('='))
    {
        let upper = line.to_ascii_uppercase();
        if upper.contains("PASSWORD") || upper.contains("://") && line.contains('@') {
            assert!(line.contains("CHANGE_ME"), "placeholder expected: {line}");
        }
    }
    let ignore = read("deploy/docker/.gitignore");
    assert!(ignore.lines().any(|l| l.trim() == "feedfold.env"));
}

#[test]
fn systemd_unit_keeps_secrets_out_and_uses_systemd_directories() {
    let unit = read("deploy/systemd/feedfold.service");
    let directives: BTreeMap<&str, Vec<&str>> = unit
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && l.contains('='))
        .filter_map(|l| l.split_once('='))
        .fold(BTreeMap::new(), |mut m, (k, v)| {
            m.entry(k.trim()).or_insert_with(Vec::new).push(v.trim());
            m
        });
    let one = |k: &str| -> &str {
        directives
            .get(k)
            .and_then(|v| v.last().copied())
            .unwrap_or_else(|| panic!("{k}= missing"))
    };
    assert_eq!(one("Type"), "notify");
    assert!(directives.contains_key("WatchdogSec"));
    assert_eq!(one("StateDirectory"), "feedfold");
    assert_eq!(one("ConfigurationDirectory"), "feedfold");
    assert_eq!(one("EnvironmentFile"), "-/etc/feedfold/feedfold.env");
    assert!(one("ExecStart").starts_with("/usr/local/bin/feedfold run "));
    assert!(
        !directives.contains_key("Environment"),
        "secrets belong in EnvironmentFile, not the world-readable unit"
    );
    assert!(hard_coded_secrets(&unit).is_empty());
    // Every hardening directive carries its reason in a comment right above
    // it; at most two related directives share one comment.
    let lines: Vec<&str> = unit.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with("# --- Hardening"))
        .expect("hardening section");
    let end = lines
        .iter()
        .position(|l| *l == "[Install]")
        .unwrap_or(lines.len());
    let mut hardening = 0;
    for n in start..end {
        let line = lines[n];
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        hardening += 1;
        let documented = lines[n - 1].starts_with('#')
            || (!lines[n - 1].is_empty() && lines[n - 2].starts_with('#'));
        assert!(
            documented,
            "feedfold.service:{}: no comment above `{line}`",
            n + 1
        );
    }
    assert!(hardening >= 25, "only {hardening} hardening directives");
    for key in [
        "ProtectSystem",
        "ProtectHome",
        "PrivateTmp",
        "PrivateDevices",
        "NoNewPrivileges",
        "CapabilityBoundingSet",
        "RestrictAddressFamilies",
        "SystemCallFilter",
        "MemoryDenyWriteExecute",
        "LockPersonality",
        "ProtectKernelTunables",
        "ProtectKernelModules",
        "ProtectKernelLogs",
        "ProtectControlGroups",
        "RestrictNamespaces",
        "RestrictRealtime",
        "RestrictSUIDSGID",
        "UMask",
    ] {
        assert!(directives.contains_key(key), "{key}= missing");
    }
}

// ---------------------------------------------------------------------------
// The SQL cookbook

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Backend {
    Postgres,
    Sqlite,
}

#[derive(Debug, Clone)]
struct Recipe {
    name: String,
    backends: Vec<Backend>,
    sql: String,
    line: usize,
}

/// Every `<!-- query: NAME backends: LIST -->` marker and the ```sql block
/// that follows it; an error names the line of a malformed one.
fn cookbook(markdown: &str) -> Result<Vec<Recipe>, String> {
    let marker =
        regex::Regex::new(r"^<!--\s*query:\s*([a-z0-9_]+)\s+backends:\s*([a-z,\s]+?)\s*-->$")
            .expect("regex");
    let lines: Vec<&str> = markdown.lines().collect();
    let mut out = Vec::new();
    let mut n = 0;
    while n < lines.len() {
        let line = lines[n].trim();
        if line.starts_with("<!-- query") {
            let c = marker
                .captures(line)
                .ok_or_else(|| format!("docs/sql.md:{}: malformed marker {line}", n + 1))?;
            let backends = c[2]
                .split(',')
                .map(|b| match b.trim() {
                    "postgres" => Ok(Backend::Postgres),
                    "sqlite" => Ok(Backend::Sqlite),
                    other => Err(format!("docs/sql.md:{}: unknown backend {other}", n + 1)),
                })
                .collect::<Result<_, _>>()?;
            let mut m = n + 1;
            while m < lines.len() && lines[m].trim().is_empty() {
                m += 1;
            }
            if lines.get(m).map(|l| l.trim()) != Some("```sql") {
                return Err(format!(
                    "docs/sql.md:{}: marker not followed by a ```sql block",
                    n + 1
                ));
            }
            let body_start = m + 1;
            let mut end = body_start;
            while end < lines.len() && lines[end].trim() != "```" {
                end += 1;
            }
            if end == lines.len() {
                return Err(format!("docs/sql.md:{}: unclosed block", n + 1));
            }
            out.push(Recipe {
                name: c[1].to_string(),
                backends,
                sql: lines[body_start..end].join("\n"),
                line: n + 1,
            });
            n = end;
        }
        n += 1;
    }
    Ok(out)
}

fn recipes_for(backend: Backend) -> Vec<Recipe> {
    cookbook(&read("docs/sql.md"))
        .expect("docs/sql.md cookbook")
        .into_iter()
        .filter(|r| r.backends.contains(&backend))
        .collect()
}

#[test]
fn cookbook_is_complete_on_both_backends() {
    let recipes = cookbook(&read("docs/sql.md")).expect("docs/sql.md cookbook");
    let mut coverage: BTreeMap<&str, Vec<Backend>> = BTreeMap::new();
    for r in &recipes {
        coverage.entry(&r.name).or_default().extend(&r.backends);
        let statements = r.sql.trim().trim_end_matches(';');
        assert!(
            !statements.contains(';'),
            "docs/sql.md:{}: one statement per recipe",
            r.line
        );
    }
    assert!(coverage.len() >= 12, "only {} recipes", coverage.len());
    for (name, mut backends) in coverage {
        backends.sort();
        assert_eq!(
            backends,
            vec![Backend::Postgres, Backend::Sqlite],
            "recipe {name}: exactly one variant per backend"
        );
    }
    // The parser itself: a marker without a block must not pass silently.
    assert!(cookbook("<!-- query: x backends: sqlite -->\n\ntext\n").is_err());
    assert!(cookbook("<!-- query: x backends: mysql -->\n```sql\nSELECT 1\n```\n").is_err());
    assert!(cookbook("<!-- query: x backends: sqlite -->\n```sql\nSELECT 1\n").is_err());
    let ok = cookbook("<!-- query: x backends: postgres,sqlite -->\n\n```sql\nSELECT 1\n```\n");
    assert_eq!(
        ok.map(|r| (r.len(), r[0].sql.clone())),
        Ok((1, "SELECT 1".to_string()))
    );
}

fn ts(t: DateTime<Utc>) -> String {
    // The SQLite store's fixed-width RFC 3339; PostgreSQL parses it too.
    format!("'{}'", t.format("%Y-%m-%dT%H:%M:%S%.6fZ"))
}

struct FixtureItem {
    id: i64,
    feed: i64,
    story: i64,
    hours_ago: f64,
    lang: &'static str,
    title: &'static str,
    text: &'static str,
    origin: Option<i64>,
}

/// Canonical URL of a fixture item (same-URL copies share it).
fn item_url(it: &FixtureItem) -> String {
    format!("https://feed{}.example.com/news/{}", it.feed, it.id)
}

/// Fixture rows as portable SQL: a few feeds with a history, stories with
/// copies folded by different methods, a translation, polls and errors.
fn fixture_sql(now: DateTime<Utc>) -> String {
    let ago = |h: f64| ts(now - Duration::milliseconds((h * 3_600_000.0) as i64));
    let mut sql = String::new();
    sql.push_str(&format!(
        "INSERT INTO feeds (id, url, title, site_url, language, enabled, disabled_reason, disabled_at,
            last_polled_at, last_success_at, last_status, last_http_status, last_error_class,
            last_error, error_count, failing_since, next_poll_at, poll_interval_secs) VALUES
         (1, 'https://wire.example.com/rss', 'Wire Service', 'https://wire.example.com', 'en', TRUE, NULL, NULL,
            {h0}, {h0}, 'ok', 200, NULL, NULL, 0, NULL, {hm1}, 900),
         (2, 'https://herald.example.org/feed', 'Daily Herald', 'https://herald.example.org', 'en', TRUE, NULL, NULL,
            {h0}, {h0}, 'not_modified', 304, NULL, NULL, 0, NULL, {hm1}, 1800),
         (3, 'https://pulse.example.net/atom.xml', 'Market Pulse', 'https://pulse.example.net', 'en', TRUE, NULL, NULL,
            {h0}, {h0}, 'ok', 200, NULL, NULL, 0, NULL, {hm1}, 1800),
         (4, 'https://bulletin.example.kr/en/rss', 'Harbour Bulletin (English)', 'https://bulletin.example.kr', 'en', TRUE, NULL, NULL,
            {h0}, {h0}, 'ok', 200, NULL, NULL, 0, NULL, {hm1}, 3600),
         (5, 'https://bulletin.example.kr/ko/rss', 'Harbour Bulletin (Korean)', 'https://bulletin.example.kr', 'ko', TRUE, NULL, NULL,
            {h0}, {h0}, 'ok', 200, NULL, NULL, 0, NULL, {hm1}, 3600),
         (6, 'https://gone.example.com/feed', 'Gone Gazette', 'https://gone.example.com', 'en', FALSE, '410 Gone', {h2},
            {h2}, {h50}, 'gone', 410, 'gone', 'HTTP 410 Gone', 4, {h40}, {hm1}, 3600),
         (7, 'https://flaky.example.net/rss', 'Flaky Ledger', 'https://flaky.example.net', 'en', TRUE, NULL, NULL,
            {h1}, {h6}, 'error', NULL, 'timeout', 'operation timed out after 30s', 2, {h3}, {hm1}, 3600);\n",
        h0 = ago(0.2),
        hm1 = ago(-0.5),
        h1 = ago(1.0),
        h2 = ago(2.0),
        h3 = ago(3.0),
        h6 = ago(6.0),
        h40 = ago(40.0),
        h50 = ago(50.0),
    ));
    sql.push_str(&format!(
        "INSERT INTO feed_url_history (feed_id, old_url, new_url, changed_at) VALUES
         (3, 'http://pulse.example.net/feed.xml', 'https://pulse.example.net/atom.xml', {});\n",
        ago(100.0)
    ));

    let items = [
        FixtureItem {
            id: 1,
            feed: 1,
            story: 1,
            hours_ago: 5.0,
            lang: "en",
            title: "Central bank holds rates steady as inflation cools",
            text: "The central bank left its policy rates unchanged on Thursday, saying price growth had slowed for a third month.",
            origin: None,
        },
        FixtureItem {
            id: 2,
            feed: 2,
            story: 1,
            hours_ago: 4.5,
            lang: "en",
            title: "Central bank holds rates steady as inflation cools",
            text: "The central bank left its policy rates unchanged on Thursday, saying price growth had slowed for a third month.",
            origin: None,
        },
        FixtureItem {
            id: 3,
            feed: 3,
            story: 1,
            hours_ago: 4.0,
            lang: "en",
            title: "Central bank keeps rates on hold as inflation eases",
            text: "Policy rates were kept unchanged by the central bank on Thursday after price growth slowed again.",
            origin: Some(1),
        },
        FixtureItem {
            id: 4,
            feed: 4,
            story: 1,
            hours_ago: 3.0,
            lang: "en",
            title: "Central bank leaves rates unchanged",
            text: "The central bank left policy rates unchanged on Thursday as price growth slowed for a third month.",
            origin: None,
        },
        FixtureItem {
            id: 5,
            feed: 3,
            story: 2,
            hours_ago: 10.0,
            lang: "en",
            title: "Exchange lists new token pair after review",
            text: "A digital asset exchange said it would list a new trading pair next week following a compliance review.",
            origin: None,
        },
        FixtureItem {
            id: 6,
            feed: 2,
            story: 2,
            hours_ago: 9.0,
            lang: "en",
            title: "Exchange lists new token pair after review",
            text: "A digital asset exchange said it would list a new trading pair next week following a compliance review.",
            origin: None,
        },
        FixtureItem {
            id: 7,
            feed: 4,
            story: 3,
            hours_ago: 2.0,
            lang: "en",
            title: "Port strike ends after three days of talks",
            text: "Dock workers returned to the container terminals after unions and operators agreed on a new wage deal.",
            origin: None,
        },
        FixtureItem {
            id: 8,
            feed: 5,
            story: 3,
            hours_ago: 1.5,
            lang: "ko",
            title: "항만 파업, 사흘간의 협상 끝에 종료",
            text: "노조와 운영사가 새 임금안에 합의하면서 부두 노동자들이 컨테이너 터미널로 복귀했다.",
            origin: None,
        },
        FixtureItem {
            id: 9,
            feed: 2,
            story: 4,
            hours_ago: 30.0,
            lang: "en",
            title: "Payments startup raises funding round",
            text: "A payments startup said it raised a new funding round to expand its merchant services into two more markets.",
            origin: None,
        },
        FixtureItem {
            id: 10,
            feed: 1,
            story: 5,
            hours_ago: 75.0,
            lang: "en",
            title: "Regulator publishes draft rules for stablecoins",
            text: "The financial regulator published draft rules for stablecoin issuers and asked for comments within sixty days.",
            origin: None,
        },
        FixtureItem {
            id: 11,
            feed: 2,
            story: 5,
            hours_ago: 74.5,
            lang: "en",
            title: "Draft stablecoin rules published by regulator",
            text: "The financial regulator published draft rules for stablecoin issuers and asked for comments within sixty days.",
            origin: None,
        },
        FixtureItem {
            id: 12,
            feed: 1,
            story: 6,
            hours_ago: 20.0,
            lang: "en",
            title: "Shipping rates climb on route disruptions",
            text: "Freight rates on major container routes rose for a second week as carriers diverted ships around a closed strait.",
            origin: None,
        },
    ];
    // Stories first (canonical set after the items exist), with the
    // denormalized columns the store maintains.
    let mut stories: BTreeMap<i64, (i64, f64, i64)> = BTreeMap::new(); // story -> (canonical, oldest hours, count)
    for it in &items {
        let e = stories.entry(it.story).or_insert((it.id, it.hours_ago, 0));
        if it.hours_ago > e.1 {
            *e = (it.id, it.hours_ago, e.2);
        }
        e.2 += 1;
    }
    for (story, (_, hours, count)) in &stories {
        sql.push_str(&format!(
            "INSERT INTO stories (id, canonical_item_id, first_published_at, item_count, created_at, updated_at)
             VALUES ({story}, NULL, {t}, {count}, {t}, {t});\n",
            t = ago(*hours)
        ));
    }
    for it in &items {
        let url = item_url(it);
        // Same-URL copies (item 2) share item 1's canonical URL.
        let canonical = if it.id == 2 {
            item_url(&items[0])
        } else {
            url.clone()
        };
        let origin = it
            .origin
            .map(|o| format!("'{}'", item_url(&items[(o - 1) as usize])))
            .unwrap_or_else(|| "NULL".into());
        let published = ago(it.hours_ago);
        sql.push_str(&format!(
            "INSERT INTO items (id, feed_id, identity, guid, url, canonical_url, origin_url, title, summary,
                content_text, author, lang, published_at, fetched_at, dated_at, story_id, fp_version,
                simhash, band0, band1, band2, band3, lead_hash, content_hash, text_len, revision_hash)
             VALUES ({id}, {feed}, '{url}', '{url}', '{url}', '{canonical}', {origin}, '{title}', NULL,
                '{text}', NULL, '{lang}', {published}, {fetched}, {published}, {story}, 1,
                {simhash}, {b0}, {b1}, {b2}, {b3}, {lead}, {content}, {len}, {rev});\n",
            id = it.id,
            feed = it.feed,
            title = it.title.replace('\'', "''"),
            text = it.text.replace('\'', "''"),
            lang = it.lang,
            fetched = ago(it.hours_ago - 0.1),
            story = it.story,
            simhash = -1_234_567_890_123i64 + it.id,
            b0 = it.id * 11,
            b1 = it.id * 13,
            b2 = it.id * 17,
            b3 = it.id * 19,
            lead = 9_000 + it.story,
            content = 7_000 + it.id,
            len = it.text.chars().count(),
            rev = 5_000 + it.id,
        ));
    }
    for (story, (canonical, _, _)) in &stories {
        sql.push_str(&format!(
            "UPDATE stories SET canonical_item_id = {canonical} WHERE id = {story};\n"
        ));
    }
    sql.push_str(&format!(
        "INSERT INTO folds (item_id, story_id, matched_item_id, method, distance, score, detail, decided_at) VALUES
         (2, 1, 1, 'url', NULL, NULL, 'same canonical URL', {a}),
         (3, 1, 1, 'origin-link', NULL, NULL, 'cites the original link', {b}),
         (4, 1, 2, 'simhash', 4, 0.94, 'simhash distance 4 of 64', {c}),
         (6, 2, 5, 'content-hash', NULL, NULL, 'identical normalized text', {d}),
         (8, 3, 7, 'translation', NULL, 0.82, 'ko->en anchors 9/11', {e}),
         (11, 5, 10, 'lead', NULL, 0.97, 'same opening sentence', {f});\n",
        a = ago(4.4),
        b = ago(3.9),
        c = ago(2.9),
        d = ago(8.9),
        e = ago(1.4),
        f = ago(74.4),
    ));
    sql.push_str(&format!(
        "INSERT INTO fold_vetoes (item_id, story_id, created_at) VALUES (9, 1, {});\n",
        ago(20.0)
    ));
    sql.push_str(&format!(
        "INSERT INTO item_keys (key, item_id, dated_at) VALUES (424242, 1, {}), (424242, 2, {});\n",
        ago(5.0),
        ago(4.5)
    ));
    sql.push_str(&format!(
        "INSERT INTO feed_boilerplate (feed_id, shape_hash, seen_count, last_seen) VALUES (2, 31337, 12, {});\n",
        ago(0.2)
    ));
    // Polls: a healthy feed, a feed that went away, a flaky one.
    let mut polls = Vec::new();
    for h in [0.2, 1.2, 2.2, 3.2, 4.2, 5.2] {
        let new = if h < 1.0 { 0 } else { 1 };
        polls.push(format!(
            "(1, {}, 180, 'ok', 200, NULL, NULL, 48213, 20, {new}, 0, 0)",
            ago(h)
        ));
    }
    polls.push(format!(
        "(2, {}, 95, 'not_modified', 304, NULL, NULL, 0, 0, 0, 0, 0)",
        ago(0.2)
    ));
    polls.push(format!(
        "(6, {}, 240, 'ok', 200, NULL, NULL, 12000, 10, 2, 0, 0)",
        ago(50.0)
    ));
    for h in [40.0, 26.0, 14.0] {
        polls.push(format!(
            "(6, {}, 300, 'error', 404, 'http_4xx', 'HTTP 404 Not Found', 512, 0, 0, 0, 0)",
            ago(h)
        ));
    }
    polls.push(format!(
        "(6, {}, 210, 'gone', 410, 'gone', 'HTTP 410 Gone', 230, 0, 0, 0, 0)",
        ago(2.0)
    ));
    polls.push(format!(
        "(7, {}, 420, 'ok', 200, NULL, NULL, 30500, 15, 1, 1, 0)",
        ago(6.0)
    ));
    for h in [3.0, 1.0] {
        polls.push(format!(
            "(7, {}, 30000, 'error', NULL, 'timeout', 'operation timed out after 30s', 0, 0, 0, 0, 0)",
            ago(h)
        ));
    }
    sql.push_str(&format!(
        "INSERT INTO polls (feed_id, started_at, duration_ms, outcome, http_status, error_class, error,
            bytes, items_seen, items_new, items_updated, items_folded) VALUES\n{};\n",
        polls.join(",\n")
    ));
    sql
}

/// The migration files of one backend, in order.
fn migrations(backend: &str) -> Option<Vec<(PathBuf, String)>> {
    let dir = repo_file(&format!("migrations/{backend}"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    if files.is_empty() {
        return None;
    }
    files.sort();
    Some(
        files
            .into_iter()
            .map(|p| {
                let sql =
                    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                (p, sql)
            })
            .collect(),
    )
}

/// A fresh PostgreSQL database, dropped by `drop_pg`. None (with the reason
/// printed) when TEST_DATABASE_URL is unset; a panic when it is set but
/// unreachable, so CI cannot pass by skipping.
async fn fresh_pg(tag: &str) -> Option<(PgPool, PgPool, String)> {
    let url = crate::support::pg_admin_url("cookbook")?;
    let admin_opts = PgConnectOptions::from_str(&url).expect("TEST_DATABASE_URL parses");
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(admin_opts.clone())
        .await
        .unwrap_or_else(|e| panic!("TEST_DATABASE_URL is set but unreachable: {e}"));
    let name = format!(
        "feedfold_deploy_{tag}_{}_{}",
        std::process::id(),
        rand::random::<u32>()
    );
    admin
        .execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .expect("create test database");
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(admin_opts.database(&name))
        .await
        .expect("connect to the fresh database");
    Some((admin, pool, name))
}

async fn drop_pg(admin: PgPool, pool: PgPool, name: String) {
    pool.close().await;
    let _ = admin
        .execute(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .await;
}

async fn pg_with_fixtures(pool: &PgPool) {
    for (path, sql) in migrations("postgres").expect("migrations/postgres/*.sql") {
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(pool)
            .await
            .unwrap_or_else(|e| panic!("applying {}: {e}", path.display()));
    }
    sqlx::raw_sql(AssertSqlSafe(fixture_sql(Utc::now())))
        .execute(pool)
        .await
        .unwrap_or_else(|e| panic!("loading fixtures on PostgreSQL: {e}"));
}

/// A fresh SQLite file with migrations and fixtures, or None when the SQLite
/// migrations have not landed yet.
async fn sqlite_with_fixtures(dir: &Path) -> Option<SqlitePool> {
    let Some(files) = migrations("sqlite") else {
        eprintln!("skipping: migrations/sqlite/*.sql not present yet (SQLite cookbook tests)");
        return None;
    };
    let opts = SqliteConnectOptions::new()
        .filename(dir.join("cookbook.db"))
        .create_if_missing(true)
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(opts)
        .await
        .expect("open SQLite");
    for (path, sql) in files {
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .unwrap_or_else(|e| panic!("applying {}: {e}", path.display()));
    }
    sqlx::raw_sql(AssertSqlSafe(fixture_sql(Utc::now())))
        .execute(&pool)
        .await
        .unwrap_or_else(|e| panic!("loading fixtures on SQLite: {e}"));
    Some(pool)
}

enum Db<'a> {
    Pg(&'a PgPool),
    Lite(&'a SqlitePool),
}

/// Runs every recipe of the backend; returns all failures at once.
async fn run_recipes(db: Db<'_>) -> Vec<String> {
    let backend = match db {
        Db::Pg(_) => Backend::Postgres,
        Db::Lite(_) => Backend::Sqlite,
    };
    let recipes = recipes_for(backend);
    assert!(
        recipes.len() >= 12,
        "{backend:?}: only {} recipes",
        recipes.len()
    );
    let mut failures = Vec::new();
    for r in recipes {
        let rows = match db {
            Db::Pg(pool) => sqlx::query(AssertSqlSafe(r.sql.as_str()))
                .fetch_all(pool)
                .await
                .map(|rows| rows.len()),
            Db::Lite(pool) => sqlx::query(AssertSqlSafe(r.sql.as_str()))
                .fetch_all(pool)
                .await
                .map(|rows| rows.len()),
        };
        match rows {
            Ok(0) => failures.push(format!(
                "{backend:?} {} (docs/sql.md:{}): no rows on the fixtures",
                r.name, r.line
            )),
            Ok(n) => eprintln!("{backend:?} {}: {n} rows", r.name),
            Err(e) => failures.push(format!(
                "{backend:?} {} (docs/sql.md:{}): {e}",
                r.name, r.line
            )),
        }
    }
    failures
}

#[tokio::test]
async fn cookbook_runs_on_postgres() {
    let Some((admin, pool, name)) = fresh_pg("cookbook").await else {
        return;
    };
    pg_with_fixtures(&pool).await;
    let failures = run_recipes(Db::Pg(&pool)).await;
    drop_pg(admin, pool, name).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn cookbook_runs_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(pool) = sqlite_with_fixtures(dir.path()).await else {
        return;
    };
    let failures = run_recipes(Db::Lite(&pool)).await;
    pool.close().await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The part of docs/sql.md under the `### ` heading that names `name`.
fn doc_section<'a>(doc: &'a str, name: &str) -> Option<&'a str> {
    let needle = format!("`{name}`");
    let start = doc
        .match_indices("\n### ")
        .map(|(i, _)| i + 1)
        .find(|&i| doc[i..].lines().next().is_some_and(|h| h.contains(&needle)))?;
    let rest = &doc[start + 4..];
    let end = rest
        .find("\n## ")
        .into_iter()
        .chain(rest.find("\n### "))
        .min()
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

/// Everything in the schema that docs/sql.md fails to document.
fn undocumented(
    doc: &str,
    relations: &BTreeMap<String, Vec<String>>,
    indexes: &BTreeSet<String>,
) -> Vec<String> {
    let mut missing = Vec::new();
    for (relation, columns) in relations {
        let Some(section) = doc_section(doc, relation) else {
            missing.push(format!("relation {relation} has no ### section"));
            continue;
        };
        for column in columns {
            if !section.contains(&format!("`{column}`")) {
                missing.push(format!("column {relation}.{column}"));
            }
        }
    }
    for index in indexes {
        if !doc.contains(&format!("`{index}`")) {
            missing.push(format!("index {index}"));
        }
    }
    missing
}

#[tokio::test]
async fn docs_cover_every_postgres_table_column_index_and_view() {
    let Some((admin, pool, name)) = fresh_pg("docs").await else {
        return;
    };
    for (path, sql) in migrations("postgres").expect("migrations/postgres/*.sql") {
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .unwrap_or_else(|e| panic!("applying {}: {e}", path.display()));
    }
    let rows = sqlx::query(
        "SELECT table_name::text, column_name::text FROM information_schema.columns
         WHERE table_schema = 'public' ORDER BY table_name, ordinal_position",
    )
    .fetch_all(&pool)
    .await
    .expect("columns");
    let mut relations: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in rows {
        relations.entry(row.get(0)).or_default().push(row.get(1));
    }
    // Indexes users may see in EXPLAIN; constraint-backed ones are named by
    // their table's unique/primary key columns instead.
    let indexes: BTreeSet<String> = sqlx::query(
        "SELECT indexname::text FROM pg_indexes WHERE schemaname = 'public'
         AND indexname NOT LIKE '%\\_pkey' AND indexname NOT LIKE '%\\_key'",
    )
    .fetch_all(&pool)
    .await
    .expect("indexes")
    .into_iter()
    .map(|r| r.get(0))
    .collect();
    drop_pg(admin, pool, name).await;
    assert!(
        relations.contains_key("story_overview"),
        "views are listed too"
    );
    let missing = undocumented(&read("docs/sql.md"), &relations, &indexes);
    assert!(missing.is_empty(), "docs/sql.md misses: {missing:?}");
}

#[tokio::test]
async fn docs_cover_every_sqlite_table_column_index_and_view() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(pool) = sqlite_with_fixtures(dir.path()).await else {
        return;
    };
    let names: Vec<(String, String)> = sqlx::query(
        "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view', 'index')
         AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'items_fts%'",
    )
    .fetch_all(&pool)
    .await
    .expect("sqlite_master")
    .into_iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect();
    let mut relations = BTreeMap::new();
    let mut indexes = BTreeSet::new();
    for (name, kind) in names {
        if kind == "index" {
            indexes.insert(name);
            continue;
        }
        let columns: Vec<String> = sqlx::query(AssertSqlSafe(format!(
            "SELECT name FROM pragma_table_info('{name}')"
        )))
        .fetch_all(&pool)
        .await
        .expect("table_info")
        .into_iter()
        .map(|r| r.get(0))
        .collect();
        relations.insert(name, columns);
    }
    let fts: Vec<String> = sqlx::query("SELECT name FROM pragma_table_info('items_fts')")
        .fetch_all(&pool)
        .await
        .expect("items_fts columns")
        .into_iter()
        .map(|r| r.get(0))
        .collect();
    pool.close().await;
    assert_eq!(
        fts,
        ["title", "content_text"],
        "items_fts columns as documented"
    );
    let doc = read("docs/sql.md");
    assert!(doc.contains("`items_fts`"));
    let missing = undocumented(&doc, &relations, &indexes);
    assert!(missing.is_empty(), "docs/sql.md misses: {missing:?}");
}

/// The SQL of the `<!-- recipe: analyst_role ... -->` blocks, psql
/// meta-commands (`\password`) left out.
fn analyst_role_recipe(doc: &str) -> Vec<String> {
    let mut statements = Vec::new();
    let mut rest = doc;
    while let Some(at) = rest.find("<!-- recipe: analyst_role backends: postgres -->") {
        let after = &rest[at..];
        let start = after.find("```sql\n").expect("recipe block") + "```sql\n".len();
        let end = start + after[start..].find("\n```").expect("closed block");
        let body: String = after[start..end]
            .lines()
            .filter(|l| !l.trim_start().starts_with('\\') && !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        statements.extend(
            body.split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from),
        );
        rest = &after[end..];
    }
    statements
}

/// Runs a test body on its own task so that the scratch database (and any
/// role) is dropped even when the body panics; then re-raises the panic.
async fn cleaning_up<Fut>(admin: PgPool, pool: PgPool, db: String, role: Option<String>, body: Fut)
where
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let outcome = tokio::spawn(body).await;
    drop_pg(admin.clone(), pool, db).await;
    if let Some(role) = role {
        let _ = admin
            .execute(AssertSqlSafe(format!("DROP ROLE IF EXISTS {role}")))
            .await;
    }
    if let Err(e) = outcome {
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
        panic!("test body failed: {e}");
    }
}

#[tokio::test]
async fn analyst_role_recipe_reads_but_cannot_write() {
    let Some((admin, pool, db)) = fresh_pg("role").await else {
        return;
    };
    let role = format!("feedfold_analyst_{}", rand::random::<u32>());
    let body = analyst_role_body(pool.clone(), db.clone(), role.clone());
    cleaning_up(admin, pool, db, Some(role), body).await;
}

async fn analyst_role_body(pool: PgPool, db: String, role: String) {
    pg_with_fixtures(&pool).await;
    let owner: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&pool)
        .await
        .expect("current_user");
    let statements = analyst_role_recipe(&read("docs/sql.md"));
    assert!(statements.len() >= 6, "{statements:?}");
    for statement in &statements {
        let sql = statement
            .replace("feedfold_analyst", &role)
            .replace("ON DATABASE feedfold ", &format!("ON DATABASE {db} "))
            .replace("FOR ROLE feedfold ", &format!("FOR ROLE {owner} "));
        pool.execute(AssertSqlSafe(sql.clone()))
            .await
            .unwrap_or_else(|e| panic!("analyst recipe `{sql}`: {e}"));
    }

    // Log in as the analyst (trust auth on 127.0.0.1, as the tests assume).
    let url = std::env::var("TEST_DATABASE_URL").expect("set when fresh_pg succeeded");
    let opts = PgConnectOptions::from_str(&url)
        .expect("url")
        .username(&role)
        .database(&db);
    let analyst = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(opts)
        .await
        .expect("the analyst can log in");
    let stories: i64 = sqlx::query_scalar("SELECT count(*) FROM story_overview")
        .fetch_one(&analyst)
        .await
        .expect("the analyst reads the views");
    assert!(stories > 0);
    let items: i64 = sqlx::query_scalar("SELECT count(*) FROM items")
        .fetch_one(&analyst)
        .await
        .expect("the analyst reads the granted tables");
    assert!(items > 0);
    let read_only: String = sqlx::query_scalar("SHOW default_transaction_read_only")
        .fetch_one(&analyst)
        .await
        .expect("show");
    assert_eq!(read_only, "on");
    let internal = sqlx::query("SELECT count(*) FROM item_keys")
        .fetch_one(&analyst)
        .await;
    assert!(internal.is_err(), "internal tables are not granted");
    let write = sqlx::query("UPDATE feeds SET title = 'x'")
        .execute(&analyst)
        .await;
    assert!(write.is_err(), "the analyst cannot write");
    analyst.close().await;
}

/// `COPY` sources of the build stages (not `--from=` copies), as written.
fn dockerfile_copy_sources(dockerfile: &str) -> Vec<String> {
    dockerfile_instructions(dockerfile)
        .iter()
        .filter_map(|i| i.strip_prefix("COPY "))
        .filter(|args| !args.trim_start().starts_with("--from"))
        .flat_map(|args| {
            let words: Vec<&str> = args.split_whitespace().collect();
            // The last word is the destination.
            words[..words.len().saturating_sub(1)]
                .iter()
                .map(|w| w.to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn docker_build_context_has_what_the_dockerfile_copies() {
    let dockerfile = read("deploy/docker/Dockerfile");
    let sources = dockerfile_copy_sources(&dockerfile);
    assert!(sources.iter().any(|s| s == "Cargo.lock"), "{sources:?}");
    let ignore = read("deploy/docker/dockerignore.example");
    for source in &sources {
        assert!(
            repo_file(source).exists(),
            "the Dockerfile copies {source}, which the repository lacks"
        );
        let kept = ignore.lines().any(|l| {
            l.trim().trim_end_matches('/') == format!("!{}", source.trim_end_matches('/'))
        });
        assert!(kept, "dockerignore.example must re-include {source}");
    }
    // Every workspace member's manifest is in the dependency layer, or cargo
    // cannot load the workspace there.
    let manifest: toml::Table = toml::from_str(&read("Cargo.toml")).expect("Cargo.toml");
    let members = manifest
        .get("workspace")
        .and_then(|w| w.get("members"))
        .and_then(|m| m.as_array())
        .cloned()
        .unwrap_or_default();
    for member in members
        .iter()
        .filter_map(|m| m.as_str())
        .filter(|m| *m != ".")
    {
        let wanted = format!("{member}/Cargo.toml");
        assert!(
            sources.contains(&wanted),
            "the Dockerfile must COPY {wanted}"
        );
        assert!(
            dockerfile.contains(&format!("{member}/src/main.rs")),
            "the dependency layer needs a stub {member}/src/main.rs"
        );
    }
    // A build script present in the repository must reach the builder.
    if repo_file("build.rs").exists() {
        assert!(
            sources.iter().any(|s| s == "build.rs"),
            "the Dockerfile must COPY build.rs"
        );
    }
}

/// `feedfold ARGS` with a clean database environment, run from `cwd`.
fn feedfold_in(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_feedfold"));
    cmd.args(args)
        .current_dir(cwd)
        .env_remove("DATABASE_URL")
        .env_remove("FEEDFOLD_DATABASE_URL")
        .env_remove("FEEDFOLD_LISTEN")
        .env_remove("STATE_DIRECTORY")
        .env_remove("CONFIGURATION_DIRECTORY")
        .env("HOME", cwd);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("running feedfold")
}

#[test]
fn image_default_database_url_creates_the_sqlite_file_on_the_volume() {
    let instructions = dockerfile_instructions(&read("deploy/docker/Dockerfile"));
    let url = instructions
        .iter()
        .filter(|i| i.starts_with("ENV "))
        .flat_map(|i| i.split_whitespace())
        .find_map(|kv| kv.strip_prefix("FEEDFOLD_DATABASE_URL="))
        .expect("ENV FEEDFOLD_DATABASE_URL")
        .to_string();
    let volume = tempfile::tempdir().expect("tempdir");
    let cwd = tempfile::tempdir().expect("tempdir");
    // The same URL, with the volume's mount point moved into a temp dir.
    let url = url.replace("/var/lib/feedfold", &volume.path().display().to_string());
    let out = feedfold_in(cwd.path(), &["migrate"], &[("FEEDFOLD_DATABASE_URL", &url)]);
    assert!(out.status.success(), "feedfold migrate with {url}: {out:?}");
    let db = volume.path().join("feedfold.db");
    assert!(db.exists(), "{url} did not create {}", db.display());
    assert!(!cwd.path().join("feedfold.db").exists());
}

#[test]
fn systemd_state_directory_holds_the_default_database() {
    let state = tempfile::tempdir().expect("tempdir");
    let cwd = tempfile::tempdir().expect("tempdir");
    let dir = state.path().display().to_string();
    let out = feedfold_in(cwd.path(), &["migrate"], &[("STATE_DIRECTORY", &dir)]);
    assert!(
        out.status.success(),
        "feedfold migrate under STATE_DIRECTORY: {out:?}"
    );
    assert!(
        state.path().join("feedfold.db").exists(),
        "no feedfold.db in $STATE_DIRECTORY"
    );
    assert!(
        !cwd.path().join("feedfold.db").exists(),
        "the database went to the working directory"
    );
}

#[test]
fn example_deployment_config_is_accepted() {
    let state = tempfile::tempdir().expect("tempdir");
    let config = repo_file("deploy/feedfold.example.toml");
    let config = config.display().to_string();
    let dir = state.path().display().to_string();
    // `migrate` loads and validates the whole config (unknown keys and bad
    // fold policies are errors) without fetching anything.
    let out = feedfold_in(
        state.path(),
        &["--config", &config, "migrate"],
        &[("STATE_DIRECTORY", &dir)],
    );
    assert!(
        out.status.success(),
        "deploy/feedfold.example.toml rejected: {out:?}"
    );
    assert!(
        state.path().join("feedfold.db").exists(),
        "migrate did not run"
    );
    // Control: the same command rejects a config with an unknown key, so
    // the success above means the example was really validated.
    let bad = state.path().join("bad.toml");
    std::fs::write(
        &bad,
        format!("no_such_key = 1\n{}", read("deploy/feedfold.example.toml")),
    )
    .expect("write bad config");
    let bad = bad.display().to_string();
    let out = feedfold_in(
        state.path(),
        &["--config", &bad, "migrate"],
        &[("STATE_DIRECTORY", &dir)],
    );
    assert!(
        !out.status.success(),
        "an unknown key must be rejected: {out:?}"
    );
    // The feeds it declares are real https URLs, and MEXC is only mentioned.
    let text = read("deploy/feedfold.example.toml");
    let urls: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("url = \""))
        .map(|u| u.trim_end_matches('"'))
        .collect();
    assert!(urls.len() >= 4, "{urls:?}");
    for url in urls {
        assert!(url.starts_with("https://"), "{url}");
        assert!(
            !url.contains(".example"),
            "{url}: fixture domain in the real feed list"
        );
        assert!(
            !url.contains("mexc.com"),
            "MEXC publishes no known feed: {url}"
        );
    }
    assert!(text.contains("https://www.chosun.com/arc/outboundfeeds/rss/?outputType=xml"));
    assert!(text.contains("https://fintechnews.hk/feed/"));
}

/// An RSS 2.0 document with the given (title, link, text) items, dated
/// `hours_ago` before now.
fn rss(title: &str, items: &[(&str, &str, &str, i64)]) -> String {
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\"><channel>\
         <title>{title}</title><link>https://{title}.example.com/</link><description>test</description>\n"
    );
    for (t, link, text, hours_ago) in items {
        let date = (Utc::now() - Duration::hours(*hours_ago)).to_rfc2822();
        out.push_str(&format!(
            "<item><title>{t}</title><link>{link}</link><guid>{link}</guid>\
             <pubDate>{date}</pubDate><description>{text}</description></item>\n"
        ));
    }
    out.push_str("</channel></rss>\n");
    out
}

#[tokio::test]
async fn postgres_notifications_announce_stories_and_copies() {
    let Some((admin, pool, name)) = fresh_pg("notify").await else {
        return;
    };
    let body = notifications_body(pool.clone(), name.clone());
    cleaning_up(admin, pool, name, None, body).await;
}

async fn notifications_body(pool: PgPool, name: String) {
    let mut url = url::Url::parse(&std::env::var("TEST_DATABASE_URL").expect("set")).expect("url");
    url.set_path(&format!("/{name}"));
    let db = url.to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let cranes = "https://wire.example.com/news/cranes-resume";
    let wire = dir.path().join("wire.xml");
    std::fs::write(
        &wire,
        rss(
            "wire",
            &[
                (
                    "Harbour cranes resume work after storm",
                    cranes,
                    "Crane operators at the eastern terminal restarted loading on Saturday after high winds forced a two-day halt, the port authority said.",
                    3,
                ),
                (
                    "City council approves new tram line",
                    "https://wire.example.com/news/tram-line",
                    "The council voted to fund a nine-kilometre tram line linking the rail station with the university campus, with construction due next spring.",
                    2,
                ),
            ],
        ),
    )
    .expect("write feed");
    let mirror = dir.path().join("mirror.xml");
    std::fs::write(
        &mirror,
        rss(
            "mirror",
            &[(
                "Harbour cranes resume work after storm",
                cranes,
                "Crane operators at the eastern terminal restarted loading on Saturday after high winds forced a two-day halt, the port authority said.",
                1,
            )],
        ),
    )
    .expect("write feed");

    // Listen before anything is stored: notifications are not queued.
    let mut listener = sqlx::postgres::PgListener::connect_with(&pool)
        .await
        .expect("listener");
    listener
        .listen_all(["feedfold_stories", "feedfold_copies"])
        .await
        .expect("LISTEN");
    for args in [
        vec!["feeds", "add", wire.to_str().expect("utf-8 path")],
        vec!["feeds", "add", mirror.to_str().expect("utf-8 path")],
        vec!["poll", "--once"],
    ] {
        let mut full = vec!["--database", db.as_str()];
        full.extend(args);
        let out = feedfold_in(dir.path(), &full, &[]);
        assert!(out.status.success(), "feedfold {full:?}: {out:?}");
    }
    // Everything was committed before the CLI exited, so every notification
    // is already buffered on the listener's connection.
    let mut seen: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    while let Ok(Ok(n)) =
        tokio::time::timeout(std::time::Duration::from_secs(5), listener.recv()).await
    {
        let story: i64 = n.payload().parse().expect("payload is a story id");
        seen.entry(n.channel().to_string()).or_default().push(story);
        if seen.values().map(Vec::len).sum::<usize>() == 3 {
            break;
        }
    }
    drop(listener);
    let stories = seen.get("feedfold_stories").cloned().unwrap_or_default();
    let copies = seen.get("feedfold_copies").cloned().unwrap_or_default();
    assert_eq!(stories.len(), 2, "two new stories announced: {seen:?}");
    assert_eq!(copies.len(), 1, "one copy announced: {seen:?}");
    let title: String = sqlx::query_scalar("SELECT title FROM story_overview WHERE story_id = $1")
        .bind(copies[0])
        .fetch_one(&pool)
        .await
        .expect("the announced story is readable");
    assert_eq!(title, "Harbour cranes resume work after storm");
    assert!(stories.contains(&copies[0]));
}

/// A free TCP port on 127.0.0.1 (bound, then released for the daemon).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The container's health probe, end to end: the daemon started the way the
/// image starts it (listen address from FEEDFOLD_LISTEN, state directory for
/// the database), probed with the image's HEALTHCHECK command.
#[test]
fn healthcheck_command_reports_the_daemon_state() {
    let argv = healthcheck_argv(&read("deploy/docker/Dockerfile"));
    let state = tempfile::tempdir().expect("tempdir");
    let dir = state.path().display().to_string();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let probe_url = format!("http://{listen}/healthz");
    let probe = || {
        let mut args: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
        args.extend(["--url", probe_url.as_str()]);
        feedfold_in(state.path(), &args, &[])
    };
    // Control: nothing listens yet, so the probe must fail.
    assert!(
        !probe().status.success(),
        "healthcheck passed with no daemon"
    );

    let mut daemon = Command::new(env!("CARGO_BIN_EXE_feedfold"))
        .arg("run")
        .current_dir(state.path())
        .env_remove("DATABASE_URL")
        .env_remove("FEEDFOLD_DATABASE_URL")
        .env("FEEDFOLD_LISTEN", &listen)
        .env("STATE_DIRECTORY", &dir)
        .env("HOME", &dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start feedfold run");
    // Poll the probe, as Docker does, until it passes or the daemon exits.
    let mut healthy = false;
    for _ in 0..100 {
        if let Ok(Some(status)) = daemon.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = daemon.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            panic!("feedfold run exited early ({status}): {err}");
        }
        if probe().status.success() {
            healthy = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // SIGTERM is the image's STOPSIGNAL: the daemon must exit cleanly on it.
    let pid = daemon.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let mut stopped = None;
    for _ in 0..150 {
        if let Ok(Some(status)) = daemon.try_wait() {
            stopped = Some(status);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    if stopped.is_none() {
        let _ = daemon.kill();
        let _ = daemon.wait();
    }
    assert!(
        healthy,
        "the healthcheck never passed against a running daemon"
    );
    let status = stopped.expect("feedfold run did not stop on SIGTERM");
    assert!(
        status.success(),
        "feedfold run exited with {status} on SIGTERM"
    );
    assert!(state.path().join("feedfold.db").exists());
}
