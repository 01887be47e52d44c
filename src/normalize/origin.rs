//! Origin links: a copy that says where the article first appeared ("The
//! post … appeared first on …", "Source: …", "originally published by …" in
//! whatever language). Found structurally, not by phrases: a link in a short
//! paragraph at the edge of the content (or in a template paragraph) whose
//! text is the headline or the name of the linked site.

use super::html::{Block, Doc};
use super::text::fold_text;
use super::url::{canonical_url, is_front_page, same_site, site_of};

/// Paragraphs longer than this (in words) are article text, not a credit.
const MAX_CREDIT_WORDS: usize = 40;

fn letters(s: &str) -> String {
    fold_text(s)
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect()
}

/// True when `text` names the site `host` ("Meridian Wire" for
/// meridianwire.example, "BBC" for bbc.co.uk).
pub(crate) fn names_site(text: &str, host: &str) -> bool {
    let t = letters(text);
    if t.len() < 3 || text.split_whitespace().count() > 5 {
        return false;
    }
    let h: String = host
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '.')
        .collect();
    h.split('.').any(|label| {
        label.len() >= 3
            && (label == t
                || (t.len() >= 5 && label.contains(&t))
                || (label.len() >= 5 && t.contains(label)))
    })
}

/// Context for origin detection.
pub struct OriginContext<'a> {
    /// The item's own canonical URL.
    pub own: Option<&'a str>,
    /// Host of the feed (or of the item's site): links to it are self-links.
    pub feed_site: Option<&'a str>,
    /// The item's folded headline.
    pub folded_title: &'a str,
}

/// The canonical URL of the original this content cites, if any.
/// `template[i]` says whether block i is a learned template paragraph.
pub fn origin_link(doc: &Doc, template: &[bool], ctx: &OriginContext<'_>) -> Option<String> {
    let off_site = |c: &str| -> bool {
        let Some(site) = site_of(c) else { return false };
        if Some(c) == ctx.own || is_front_page(c) {
            return false;
        }
        match ctx.feed_site {
            Some(fs) => !same_site(&site, fs),
            None => ctx
                .own
                .and_then(site_of)
                .is_none_or(|own| !same_site(&site, &own)),
        }
    };
    if let Some(c) = doc.canonical.as_deref().and_then(canonical_url)
        && Some(c.as_str()) != ctx.own
        && !is_front_page(&c)
    {
        return Some(c);
    }
    let n = doc.blocks.len();
    let candidate_block = |i: usize, b: &Block| -> bool {
        if b.links.is_empty() || b.is_link_list() {
            return false;
        }
        let edge = i == 0 || i + 2 >= n;
        let words = b.text.split_whitespace().count();
        (edge || template.get(i).copied().unwrap_or(false)) && words <= MAX_CREDIT_WORDS
    };
    for (i, b) in doc.blocks.iter().enumerate().rev() {
        if !candidate_block(i, b) {
            continue;
        }
        for l in &b.links {
            let Some(c) = canonical_url(&l.href) else {
                continue;
            };
            if !off_site(&c) {
                continue;
            }
            let title_cite = !ctx.folded_title.is_empty()
                && fold_text(&l.text).trim() == ctx.folded_title.trim();
            let site_cite = site_of(&c).is_some_and(|h| names_site(&l.text, &h));
            if title_cite || site_cite {
                return Some(c);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::html::parse;

    fn find(html: &str, own: &str, title: &str) -> Option<String> {
        let doc = parse(html);
        let own = canonical_url(own);
        let t = fold_text(title);
        let tmpl = vec![false; doc.blocks.len()];
        origin_link(
            &doc,
            &tmpl,
            &OriginContext {
                own: own.as_deref(),
                feed_site: Some("copy.example"),
                folded_title: &t,
            },
        )
    }

    #[test]
    fn structural_credits() {
        let body = "<p>Long article text that goes on for a while about the harbour.</p>";
        // Title link to another site in a trailing short paragraph.
        let h = format!(
            "{body}<p>Cette note <a href=\"https://orig.example/2024/harbour-deal\">Harbour deal signed</a> est parue sur Orig.</p>"
        );
        assert_eq!(
            find(&h, "https://copy.example/x", "Harbour deal signed").as_deref(),
            Some("https://orig.example/2024/harbour-deal")
        );
        // Site-name link to an article URL.
        let h = format!(
            "{body}<p>Quelle: <a href=\"https://www.origwire.example/a/1?utm_source=x\">Origwire</a></p>"
        );
        assert_eq!(
            find(&h, "https://copy.example/x", "Whatever").as_deref(),
            Some("https://origwire.example/a/1")
        );
        // Self link and front-page link are not origins.
        let h = format!(
            "{body}<p>The post <a href=\"https://copy.example/x\">T</a> appeared first on <a href=\"https://copy.example/\">Copy</a>.</p>"
        );
        assert_eq!(find(&h, "https://copy.example/x", "T"), None);
        // A related-story link list is not a credit.
        let h = format!("{body}<ul><li><a href=\"https://orig.example/a\">Orig</a></li></ul>");
        assert_eq!(find(&h, "https://copy.example/x", "T"), None);
        // rel=canonical wins.
        let h = format!("<link rel=canonical href=\"https://orig.example/p/9\">{body}");
        assert_eq!(
            find(&h, "https://copy.example/x", "T").as_deref(),
            Some("https://orig.example/p/9")
        );
    }
}
