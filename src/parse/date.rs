//! Lenient feed date parsing, plugged into feed-rs as its timestamp parser.
//!
//! feed-rs's own parser drops dates with zone abbreviations outside RFC 822
//! (KST, CEST, BST, JST…), dates without a zone and `2003-06-10 04:00:00`
//! style timestamps (research/deps.md §3). A dropped date makes an item
//! undatable for folding and ordering, so we parse what real feeds carry.
//! feed-rs's parser is crate-private, so this one covers everything it did
//! as well (RFC 3339, RFC 2822 with its usual breakages, RFC 1123).

use std::sync::OnceLock;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use regex::Regex;

/// Parses a feed timestamp; `None` when nothing sensible can be read.
/// A missing or unknown zone is taken as UTC: a date a few hours off is
/// far more useful than no date.
pub fn parse_date(raw: &str) -> Option<DateTime<Utc>> {
    let text = clean(raw);
    if text.is_empty() {
        return None;
    }
    parse_iso(&text)
        .or_else(|| parse_rfc2822ish(&text))
        .or_else(|| parse_epoch(&text))
}

/// Collapses whitespace and drops a trailing `(KST)`-style comment, which
/// RFC 2822 allows and which only repeats the numeric offset.
fn clean(raw: &str) -> String {
    let s = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    let Some(open) = s.rfind('(').filter(|_| s.ends_with(')')) else {
        return s;
    };
    let before = s[..open].trim_end();
    // Keep the abbreviation when it is the only zone information.
    let inner = s[open + 1..s.len() - 1].trim();
    if inner.is_empty() || zone_tail_re().is_match(before) {
        before.to_string()
    } else {
        format!("{before} {inner}")
    }
}

fn zone_tail_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(?:[+-]\d{2}:?\d{2}|[A-Za-z]{1,5})$").expect("static regex is valid")
    })
}

fn iso_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?:[Tt ]+(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9})\d*)?)?)?\s*(.*)$",
        )
        .expect("static regex is valid")
    })
}

/// RFC 3339 / ISO 8601 and the usual deviations: space instead of `T`, no
/// seconds, no zone, `+0200` without colon, a zone abbreviation, date only.
fn parse_iso(s: &str) -> Option<DateTime<Utc>> {
    let c = iso_re().captures(s)?;
    let num = |i: usize| c.get(i).and_then(|m| m.as_str().parse::<u32>().ok());
    let year = c.get(1)?.as_str().parse::<i32>().ok()?;
    let date = NaiveDate::from_ymd_opt(year, num(2)?, num(3)?)?;
    let time = match num(4) {
        Some(h) => {
            let nanos = c
                .get(7)
                .map(|m| {
                    let digits = m.as_str();
                    let v: u32 = digits.parse().unwrap_or(0);
                    v * 10u32.pow(9 - digits.len() as u32)
                })
                .unwrap_or(0);
            time_of(h, num(5)?, num(6).unwrap_or(0), nanos)?
        }
        None => NaiveTime::MIN,
    };
    let offset = zone_offset(c.get(8).map_or("", |m| m.as_str()))?;
    to_utc(date.and_time(time), offset)
}

fn rfc2822_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    // [weekday[,]] day month year hh:mm[:ss] [zone]
    RE.get_or_init(|| {
        Regex::new(
            r"^(?:[A-Za-z]+\.?(?:,\s*|\s+))?(\d{1,2})[\s-]+([A-Za-z]+)\.?[\s-]+(\d{2,4}),?\s+(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?\s*(.*)$",
        )
        .expect("static regex is valid")
    })
}

fn mdy_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    // [weekday[,]] month day[,] year hh:mm[:ss] [zone]
    RE.get_or_init(|| {
        Regex::new(
            r"^(?:[A-Za-z]+\.?(?:,\s*|\s+))?([A-Za-z]+)\.?\s+(\d{1,2}),?\s+(\d{2,4}),?\s+(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?\s*(.*)$",
        )
        .expect("static regex is valid")
    })
}

