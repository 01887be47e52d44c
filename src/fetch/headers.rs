//! Pure parsing of the response headers that steer scheduling: Retry-After,
//! Cache-Control and Expires. Kept free of I/O so the table tests are cheap.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};

/// Parses an HTTP-date in the three forms RFC 9110 requires recipients to
/// accept (IMF-fixdate, obsolete RFC 850, asctime).
pub fn parse_http_date(value: &str) -> Option<DateTime<Utc>> {
    let v = value.trim();
    if let Ok(dt) = DateTime::parse_from_rfc2822(v) {
        return Some(dt.with_timezone(&Utc));
    }
    for fmt in ["%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(v, fmt) {
            return Some(naive.and_utc());
        }
    }
    None
}

/// `Retry-After` as delay-seconds or an HTTP-date. A date in the past means
/// "now" (zero); garbage means no hint.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        // Absurdly long digit strings saturate rather than failing.
        return Some(Duration::from_secs(v.parse::<u64>().unwrap_or(u64::MAX)));
    }
    let at = parse_http_date(v)?;
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// `max-age` from a Cache-Control value. `s-maxage` is for shared caches and
/// is ignored; `no-store`/`no-cache` give no freshness hint.
pub fn parse_max_age(value: &str) -> Option<Duration> {
    let mut max_age = None;
    for directive in value.split(',') {
        let directive = directive.trim();
        let (name, arg) = match directive.split_once('=') {
            Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
            None => (directive, None),
        };
        if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
            return None;
        }
        if name.eq_ignore_ascii_case("max-age")
            && let Some(secs) = arg.and_then(|a| a.parse::<u64>().ok())
        {
            max_age = Some(Duration::from_secs(secs));
        }
    }
    max_age
}

/// Freshness lifetime from `Expires`, measured against the response `Date`
/// when present (so a skewed server clock does not matter), else `now`.
/// Invalid or past values (including the common `Expires: 0`) give no hint.
pub fn parse_expires(expires: &str, date: Option<&str>, now: DateTime<Utc>) -> Option<Duration> {
    let at = parse_http_date(expires)?;
    let base = date.and_then(parse_http_date).unwrap_or(now);
    let d = (at - base).to_std().ok()?;
    (!d.is_zero()).then_some(d)
}

/// The `charset` parameter of a Content-Type value.
pub fn charset_param(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        if name.trim().eq_ignore_ascii_case("charset") {
            let v = value.trim().trim_matches('"').trim();
            (!v.is_empty()).then(|| v.to_owned())
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap()
    }

    #[test]
    fn retry_after_table() {
        let cases: &[(&str, Option<u64>)] = &[
            ("120", Some(120)),
            (" 0 ", Some(0)),
            ("Sat, 28 Nov 2026 12:05:00 GMT", Some(300)),
            ("Saturday, 28-Nov-26 12:01:00 GMT", Some(60)),
            ("Sat Nov 28 12:00:30 2026", Some(30)),
            ("Sat, 28 Nov 2026 11:00:00 GMT", Some(0)),
            ("99999999999999999999999", Some(u64::MAX)),
            ("-5", None),
            ("soon", None),
            ("", None),
            ("1.5", None),
        ];
        for (raw, want) in cases {
            assert_eq!(
                parse_retry_after(raw, now()),
                want.map(Duration::from_secs),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn max_age_table() {
        let cases: &[(&str, Option<u64>)] = &[
            ("max-age=3600", Some(3600)),
            ("public, max-age=600, must-revalidate", Some(600)),
            ("MAX-AGE=\"60\"", Some(60)),
            ("s-maxage=900", None),
            ("s-maxage=900, max-age=30", Some(30)),
            ("no-cache, max-age=600", None),
            ("no-store", None),
            ("max-age=abc", None),
            ("private", None),
            ("", None),
        ];
        for (raw, want) in cases {
            assert_eq!(parse_max_age(raw), want.map(Duration::from_secs), "{raw:?}");
        }
    }

    #[test]
    fn expires_table() {
        let date = Some("Sat, 28 Nov 2026 10:00:00 GMT");
        // Relative to Date, not to our clock.
        assert_eq!(
            parse_expires("Sat, 28 Nov 2026 11:00:00 GMT", date, now()),
            Some(Duration::from_secs(3600))
        );
        // Without Date: relative to now.
        assert_eq!(
            parse_expires("Sat, 28 Nov 2026 12:30:00 GMT", None, now()),
            Some(Duration::from_secs(1800))
        );
        assert_eq!(parse_expires("0", date, now()), None);
        assert_eq!(
            parse_expires("Sat, 28 Nov 2026 09:00:00 GMT", date, now()),
            None
        );
        assert_eq!(
            parse_expires("Sat, 28 Nov 2026 12:30:00 GMT", Some("garbage"), now()),
            Some(Duration::from_secs(1800))
        );
    }

    #[test]
    fn charset_param_table() {
        assert_eq!(
            charset_param("application/rss+xml; charset=Shift_JIS").as_deref(),
            Some("Shift_JIS")
        );
        assert_eq!(
            charset_param("text/xml;CHARSET=\"euc-kr\"").as_deref(),
            Some("euc-kr")
        );
        assert_eq!(charset_param("application/xml"), None);
        assert_eq!(charset_param("text/xml; charset="), None);
    }
}
