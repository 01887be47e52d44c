//! Integration tests: fold. Prepare + decide on hand-written, real-shaped
//! fixtures (our own text): which copies fold, which look-alikes never do,
//! and which item ends up canonical.

use chrono::{DateTime, Duration, TimeZone, Utc};
use feedfold::dedup::{
    self, Candidate, Decision, FeedPolicy, FoldConfig, FoldMethod, KeyStats, Subject,
};
use feedfold::parse::ParsedItem;
use feedfold::refresh::prepare::{self, FeedContext};
use feedfold::store::NewItem;

const HARBOUR: &str = "<p>The port authority approved a plan on Tuesday to deepen the northern shipping channel, a project that has been debated for almost a decade and is expected to cost about 410 million euros over six years.</p><p>Supporters say larger container vessels now have to wait for high tide before entering the harbour, which adds hours to every call and pushes some shipping lines toward rival ports further south. Environmental groups warned that dredging could disturb breeding grounds for several fish species and said they would examine the permit closely.</p><p>The authority said work would start next spring, after a final review of the sediment studies, and that the channel would stay open to traffic throughout construction.</p>";

const TRAMS: &str = "<p>City councillors voted late on Monday to extend the eastern tram line by four stops, ending a long argument over whether buses could serve the new housing district just as well.</p><p>The extension will run along the former rail yards and is due to open in three years. Residents who moved into the district last year have complained that the only bus route is overcrowded at peak hours and that cycling paths stop short of the river bridge. The transport department said it would add two express buses as a stopgap until the trams arrive.</p><p>Opposition members questioned the cost estimate and asked for an independent audit before contracts are signed.</p>";

const ORCHARD: &str = "<p>Fruit growers in the southern valleys expect a smaller apple harvest this autumn after a late frost damaged blossoms in April, the regional farmers' association said on Wednesday.</p><p>The association estimates the crop at roughly a fifth below last year, with the highest losses on slopes that lacked frost protection. Several cooperatives have begun hiring fewer seasonal workers, and juice producers are already negotiating imports to keep their plants running. Growers asked the regional government to speed up payments from the weather damage fund, which in past years reached farms only after the following spring.</p>";

const LIBRARY: &str = "<p>The national library reopened its main reading room on Thursday after a three-year renovation that restored the painted ceiling and replaced the heating system that had threatened parts of the manuscript collection.</p><p>Visitors queued before the doors opened, and staff said the room would now stay open until ten in the evening on weekdays. The renovation also added a climate-controlled vault for rare maps and a digitisation studio, which the library plans to use to put its early newspapers online over the next five years. Entry remains free, although groups must book in advance.</p>";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 20, 12, 0, 0).unwrap()
}

fn item(id: &str, url: &str, title: &str, html: &str, hours_ago: i64) -> ParsedItem {
    ParsedItem {
        identity: format!("guid:{id}"),
        guid: Some(id.to_string()),
        url: Some(url.to_string()),
        title: Some(title.to_string()),
        content_html: (!html.is_empty()).then(|| html.to_string()),
        published_at: Some(now() - Duration::hours(hours_ago)),
        ..Default::default()
    }
}

fn prep(feed_id: i64, feed_url: &str, items: &[ParsedItem]) -> Vec<NewItem> {
    let ctx = FeedContext {
        feed_id,
        feed_url: feed_url.to_string(),
        language: Some("en".into()),
    };
    prepare::items(&ctx, items, &[], now()).items
}

fn subject(feed_id: i64, n: &NewItem) -> Subject {
    Subject {
        feed_id,
        feed_policy: FeedPolicy::Normal,
        fold_translations: true,
        url: n.url.clone(),
        canonical_url: n.canonical_url.clone(),
        origin_url: n.origin_url.clone(),
        title: n.title.clone(),
        summary: n.summary.clone(),
        content_text: n.content_text.clone(),
        lang: n.lang.clone(),
        published_at: n.published_at,
        fetched_at: n.fetched_at,
        dated_at: n.dated_at,
        signature: n.signature.clone(),
    }
}

fn cand(item_id: i64, story_id: i64, s: Subject) -> Candidate {
    Candidate {
        item_id,
        story_id,
        is_canonical: true,
        fold_method: None,
        vetoed: false,
        item: s,
    }
}

