//! URL canonicalization: one form per article across feeds, so that a copy
//! that links to the original (with tracking parameters, an AMP variant, a
//! different scheme) is recognised as pointing at the same page.

/// Query parameters that only track the reader and never select content.
fn is_tracking_param(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.starts_with("utm_")
        || n.starts_with("mc_")
        || n.starts_with("pk_")
        || n.starts_with("hsa_")
        || matches!(
            n.as_str(),
            "fbclid"
                | "gclid"
                | "dclid"
                | "gclsrc"
                | "msclkid"
                | "yclid"
                | "twclid"
                | "igshid"
                | "mkt_tok"
                | "_hsenc"
                | "_hsmi"
                | "ocid"
                | "cmpid"
                | "ncid"
                | "ref"
                | "ref_src"
                | "referrer"
                | "source"
                | "amp"
                | "outputtype"
                | "ito"
                | "guccounter"
                | "share"
                | "s_cid"
                | "spm"
        )
}

/// A canonical form of a URL for equality across feeds: https, lowercase
/// host without `www.`/`amp.`/`m.`, no default port, no fragment, no tracking
/// parameters (the rest sorted), no AMP path variants, no trailing slash.
/// None for anything that is not an absolute http(s) URL.
pub fn canonical_url(url: &str) -> Option<String> {
    let mut u = url::Url::parse(url.trim()).ok()?;
    if u.scheme() != "http" && u.scheme() != "https" {
        return None;
    }
    let host = u.host_str()?.to_ascii_lowercase();
    let mut host = host.trim_end_matches('.').to_string();
    for p in ["www.", "amp.", "m."] {
        if let Some(rest) = host.strip_prefix(p)
            && rest.contains('.')
        {
            host = rest.to_string();
        }
    }
    let mut path = u.path().to_string();
    // AMP variants: /amp/ or /amp segment, .amp.html, .amp
    let segs: Vec<&str> = path
        .split('/')
        .filter(|s| !s.is_empty() && *s != "amp")
        .collect();
    let mut p = String::new();
    for s in segs {
        p.push('/');
        p.push_str(s);
    }
    if let Some(stem) = p.strip_suffix(".amp.html") {
        p = format!("{stem}.html");
    } else if let Some(stem) = p.strip_suffix(".amp") {
        p = stem.to_string();
    }
    path = p;
    let mut params: Vec<(String, String)> = u
        .query_pairs()
        .filter(|(k, _)| !is_tracking_param(k))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    params.sort();
    u.set_fragment(None);
    let mut out = format!("https://{host}");
    if let Some(port) = u.port() {
        // Url::port() is None for the scheme's default port already.
        if !(u.scheme() == "http" && port == 443) {
            out.push_str(&format!(":{port}"));
        }
    }
    out.push_str(if path.is_empty() { "/" } else { &path });
    if !params.is_empty() {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params.iter())
            .finish();
        out.push('?');
        out.push_str(&q);
    }
    Some(out)
}

/// The registrable-ish site of a URL: its host without `www.`-like prefixes.
pub fn site_of(url: &str) -> Option<String> {
    let c = canonical_url(url)?;
    let u = url::Url::parse(&c).ok()?;
    u.host_str().map(|h| h.to_string())
}

/// True when the canonical URL is a site's front page, which identifies no
/// article and must never fold two items.
pub fn is_front_page(canonical: &str) -> bool {
    url::Url::parse(canonical)
        .map(|u| (u.path() == "/" || u.path().is_empty()) && u.query().is_none())
        .unwrap_or(true)
}

/// True when two hosts belong to the same site (one is a suffix of the
/// other at a label boundary, e.g. `news.x.example` and `x.example`).
pub fn same_site(a: &str, b: &str) -> bool {
    a == b || a.ends_with(&format!(".{b}")) || b.ends_with(&format!(".{a}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_table() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                "HTTP://WWW.Example.COM:80/a/b/?utm_source=x&id=3#frag",
                Some("https://example.com/a/b?id=3"),
            ),
            (
                "https://example.com/a/b/amp/",
                Some("https://example.com/a/b"),
            ),
            (
                "https://amp.example.com/a/b",
                Some("https://example.com/a/b"),
            ),
            (
                "https://example.com/story.amp.html",
                Some("https://example.com/story.html"),
            ),
            ("https://example.com/a?amp", Some("https://example.com/a")),
            (
                "https://example.com/a?fbclid=1&gclid=2&mc_cid=3&b=2&a=1",
                Some("https://example.com/a?a=1&b=2"),
            ),
            (
                "https://example.com:8443/a",
                Some("https://example.com:8443/a"),
            ),
            ("https://example.com", Some("https://example.com/")),
            ("mailto:x@example.com", None),
            ("not a url", None),
        ];
        for (inp, want) in cases {
            assert_eq!(canonical_url(inp).as_deref(), *want, "{inp}");
        }
    }

    #[test]
    fn front_page_and_sites() {
        assert!(is_front_page("https://example.com/"));
        assert!(!is_front_page("https://example.com/a"));
        assert!(same_site("news.example.com", "example.com"));
        assert!(!same_site("badexample.com", "example.com"));
        assert_eq!(
            site_of("http://www.x.example/a").as_deref(),
            Some("x.example")
        );
    }
}
