//! Text normalization: HTML to text, folding and tokens, boilerplate,
//! URL canonicalization and origin links. Pure: no I/O, cannot fail.

pub mod boilerplate;
pub mod chars;
pub mod html;
pub mod origin;
pub mod text;
pub mod url;

pub use html::html_to_text;
pub use text::{fold_text, tokens};
pub use url::canonical_url;

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    fn html_like() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("<p>".to_string()),
            Just("</p>".to_string()),
            Just("<a href=\"https://x.example/a?utm_source=1\">".to_string()),
            Just("</a>".to_string()),
            Just("<script>".to_string()),
            Just("<br/>".to_string()),
            Just("&amp;".to_string()),
            Just("&#x0;".to_string()),
            Just("&#xD800;".to_string()),
            Just("<!--".to_string()),
            Just("<![CDATA[".to_string()),
            Just("<link rel=canonical href=>".to_string()),
            Just("中文".to_string()),
            any::<String>(),
        ];
        proptest::collection::vec(piece, 0..24).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Normalization never panics on arbitrary input.
        #[test]
        fn never_panics_on_html(s in html_like()) {
            let doc = super::html::parse(&s);
            let text = doc.text();
            let folded = super::fold_text(&text);
            let _ = super::tokens(&folded);
            let title = super::fold_text(&s);
            for b in &doc.blocks {
                let _ = super::boilerplate::shape(&b.text, &title);
            }
            let mut blocks: Vec<String> = doc.blocks.iter().map(|b| b.text.clone()).collect();
            super::boilerplate::unglue_repeated_lead(&mut blocks);
            let _ = super::canonical_url(&s);
        }

        #[test]
        fn never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let s = String::from_utf8_lossy(&bytes);
            let _ = super::html_to_text(&s);
            let _ = super::canonical_url(&format!("https://a.example/{s}"));
            let _ = super::text::guess_lang(&s);
            let _ = crate::fingerprint::headline::normalize(&s, Some("a.example"), &Default::default());
        }
    }
}