/// RFC 822/2822/1123 and what feeds make of them: wrong or long weekday
/// names, long month names, month before day, 2-digit years, single-digit
/// hours, `24:00`, no seconds, any zone abbreviation or none.
fn parse_rfc2822ish(s: &str) -> Option<DateTime<Utc>> {
    let (day, month, year, h, m, sec, zone) = if let Some(c) = rfc2822_re().captures(s) {
        (
            c.get(1)?.as_str(),
            c.get(2)?.as_str(),
            c.get(3)?.as_str(),
            c.get(4)?.as_str(),
            c.get(5)?.as_str(),
            c.get(6).map(|m| m.as_str()),
            c.get(7).map_or("", |m| m.as_str()),
        )
    } else if let Some(c) = mdy_re().captures(s) {
        (
            c.get(2)?.as_str(),
            c.get(1)?.as_str(),
            c.get(3)?.as_str(),
            c.get(4)?.as_str(),
            c.get(5)?.as_str(),
            c.get(6).map(|m| m.as_str()),
            c.get(7).map_or("", |m| m.as_str()),
        )
    } else {
        return None;
    };
    let month = month_number(month)?;
    let mut year: i32 = year.parse().ok()?;
    if year < 100 {
        // RFC 2822 §4.3: 00-49 → 20xx, 50-99 → 19xx.
        year += if year < 50 { 2000 } else { 1900 };
    }
    let date = NaiveDate::from_ymd_opt(year, month, day.parse().ok()?)?;
    let sec = sec.map_or(Some(0), |s| s.parse().ok())?;
    let time = time_of(h.parse().ok()?, m.parse().ok()?, sec, 0)?;
    to_utc(date.and_time(time), zone_offset(zone)?)
}

/// Unix seconds, which some generators put in pubDate.
fn parse_epoch(s: &str) -> Option<DateTime<Utc>> {
    if !(9..=10).contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Utc.timestamp_opt(s.parse().ok()?, 0).single()
}

/// `24:00` is an end-of-day spelling some feeds use; feed-rs resets it to
/// midnight of the same day, and so do we (same identity hash as before).
fn time_of(h: u32, m: u32, s: u32, nanos: u32) -> Option<NaiveTime> {
    let h = if h == 24 { 0 } else { h };
    // Leap second 60 → 59: chrono accepts it only through nanos.
    let s = s.min(59);
    NaiveTime::from_hms_nano_opt(h, m, s, nanos)
}

fn to_utc(local: NaiveDateTime, offset: FixedOffset) -> Option<DateTime<Utc>> {
    offset
        .from_local_datetime(&local)
        .single()
        .map(|d| d.with_timezone(&Utc))
}

fn month_number(name: &str) -> Option<u32> {
    let lower = name.to_ascii_lowercase();
    let prefix = lower.get(..3)?;
    let n = match prefix {
        "jan" => 1,
        "feb" => 2,
        "mar" => 3,
        "apr" => 4,
        "may" => 5,
        "jun" => 6,
        "jul" => 7,
        "aug" => 8,
        "sep" => 9,
        "oct" => 10,
        "nov" => 11,
        "dec" => 12,
        _ => return None,
    };
    Some(n)
}

fn numeric_zone_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^(?i:GMT|UTC|UT)?\s*([+-])(\d{1,2})(?::?(\d{2}))?$")
            .expect("static regex is valid")
    })
}

/// The offset a zone designation means. Empty and unknown abbreviations are
/// UTC; garbage that is not a zone at all (digits, punctuation) is `None`
/// so the caller does not invent a date from a malformed string.
fn zone_offset(zone: &str) -> Option<FixedOffset> {
    let zone = zone.trim();
    if zone.is_empty() {
        return FixedOffset::east_opt(0);
    }
    if let Some(c) = numeric_zone_re().captures(zone) {
        let sign = if &c[1] == "-" { -1 } else { 1 };
        let h: i32 = c[2].parse().ok()?;
        let m: i32 = c.get(3).map_or(Some(0), |m| m.as_str().parse().ok())?;
        if h > 14 || m > 59 {
            return None;
        }
        return FixedOffset::east_opt(sign * (h * 3600 + m * 60));
    }
    if !zone.bytes().all(|b| b.is_ascii_alphabetic()) || zone.len() > 5 {
        return None;
    }
    let minutes = abbreviation_minutes(&zone.to_ascii_uppercase()).unwrap_or(0);
    FixedOffset::east_opt(minutes * 60)
}