/// An original feed with the four articles, as stored candidates (one story
/// each, item id = story id).
fn originals() -> Vec<Candidate> {
    let items = [
        item(
            "o1",
            "https://origin.example/2024/05/harbour-channel",
            "Port approves deeper shipping channel",
            HARBOUR,
            10,
        ),
        item(
            "o2",
            "https://origin.example/2024/05/tram-extension",
            "Council backs eastern tram extension",
            TRAMS,
            9,
        ),
        item(
            "o3",
            "https://origin.example/2024/05/apple-harvest",
            "Frost cuts apple harvest outlook",
            ORCHARD,
            8,
        ),
        item(
            "o4",
            "https://origin.example/2024/05/library-reopens",
            "National library reading room reopens",
            LIBRARY,
            7,
        ),
    ];
    prep(1, "https://origin.example/feed.xml", &items)
        .iter()
        .enumerate()
        .map(|(i, n)| cand(i as i64 + 1, i as i64 + 1, subject(1, n)))
        .collect()
}

fn decide(s: &Subject, cands: &[Candidate]) -> Decision {
    dedup::decide(s, cands, &KeyStats::default(), &FoldConfig::default())
}

fn folded_into(d: &Decision) -> Option<(i64, FoldMethod)> {
    match d {
        Decision::Fold(f) => Some((f.story_id, f.method)),
        Decision::NewStory => None,
    }
}

#[test]
fn footer_copies_fold_after_the_footer_is_learned() {
    let footer = |slug: &str, title: &str| {
        format!(
            "<figure><img src=\"x.jpg\"><figcaption>Photo: Stock Images</figcaption></figure><p>La publication <a href=\"https://relay.example/{slug}/\">{title}</a> est apparue en premier sur <a href=\"https://relay.example/\">Relay Daily</a>.</p>"
        )
    };
    let copies = [
        item(
            "c1",
            "https://relay.example/harbour/",
            "Port approves deeper shipping channel",
            &format!(
                "{HARBOUR}{}",
                footer("harbour", "Port approves deeper shipping channel")
            ),
            6,
        ),
        item(
            "c2",
            "https://relay.example/trams/",
            "Council backs eastern tram extension",
            &format!(
                "{TRAMS}{}",
                footer("trams", "Council backs eastern tram extension")
            ),
            5,
        ),
        item(
            "c3",
            "https://relay.example/apples/",
            "Frost cuts apple harvest outlook",
            &format!(
                "{ORCHARD}{}",
                footer("apples", "Frost cuts apple harvest outlook")
            ),
            4,
        ),
    ];
    let prepared = prep(2, "https://relay.example/feed/", &copies);
    assert!(
        !prepared[0].content_text.contains("apparue"),
        "footer stripped: {}",
        prepared[0].content_text
    );
    assert!(prepared[0].signature.republished);
    let cands = originals();
    for (i, n) in prepared.iter().enumerate() {
        let d = decide(&subject(2, n), &cands);
        assert_eq!(
            folded_into(&d).map(|x| x.0),
            Some(i as i64 + 1),
            "copy {i}: {d:?}"
        );
    }
}

#[test]
fn disclaimer_copies_fold() {
    let disclaimer = "<div class=\"note\"><p>Notice: this page reproduces material from third parties for information only. We do not check its accuracy and accept no liability for decisions taken on the basis of it. Nothing here is investment advice. Contact the desk to request removal of any article.</p></div>";
    let copies = [
        item(
            "d1",
            "https://exchange.example/news/1",
            "Port approves deeper shipping channel",
            &format!("{disclaimer}{HARBOUR}"),
            6,
        ),
        item(
            "d2",
            "https://exchange.example/news/2",
            "Council backs eastern tram extension",
            &format!("{TRAMS}{disclaimer}"),
            5,
        ),
        item(
            "d3",
            "https://exchange.example/news/3",
            "Frost cuts apple harvest outlook",
            &format!("{ORCHARD}{disclaimer}"),
            4,
        ),
    ];
    let prepared = prep(3, "https://exchange.example/feed.json", &copies);
    let cands = originals();
    for (i, n) in prepared.iter().enumerate() {
        assert!(!n.content_text.contains("liability"));
        let d = decide(&subject(3, n), &cands);
        assert_eq!(
            folded_into(&d),
            Some((i as i64 + 1, FoldMethod::ContentHash)),
            "copy {i}: {d:?}"
        );
    }
}

#[test]
fn truncated_copy_folds_via_lead() {
    let text = feedfold::normalize::html_to_text(HARBOUR);
    let cut: String = text
        .split_whitespace()
        .take(70)
        .collect::<Vec<_>>()
        .join(" ");
    let html = format!(
        "<p>{cut} […]</p><p><a href=\"https://origin.example/2024/05/harbour-channel\">Read more</a></p>"
    );
    let copy = item(
        "t1",
        "https://digest.example/p/881",
        "Port approves deeper shipping channel",
        &html,
        6,
    );
    let prepared = prep(4, "https://digest.example/rss", &[copy]);
    let mut s = subject(4, &prepared[0]);
    // Without the URL and origin evidence, the lead alone must carry it.
    s.origin_url = None;
    let d = decide(&s, &originals());
    assert_eq!(folded_into(&d), Some((1, FoldMethod::Lead)), "{d:?}");
}

