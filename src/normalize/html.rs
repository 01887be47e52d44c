//! HTML to paragraphs with html5ever's tokenizer (no tree building: feed
//! fragments are small and often malformed, and the tokenizer is fast).

use std::cell::RefCell;

use html5ever::tendril::StrTendril;
use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{
    BufferQueue, CharacterTokens, EndTag, StartTag, TagToken, Token, TokenSink, TokenSinkResult,
    Tokenizer, TokenizerOpts,
};

/// A hyperlink found in the content.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Link {
    pub href: String,
    /// Visible text of the anchor, whitespace-collapsed.
    pub text: String,
}

/// One paragraph of visible text with the links inside it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Block {
    pub text: String,
    pub links: Vec<Link>,
    /// Characters of `text` that sit inside anchors: link-only blocks are
    /// navigation (related stories, "read more"), not article text.
    pub link_chars: usize,
}

impl Block {
    /// True when nearly all of the block is anchor text.
    pub fn is_link_list(&self) -> bool {
        // Most paragraphs hold no link; counting their characters is wasted.
        if self.link_chars == 0 {
            return false;
        }
        let total = self.text.chars().filter(|c| !c.is_whitespace()).count();
        total > 0 && self.link_chars * 10 >= total * 9
    }
}

/// An HTML fragment as paragraphs, plus the rel=canonical URL if it has one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Doc {
    pub blocks: Vec<Block>,
    pub canonical: Option<String>,
}

impl Doc {
    /// Paragraphs separated by blank lines.
    pub fn text(&self) -> String {
        join_blocks(self.blocks.iter().map(|b| b.text.as_str()))
    }
}

pub(crate) fn join_blocks<'a>(blocks: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for b in blocks {
        if b.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\n\n");
        }
        out.push_str(b);
    }
    out
}

/// Elements whose content is never article text.
fn is_skipped(name: &str) -> bool {
    matches!(
        name,
        "script"
            | "style"
            | "noscript"
            | "template"
            | "iframe"
            | "svg"
            | "math"
            | "figure"
            | "figcaption"
            | "nav"
            | "aside"
            | "button"
            | "select"
            | "textarea"
            | "object"
            | "video"
            | "audio"
            | "canvas"
            | "head"
            | "title"
    )
}

fn is_block(name: &str) -> bool {
    matches!(
        name,
        "p" | "div"
            | "br"
            | "li"
            | "ul"
            | "ol"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "blockquote"
            | "pre"
            | "table"
            | "tr"
            | "td"
            | "th"
            | "thead"
            | "tbody"
            | "section"
            | "article"
            | "header"
            | "footer"
            | "main"
            | "hr"
            | "dl"
            | "dt"
            | "dd"
            | "address"
            | "body"
            | "html"
            | "form"
            | "details"
            | "summary"
    )
}

#[derive(Default)]
struct State {
    doc: Doc,
    cur: String,
    cur_links: Vec<Link>,
    cur_link_chars: usize,
    /// Open anchor: href and the byte offset in `cur` where it started.
    anchor: Option<(String, usize)>,
    skip_depth: usize,
    skip_names: Vec<String>,
    pending_space: bool,
}

impl State {
    /// Appends text with whitespace runs collapsed to one space and control
    /// characters dropped, copying the runs between them whole.
    fn push_text(&mut self, s: &str) {
        // Text arrives in many small pieces; one reservation each instead
        // of a reallocation per run.
        self.cur.reserve(s.len() + 1);
        let mut run: Option<usize> = None;
        for (i, ch) in s.char_indices() {
            let space = ch.is_whitespace() || ch == '\u{a0}';
            if space || ch.is_control() {
                if let Some(start) = run.take() {
                    self.push_run(&s[start..i]);
                }
                self.pending_space |= space;
            } else if run.is_none() {
                run = Some(i);
            }
        }
        if let Some(start) = run {
            self.push_run(&s[start..]);
        }
    }

    fn push_run(&mut self, run: &str) {
        if self.pending_space && !self.cur.is_empty() {
            self.cur.push(' ');
        }
        self.pending_space = false;
        self.cur.push_str(run);
    }

    fn close_anchor(&mut self) {
        if let Some((href, start)) = self.anchor.take() {
            let text = self.cur.get(start..).unwrap_or("").trim().to_string();
            self.cur_link_chars += text.chars().filter(|c| !c.is_whitespace()).count();
            self.cur_links.push(Link { href, text });
        }
    }

    fn flush(&mut self) {
        let reopen = self.anchor.as_ref().map(|(h, _)| h.clone());
        self.close_anchor();
        let text = std::mem::take(&mut self.cur);
        let links = std::mem::take(&mut self.cur_links);
        let link_chars = std::mem::take(&mut self.cur_link_chars);
        self.pending_space = false;
        let trimmed = text.trim();
        if !trimmed.is_empty() {
            self.doc.blocks.push(Block {
                text: trimmed.to_string(),
                links,
                link_chars,
            });
        }
        if let Some(h) = reopen {
            self.anchor = Some((h, 0));
        }
    }
}