/// Zone abbreviations seen in feeds. Ambiguous ones take the reading RFC 822
/// or the most common publisher gives them (CST = US Central, IST = India,
/// BST = British Summer Time).
fn abbreviation_minutes(abbr: &str) -> Option<i32> {
    let h = |hours: i32| Some(hours * 60);
    match abbr {
        "Z" | "UT" | "UTC" | "GMT" | "WET" | "WEZ" => h(0),
        "EST" => h(-5),
        "EDT" => h(-4),
        "CST" => h(-6),
        "CDT" => h(-5),
        "MST" => h(-7),
        "MDT" => h(-6),
        "PST" => h(-8),
        "PDT" => h(-7),
        "AKST" => h(-9),
        "AKDT" => h(-8),
        "HST" => h(-10),
        "AST" => h(-4),
        "ADT" => h(-3),
        "NST" => Some(-(3 * 60 + 30)),
        "NDT" => Some(-(2 * 60 + 30)),
        "BST" | "WEST" | "WESZ" | "CET" | "MET" | "MEZ" => h(1),
        "CEST" | "MEST" | "MESZ" | "EET" | "SAST" => h(2),
        "EEST" | "MSK" | "TRT" => h(3),
        "GST" => h(4),
        "PKT" => h(5),
        "IST" => Some(5 * 60 + 30),
        "ICT" | "WIB" => h(7),
        "HKT" | "SGT" | "AWST" | "PHT" | "MYT" => h(8),
        "KST" | "JST" => h(9),
        "ACST" => Some(9 * 60 + 30),
        "AEST" => h(10),
        "ACDT" => Some(10 * 60 + 30),
        "AEDT" => h(11),
        "NZST" => h(12),
        "NZDT" => h(13),
        // RFC 2822 §4.3: military zones are unreliable, treat as UTC.
        s if s.len() == 1 => h(0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("test constant is RFC 3339")
            .with_timezone(&Utc)
    }

    #[test]
    fn table() {
        let table: &[(&str, &str)] = &[
            // What feed-rs already handled: must keep working.
            ("Tue, 10 Jun 2003 04:00:00 GMT", "2003-06-10T04:00:00Z"),
            ("Tue, 10 Jun 2003 04:00:00 UT", "2003-06-10T04:00:00Z"),
            ("Tue, 10 Jun 2003 04:00:00 Z", "2003-06-10T04:00:00Z"),
            ("Tue, 10 Jun 2003 04:00:00 UTC", "2003-06-10T04:00:00Z"),
            ("Tue, 10 Jun 2003 04:00:00 EST", "2003-06-10T09:00:00Z"),
            ("Tue, 10 Jun 2003 04:00:00 EDT", "2003-06-10T08:00:00Z"),
            ("Tue, 10 Jun 2003 04:00:00 PDT", "2003-06-10T11:00:00Z"),
            ("Tue, 10 Jun 2003 04:00:00 +0530", "2003-06-09T22:30:00Z"),
            ("Tue, 10 Jun 2003 04:00:00 +05:30", "2003-06-09T22:30:00Z"),
            ("Tue, 10 Jun 2003 04:00:00 -0000", "2003-06-10T04:00:00Z"),
            ("Tue, 10 Jun 03 04:00:00 GMT", "2003-06-10T04:00:00Z"),
            ("Tue, 10 Jun 99 04:00:00 GMT", "1999-06-10T04:00:00Z"),
            ("Tue, 10 Jun 2003 04:00 GMT", "2003-06-10T04:00:00Z"),
            ("10 Jun 2003 04:00:00 GMT", "2003-06-10T04:00:00Z"),
            ("Fri, 10 Jun 2003 04:00:00 GMT", "2003-06-10T04:00:00Z"),
            ("Thurs, 10 June 2003 04:00:00 GMT", "2003-06-10T04:00:00Z"),
            ("tue, 10 jun 2003 04:00:00 gmt", "2003-06-10T04:00:00Z"),
            ("Tue,10 Jun 2003 04:00:00 GMT", "2003-06-10T04:00:00Z"),
            ("Tue, 10 Jun 2003 4:05:06 GMT", "2003-06-10T04:05:06Z"),
            ("Tue, 10 Jun 2003 24:00:00 GMT", "2003-06-10T00:00:00Z"),
            ("Tue, 10 Jun 2003 04:00:00 A", "2003-06-10T04:00:00Z"),
            ("Jun 10 2003 04:00:00 GMT", "2003-06-10T04:00:00Z"),
            (
                "Tuesday, June 10, 2003 04:00:00 GMT",
                "2003-06-10T04:00:00Z",
            ),
            ("2003-06-10T04:00:00Z", "2003-06-10T04:00:00Z"),
            ("2003-06-10T04:00:00+02:00", "2003-06-10T02:00:00Z"),
            ("2003-06-10T04:00:00+0200", "2003-06-10T02:00:00Z"),
            ("2003-06-10T04:00:00.123456Z", "2003-06-10T04:00:00.123456Z"),
            ("2003-06-10", "2003-06-10T00:00:00Z"),
            // What feed-rs dropped.
            ("Tue, 10 Jun 2003 13:00:00 KST", "2003-06-10T04:00:00Z"),
            ("Tue, 10 Jun 2003 13:00:00 JST", "2003-06-10T04:00:00Z"),
            ("Tue, 10 Jun 2003 06:00:00 CEST", "2003-06-10T04:00:00Z"),
            ("Tue, 10 Jun 2003 05:00:00 CET", "2003-06-10T04:00:00Z"),
            ("Tue, 10 Jun 2003 05:00:00 BST", "2003-06-10T04:00:00Z"),
            ("Tue, 10 Jun 2003 07:00:00 MSK", "2003-06-10T04:00:00Z"),
            ("Tue, 10 Jun 2003 14:00:00 AEST", "2003-06-10T04:00:00Z"),
            (
                "Tue, 10 Jun 2003 13:00:00 +0900 (KST)",
                "2003-06-10T04:00:00Z",
            ),
            ("Tue, 10 Jun 2003 13:00:00 (KST)", "2003-06-10T04:00:00Z"),
            ("Tue, 10 Jun 2003 13:00:00 GMT+9", "2003-06-10T04:00:00Z"),
            (
                "Tue, 10 Jun 2003 13:00:00 UTC+09:00",
                "2003-06-10T04:00:00Z",
            ),
            ("Tue, 10 Jun 2003 04:00:00", "2003-06-10T04:00:00Z"),
            ("Tue, 10 Jun 2003 04:00:00 XYZT", "2003-06-10T04:00:00Z"),
            ("2003-06-10 04:00:00", "2003-06-10T04:00:00Z"),
            ("2003-06-10T04:00:00", "2003-06-10T04:00:00Z"),
            ("2003-06-10T04:00", "2003-06-10T04:00:00Z"),
            ("2003-06-10 13:00:00 KST", "2003-06-10T04:00:00Z"),
            ("2003-06-10 06:00:00 +0200", "2003-06-10T04:00:00Z"),
            ("2003/06/10 04:00:00", "2003-06-10T04:00:00Z"),
            ("  2003-06-10\n 04:00:00 ", "2003-06-10T04:00:00Z"),
            ("1055217600", "2003-06-10T04:00:00Z"),
        ];
        for (input, want) in table {
            assert_eq!(parse_date(input), Some(utc(want)), "{input:?}");
        }
    }

    #[test]
    fn rejects_non_dates() {
        for input in [
            "",
            "   ",
            "yesterday",
            "31 Sep 2003 04:00:00 GMT",
            "2003-13-01",
            "Tue, 10 Foo 2003 04:00:00 GMT",
            "2003-06-10T04:00:00 +99:00",
            "2003-06-10T04:00:00 !!",
            "12345",
        ] {
            assert_eq!(parse_date(input), None, "{input:?}");
        }
    }
}