#[test]
fn edited_copy_folds() {
    let edited = HARBOUR
        .replace(
            "The port authority approved",
            "The port authority approved, according to the Coastal Herald,",
        )
        .replace(
            "debated for almost a decade",
            "discussed for nearly ten years",
        )
        .replace("warned that dredging", "cautioned that dredging")
        .replace("next spring", "early next year");
    let copy = item(
        "e1",
        "https://rewrite.example/a/77",
        "Harbour channel deepening gets green light",
        &edited,
        3,
    );
    let prepared = prep(5, "https://rewrite.example/feed", &[copy]);
    let d = decide(&subject(5, &prepared[0]), &originals());
    assert_eq!(folded_into(&d).map(|x| x.0), Some(1), "{d:?}");
}

fn report(city: &str, a: &str, b: &str, c: &str, d: &str) -> String {
    format!(
        "<p>{city} - Weekly grain deliveries to the river terminals totalled {a} tonnes in the week to Friday, compared with {b} tonnes a week earlier, the grain board said.</p><p>Wheat accounted for {c} pct of the total and barley for {d} pct, with the remainder made up of maize and oilseeds. Barge freight rates were unchanged from the previous week.</p>"
    )
}

#[test]
fn templated_report_with_other_figures_does_not_fold() {
    let week1 = item(
        "r1",
        "https://board.example/r/1",
        "GRAIN DELIVERIES RISE IN WEEK",
        &report("RIVERTON, May 3", "412,500", "398,100", "61.5", "22.4"),
        30,
    );
    let week2 = item(
        "r2",
        "https://board.example/r/2",
        "GRAIN DELIVERIES RISE IN WEEK",
        &report("RIVERTON, May 10", "431,900", "412,500", "58.2", "25.1"),
        2,
    );
    let p = prep(6, "https://board.example/feed", &[week1, week2]);
    let cands = vec![cand(10, 10, subject(6, &p[0]))];
    let d = decide(&subject(6, &p[1]), &cands);
    assert_eq!(d, Decision::NewStory);
}

#[test]
fn same_day_different_story_does_not_fold() {
    let other = "<p>The port authority also said on Tuesday that passenger ferry traffic rose to a record in the first quarter, helped by a new evening route to the islands and cheaper fares for students.</p><p>Ferry operators plan to add a second vessel in summer, and the authority will rebuild the waiting hall at the western pier, which has been criticised for years for its lack of shelter. Car traffic on the ferries fell slightly as more travellers left their vehicles at the new park-and-ride site near the ring road.</p>";
    let x = item(
        "s1",
        "https://origin.example/2024/05/ferry-record",
        "Ferry traffic hits record",
        other,
        9,
    );
    let p = prep(1, "https://origin.example/feed.xml", &[x]);
    let d = decide(&subject(1, &p[0]), &originals());
    assert_eq!(d, Decision::NewStory);
}

#[test]
fn tiny_texts_never_fold_on_body_fingerprints_alone() {
    let body = "<p>Read the full story and more market news on our partner website today.</p>";
    let a = item(
        "h1",
        "https://pool.example/r/aa11",
        "Shipping stocks slide as freight rates fall",
        body,
        5,
    );
    let b = item(
        "h2",
        "https://pool.example/r/bb22",
        "Regional bank names new chief executive",
        body,
        4,
    );
    let p = prep(7, "https://pool.example/feed", &[a, b]);
    assert!(p[0].signature.text_len < FoldConfig::default().min_text_len);
    assert_eq!(p[0].signature.simhash, p[1].signature.simhash);
    let d = decide(&subject(7, &p[1]), &[cand(20, 20, subject(7, &p[0]))]);
    assert_eq!(
        d,
        Decision::NewStory,
        "identical tiny bodies, different headlines"
    );
}