struct Sink {
    state: RefCell<State>,
}

fn attr(tag: &html5ever::tokenizer::Tag, name: &str) -> Option<String> {
    tag.attrs
        .iter()
        .find(|a| &*a.name.local == name)
        .map(|a| a.value.to_string())
}

impl TokenSink for Sink {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        let mut st = self.state.borrow_mut();
        match token {
            CharacterTokens(t) if st.skip_depth == 0 => {
                st.push_text(&t);
            }
            TagToken(tag) => {
                let name: &str = &tag.name;
                let rel = attr(&tag, "rel").map(|r| r.to_ascii_lowercase());
                if tag.kind == StartTag
                    && (name == "link" || name == "a")
                    && rel
                        .as_deref()
                        .is_some_and(|r| r.split_whitespace().any(|x| x == "canonical"))
                    && let Some(h) = attr(&tag, "href")
                {
                    st.doc.canonical.get_or_insert(h);
                }
                if is_skipped(name) {
                    if tag.kind == StartTag && !tag.self_closing {
                        st.skip_depth += 1;
                        st.skip_names.push(name.to_string());
                        return match name {
                            "script" => TokenSinkResult::RawData(RawKind::ScriptData),
                            "style" | "noscript" | "iframe" => {
                                TokenSinkResult::RawData(RawKind::Rawtext)
                            }
                            "textarea" | "title" => TokenSinkResult::RawData(RawKind::Rcdata),
                            _ => TokenSinkResult::Continue,
                        };
                    } else if tag.kind == EndTag {
                        // Close the innermost matching skipped element.
                        if let Some(pos) = st.skip_names.iter().rposition(|n| n == name) {
                            st.skip_names.truncate(pos);
                            st.skip_depth = st.skip_names.len();
                        }
                    }
                    return TokenSinkResult::Continue;
                }
                if st.skip_depth > 0 {
                    return TokenSinkResult::Continue;
                }
                if name == "a" {
                    if tag.kind == StartTag {
                        st.close_anchor();
                        if let Some(h) = attr(&tag, "href") {
                            let start = st.cur.len();
                            st.anchor = Some((h, start));
                        }
                    } else {
                        st.close_anchor();
                    }
                } else if name == "img" {
                    // Images carry no text; alt text is usually a caption.
                } else if is_block(name) {
                    st.flush();
                } else if name == "td" || name == "th" {
                    st.pending_space = true;
                }
            }
            _ => {}
        }
        TokenSinkResult::Continue
    }
}

/// Parses an HTML fragment into paragraphs. Input without any tag is taken
/// as plain text whose blank lines separate paragraphs.
pub fn parse(html: &str) -> Doc {
    if !html.contains('<') && !html.contains('&') {
        let mut doc = Doc::default();
        for para in html.split("\n\n") {
            let mut st = State::default();
            st.push_text(para);
            if !st.cur.is_empty() {
                doc.blocks.push(Block {
                    text: st.cur,
                    ..Default::default()
                });
            }
        }
        return doc;
    }
    let sink = Sink {
        state: RefCell::new(State::default()),
    };
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(html));
    let tok = Tokenizer::new(sink, TokenizerOpts::default());
    let _ = tok.feed(&input);
    tok.end();
    let mut st = tok.sink.state.borrow_mut();
    st.flush();
    std::mem::take(&mut st.doc)
}

/// Plain text of an HTML fragment, paragraphs separated by blank lines.
pub fn html_to_text(html: &str) -> String {
    parse(html).text()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_entities_and_skipped_elements() {
        let cases: &[(&str, &str)] = &[
            ("<p>One &amp; two</p><p>Three</p>", "One & two\n\nThree"),
            ("a<br><br>b", "a\n\nb"),
            (
                "<figure><img src=x><figcaption>Photo: Someone</figcaption></figure><p>Body</p>",
                "Body",
            ),
            ("<script>var a = '<p>x</p>';</script><p>Text</p>", "Text"),
            ("<style>p{color:red}</style>Hi <b>there</b>", "Hi there"),
            ("plain\n\ntext  here", "plain\n\ntext here"),
            ("<p>caf&eacute; &#x4e2d;&#25991;</p>", "café 中文"),
            ("<nav>Home › World</nav><div>Story</div>", "Story"),
        ];
        for (html, want) in cases {
            assert_eq!(html_to_text(html), *want, "{html}");
        }
    }

    #[test]
    fn links_and_canonical() {
        let d = parse(
            "<link rel=\"canonical\" href=\"https://a.example/x\"><p>See <a href=\"https://b.example/\">B site</a> now</p><ul><li><a href=\"/r\">Related</a></li></ul>",
        );
        assert_eq!(d.canonical.as_deref(), Some("https://a.example/x"));
        assert_eq!(d.blocks[0].links[0].text, "B site");
        assert!(!d.blocks[0].is_link_list());
        assert!(d.blocks[1].is_link_list());
    }
}
