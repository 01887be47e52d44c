//! Per-feed boilerplate, learned without any phrase list: a paragraph whose
//! *shape* (folded, the item's own title and all digits removed) recurs
//! across several items of one feed is that feed's template (footers,
//! disclaimers, bylines, share lines), whatever the language.

use std::collections::{HashMap, HashSet};

use super::chars;
use super::html::Block;
use super::text::{fold_text, for_each_token};
use crate::fingerprint::hash64;

/// A shape must recur in at least this many items of a feed to be template.
pub const MIN_RECURRENCE: usize = 3;

/// The shape hash of one paragraph, or None when nothing but the title and
/// digits is left (such a paragraph carries no template wording).
pub fn shape(block_text: &str, folded_title: &str) -> Option<i64> {
    shape_of_folded(&fold_text(block_text), folded_title)
}

/// `shape` of a paragraph already folded with `fold_text`: a batch folds
/// each paragraph once for its shape, title echo and mark count.
pub fn shape_of_folded(folded: &str, folded_title: &str) -> Option<i64> {
    const PREFIX: &str = "shape\u{1}";
    let replaced;
    let folded = if folded_title.chars().count() >= 8 && folded.contains(folded_title) {
        replaced = folded.replace(folded_title, " ");
        replaced.as_str()
    } else {
        folded
    };
    let mut key = String::with_capacity(PREFIX.len() + folded.len());
    key.push_str(PREFIX);
    for_each_token(folded, |t| {
        let (mut any_num, mut all_num) = (false, true);
        for c in t.chars() {
            let n = chars::is_numeric(c);
            any_num |= n;
            all_num &= n;
        }
        if all_num {
            return;
        }
        if key.len() > PREFIX.len() {
            key.push(' ');
        }
        // Most words hold no digit and are copied whole, not char by char.
        if any_num {
            key.extend(t.chars().filter(|&c| !chars::is_numeric(c)));
        } else {
            key.push_str(t);
        }
    });
    (key.len() > PREFIX.len()).then(|| hash64(&key))
}

/// True when a paragraph is nothing but the item's headline repeated.
pub fn is_title_echo(block_text: &str, folded_title: &str) -> bool {
    !folded_title.is_empty() && is_folded_title_echo(&fold_text(block_text), folded_title)
}

/// `is_title_echo` of a paragraph already folded with `fold_text`.
pub fn is_folded_title_echo(folded: &str, folded_title: &str) -> bool {
    !folded_title.is_empty() && folded.trim() == folded_title.trim()
}

/// Shapes that recur across at least `MIN_RECURRENCE` items of the batch
/// (each item counted once per shape).
pub fn recurring_shapes(per_item: &[Vec<Option<i64>>]) -> HashSet<i64> {
    let mut counts: HashMap<i64, usize> = HashMap::new();
    for shapes in per_item {
        let uniq: HashSet<i64> = shapes.iter().flatten().copied().collect();
        for s in uniq {
            *counts.entry(s).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .filter(|&(_, n)| n >= MIN_RECURRENCE)
        .map(|(s, _)| s)
        .collect()
}

/// Which blocks to keep. Template paragraphs and link lists are peeled off
/// the start and the end only: syndication chrome wraps an article, while a
/// formulaic report repeats its wording *inside* the body and must keep its
/// figures. An item that is template from end to end is kept whole.
pub fn keep_mask(blocks: &[Block], shapes: &[Option<i64>], template: &HashSet<i64>) -> Vec<bool> {
    let n = blocks.len();
    let is_chrome = |i: usize| -> bool {
        shapes[i].is_some_and(|s| template.contains(&s)) || blocks[i].is_link_list()
    };
    let mut keep = vec![true; n];
    let mut lo = 0;
    while lo < n && is_chrome(lo) {
        lo += 1;
    }
    if lo == n {
        return keep;
    }
    let mut hi = n;
    while hi > lo && is_chrome(hi - 1) {
        hi -= 1;
    }
    for (i, k) in keep.iter_mut().enumerate() {
        *k = i >= lo && i < hi;
    }
    // Template paragraphs sandwiched between an article's paragraphs are
    // dropped only when they are link lists (related-story boxes).
    for i in lo..hi {
        if blocks[i].is_link_list() && blocks[i].links.len() >= 2 {
            keep[i] = false;
        }
    }
    keep
}

fn is_sentence_end(c: char) -> bool {
    matches!(
        c,
        '.' | '!' | '?' | '。' | '！' | '？' | '…' | '」' | '"' | '”'
    )
}

/// Removes a sentence (or summary) glued in front of the body that the body
/// then repeats: `S S rest` becomes `S rest`. Also removes a first paragraph
/// that the second paragraph starts with.
pub fn unglue_repeated_lead(blocks: &mut Vec<String>) {
    if blocks.len() >= 2 {
        let a = blocks[0].trim();
        if !a.is_empty() && a.chars().count() >= 12 && blocks[1].trim_start().starts_with(a) {
            blocks.remove(0);
        }
    }
    if let Some(first) = blocks.first_mut()
        && let Some(fixed) = unglue(first)
    {
        *first = fixed;
    }
}

fn unglue(text: &str) -> Option<String> {
    let limit = text.len().min(1500);
    for (i, c) in text.char_indices() {
        if i >= limit {
            break;
        }
        if !is_sentence_end(c) {
            continue;
        }
        let k = i + c.len_utf8();
        let head = &text[..k];
        if head.chars().count() < 12 {
            continue;
        }
        let rest = text[k..].trim_start();
        if rest.starts_with(head.trim()) {
            return Some(rest.to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(t: &str) -> Block {
        Block {
            text: t.into(),
            ..Default::default()
        }
    }

    #[test]
    fn shapes_ignore_title_and_digits() {
        let t1 = fold_text("Rates climb again");
        let t2 = fold_text("Port strike ends");
        let a = shape("The item Rates climb again was first seen on Site 24.", &t1);
        let c = shape("The item Port strike ends was first seen on Site 7.", &t2);
        assert_eq!(a, c);
        assert!(a.is_some());
        assert_eq!(shape("2024", &t1), None);
        assert_ne!(shape("Completely different words", &t1), a);
    }

    #[test]
    fn peels_only_edges() {
        let blocks = vec![
            b("chrome"),
            b("body one"),
            b("mid template"),
            b("body two"),
            b("footer"),
        ];
        let shapes: Vec<Option<i64>> = (0..5).map(|i| Some(i as i64)).collect();
        let template: HashSet<i64> = [0, 2, 4].into_iter().collect();
        assert_eq!(
            keep_mask(&blocks, &shapes, &template),
            vec![false, true, true, true, false]
        );
        let all: HashSet<i64> = (0..5).collect();
        assert_eq!(keep_mask(&blocks, &shapes, &all), vec![true; 5]);
    }

    #[test]
    fn unglues_repeated_first_sentence() {
        let mut v = vec!["The council approved the budget on Monday.The council approved the budget on Monday. It now goes to the mayor.".to_string()];
        unglue_repeated_lead(&mut v);
        assert_eq!(
            v[0],
            "The council approved the budget on Monday. It now goes to the mayor."
        );
        let mut w = vec!["Nothing repeated here. Another sentence.".to_string()];
        unglue_repeated_lead(&mut w);
        assert_eq!(w[0], "Nothing repeated here. Another sentence.");
        let mut x = vec![
            "市议会周一批准了预算案。".to_string(),
            "市议会周一批准了预算案。市长将签署。".to_string(),
        ];
        unglue_repeated_lead(&mut x);
        assert_eq!(x.len(), 1);
    }
}