#[test]
fn headline_only_pointer_folds_on_headline_and_generic_headlines_are_refused() {
    // A pool that appends the publisher to every headline: the suffix is
    // learned from the batch as decoration.
    let pool = [
        item(
            "g1",
            "https://news.pool.example/articles/CBMiX2h0dHBz",
            "Port approves deeper shipping channel - Origin Times",
            "",
            8,
        ),
        item(
            "g3",
            "https://news.pool.example/articles/CBMiQ3dlcnR5",
            "Mayor opens new bridge - Origin Times",
            "",
            7,
        ),
        item(
            "g4",
            "https://news.pool.example/articles/CBMiZm9vYmFy",
            "Storm closes mountain pass - Origin Times",
            "",
            6,
        ),
    ];
    let p = prep(8, "https://news.pool.example/rss", &pool);
    let s = subject(8, &p[0]);
    assert_eq!(
        s.signature.headline_key.as_deref(),
        Some("port approves deeper shipping channel")
    );
    assert_eq!(s.signature.text_len, 0);
    let d = decide(&s, &originals());
    assert_eq!(folded_into(&d), Some((1, FoldMethod::Headline)), "{d:?}");

    // The same headline on three different stories is generic.
    let generic = |id: &str, url: &str, html: &str| item(id, url, "Market close", html, 6);
    let stories = prep(
        9,
        "https://markets.example/feed",
        &[
            generic("m1", "https://markets.example/1", HARBOUR),
            generic("m2", "https://markets.example/2", TRAMS),
            generic("m3", "https://markets.example/3", ORCHARD),
        ],
    );
    let cands: Vec<Candidate> = stories
        .iter()
        .enumerate()
        .map(|(i, n)| cand(30 + i as i64, 30 + i as i64, subject(9, n)))
        .collect();
    let ptr = prep(
        8,
        "https://news.pool.example/rss",
        &[item(
            "g2",
            "https://news.pool.example/articles/x",
            "Market close",
            "",
            5,
        )],
    );
    let d = decide(&subject(8, &ptr[0]), &cands);
    assert_eq!(d, Decision::NewStory, "generic headline must not fold");
    // One story carrying it is not generic.
    let d = decide(&subject(8, &ptr[0]), &cands[..1]);
    assert_eq!(folded_into(&d).map(|x| x.1), Some(FoldMethod::Headline));
}

#[test]
fn canonical_rule() {
    let cfg = FoldConfig::default();
    // A headline-only pointer founded the story; the article with a body
    // that arrives later becomes canonical.
    let pointer = prep(
        8,
        "https://news.pool.example/rss",
        &[item(
            "p1",
            "https://news.pool.example/articles/abc",
            "Port approves deeper shipping channel",
            "",
            12,
        )],
    );
    let article = originals().remove(0).item;
    let d = dedup::decide(
        &article,
        &[cand(50, 50, subject(8, &pointer[0]))],
        &KeyStats::default(),
        &cfg,
    );
    assert!(
        matches!(&d, Decision::Fold(f) if f.becomes_canonical),
        "{d:?}"
    );
    // The pointer arriving after the article never becomes canonical.
    let d = dedup::decide(
        &subject(8, &pointer[0]),
        &[cand(1, 1, article.clone())],
        &KeyStats::default(),
        &cfg,
    );
    assert!(
        matches!(&d, Decision::Fold(f) if !f.becomes_canonical),
        "{d:?}"
    );

    // An original published two days before the copy that founded the
    // story takes over; a copy arriving later does not.
    let copy = item(
        "k1",
        "https://relay.example/harbour/",
        "Port approves deeper shipping channel",
        HARBOUR,
        10,
    );
    let copy = subject(2, &prep(2, "https://relay.example/feed/", &[copy])[0]);
    let mut early = article.clone();
    early.published_at = Some(now() - Duration::hours(60));
    early.dated_at = early.published_at.unwrap();
    let d = dedup::decide(
        &early,
        &[cand(60, 60, copy.clone())],
        &KeyStats::default(),
        &cfg,
    );
    assert!(
        matches!(&d, Decision::Fold(f) if f.becomes_canonical),
        "{d:?}"
    );
    let mut late_copy = copy;
    late_copy.published_at = Some(now() - Duration::hours(1));
    let d = dedup::decide(
        &late_copy,
        &[cand(1, 1, article)],
        &KeyStats::default(),
        &cfg,
    );
    assert!(
        matches!(&d, Decision::Fold(f) if !f.becomes_canonical),
        "{d:?}"
    );
}

#[test]
fn feed_policies_and_vetoes() {
    let copy = item(
        "v1",
        "https://relay.example/harbour/",
        "Port approves deeper shipping channel",
        HARBOUR,
        3,
    );
    let mut s = subject(2, &prep(2, "https://relay.example/feed/", &[copy])[0]);
    let mut cands = originals();
    assert!(matches!(decide(&s, &cands), Decision::Fold(_)));
    cands[0].vetoed = true;
    assert_eq!(decide(&s, &cands), Decision::NewStory, "vetoed story");
    cands[0].vetoed = false;
    s.feed_policy = FeedPolicy::OriginalOnly;
    assert_eq!(
        decide(&s, &cands),
        Decision::NewStory,
        "original-only feeds never fold"
    );
    s.feed_policy = FeedPolicy::Never;
    assert_eq!(decide(&s, &cands), Decision::NewStory);
    s.feed_policy = FeedPolicy::Normal;
    cands[0].item.feed_policy = FeedPolicy::Never;
    assert_eq!(
        decide(&s, &cands),
        Decision::NewStory,
        "never-fold candidates are skipped"
    );
}
