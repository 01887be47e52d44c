//! Text normalization: HTML to text, boilerplate, URL canonicalization.
//! Pure: no I/O, cannot fail.

/// Plain text of an HTML fragment, paragraphs separated by blank lines.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for ch in html.chars() {
        match ch {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.trim().to_string()
}

/// A canonical form of a URL for equality across feeds.
pub fn canonical_url(url: &str) -> Option<String> {
    url::Url::parse(url).ok().map(|u| u.to_string())
}
