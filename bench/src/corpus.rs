//! Seeded corpus generator: news-shaped HTML articles in six languages, with a
//! share of syndicated copies, and RSS/Atom/JSON feed files built from them.
//!
//! Every word list here was written for this generator: the text is
//! realistic in shape (sentence lengths, stopword share, names, amounts,
//! paragraph structure, CJK without spaces) but not in meaning. Vocabulary
//! per article mixes common words with a topic vocabulary of synthetic
//! words, so that unrelated articles differ as real ones do, instead of
//! all sharing one small word list (which would make every pair look
//! similar to a simhash and flatter nobody).

use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub const LANGS: [&str; 6] = ["en", "de", "fr", "ru", "ko", "zh"];

const EN_COMMON: &[&str] = &[
    "the",
    "of",
    "and",
    "to",
    "in",
    "a",
    "is",
    "that",
    "for",
    "on",
    "was",
    "with",
    "as",
    "by",
    "it",
    "said",
    "at",
    "from",
    "its",
    "has",
    "have",
    "will",
    "an",
    "be",
    "are",
    "this",
    "which",
    "after",
    "more",
    "than",
    "new",
    "year",
    "market",
    "company",
    "government",
    "people",
    "first",
    "two",
    "also",
    "last",
    "week",
    "would",
    "could",
    "about",
    "over",
    "into",
    "their",
    "percent",
    "bank",
    "report",
    "officials",
    "plan",
    "city",
    "board",
    "investors",
    "shares",
    "according",
    "statement",
    "minister",
    "police",
    "court",
    "deal",
    "prices",
    "growth",
    "data",
    "service",
    "project",
    "agency",
    "workers",
    "group",
    "public",
    "state",
    "while",
    "since",
    "before",
    "under",
    "between",
    "record",
    "quarter",
    "analysts",
    "expected",
    "announced",
    "million",
    "billion",
    "strong",
    "weak",
    "local",
    "national",
    "global",
    "early",
    "late",
    "major",
    "small",
    "rules",
    "policy",
];
const DE_COMMON: &[&str] = &[
    "der",
    "die",
    "das",
    "und",
    "in",
    "zu",
    "den",
    "von",
    "mit",
    "ist",
    "im",
    "für",
    "auf",
    "nicht",
    "sich",
    "dem",
    "eine",
    "ein",
    "auch",
    "es",
    "an",
    "als",
    "nach",
    "wie",
    "bei",
    "sagte",
    "hat",
    "wurde",
    "werden",
    "sind",
    "noch",
    "mehr",
    "über",
    "Jahr",
    "Prozent",
    "Regierung",
    "Unternehmen",
    "Markt",
    "Bank",
    "Stadt",
    "Woche",
    "Milliarden",
    "Millionen",
    "Bericht",
    "Minister",
    "Polizei",
    "Gericht",
    "Preise",
    "Wachstum",
    "Daten",
    "Projekt",
    "Behörde",
    "Mitarbeiter",
    "Gruppe",
    "öffentlich",
    "zwischen",
    "seit",
    "vor",
    "unter",
    "neue",
    "erste",
    "zwei",
    "letzte",
    "Anleger",
    "Aktien",
    "Quartal",
    "Analysten",
    "erwartet",
    "angekündigt",
    "stark",
    "schwach",
    "bundesweit",
    "weltweit",
    "früh",
    "spät",
    "Regeln",
    "Politik",
    "Erklärung",
    "laut",
];
const FR_COMMON: &[&str] = &[
    "le",
    "la",
    "les",
    "de",
    "des",
    "du",
    "et",
    "en",
    "un",
    "une",
    "est",
    "que",
    "qui",
    "dans",
    "pour",
    "sur",
    "pas",
    "par",
    "au",
    "avec",
    "a",
    "été",
    "selon",
    "plus",
    "ont",
    "sont",
    "cette",
    "après",
    "avant",
    "entre",
    "depuis",
    "sous",
    "nouveau",
    "nouvelle",
    "année",
    "marché",
    "entreprise",
    "gouvernement",
    "banque",
    "ville",
    "semaine",
    "milliards",
    "millions",
    "rapport",
    "ministre",
    "police",
    "tribunal",
    "prix",
    "croissance",
    "données",
    "projet",
    "agence",
    "salariés",
    "groupe",
    "public",
    "premier",
    "deux",
    "dernier",
    "investisseurs",
    "actions",
    "trimestre",
    "analystes",
    "attendu",
    "annoncé",
    "fort",
    "faible",
    "national",
    "mondial",
    "règles",
    "politique",
    "déclaration",
    "pourcent",
    "également",
    "ainsi",
    "toutefois",
];
const RU_COMMON: &[&str] = &[
    "и",
    "в",
    "не",
    "на",
    "что",
    "с",
    "по",
    "как",
    "для",
    "это",
    "из",
    "о",
    "от",
    "за",
    "к",
    "года",
    "году",
    "также",
    "после",
    "более",
    "было",
    "были",
    "будет",
    "заявил",
    "сообщил",
    "рынок",
    "компания",
    "правительство",
    "банк",
    "город",
    "неделе",
    "миллиардов",
    "миллионов",
    "доклад",
    "министр",
    "полиция",
    "суд",
    "цены",
    "рост",
    "данные",
    "проект",
    "агентство",
    "сотрудники",
    "группа",
    "первый",
    "два",
    "последний",
    "инвесторы",
    "акции",
    "квартал",
    "аналитики",
    "ожидается",
    "объявила",
    "сильный",
    "слабый",
    "национальный",
    "мировой",
    "правила",
    "политика",
    "заявление",
    "процентов",
    "однако",
    "между",
    "около",
    "против",
];
/// Hangul syllables; Korean words are built from two or three of them.
const KO_SYLLABLES: &[&str] = &[
    "가", "나", "다", "라", "마", "바", "사", "아", "자", "차", "카", "타", "파", "하", "국", "정",
    "부", "시", "장", "대", "한", "민", "경", "제", "기", "업", "금", "융", "투", "자", "발", "표",
    "회", "의", "원", "전", "관", "계", "자", "수", "출", "입", "세", "계", "주", "식", "시", "장",
    "은", "행", "상", "품", "지", "역", "개", "선", "문", "화", "산", "업",
];
const KO_COMMON: &[&str] = &[
    "정부",
    "시장",
    "기업",
    "은행",
    "투자",
    "발표",
    "경제",
    "올해",
    "지난해",
    "국내",
    "해외",
    "관계자",
    "계획",
    "규제",
    "성장",
    "가격",
    "주가",
    "분기",
    "실적",
    "증가",
    "감소",
    "정책",
    "회의",
    "대통령",
    "장관",
    "서울",
    "지역",
    "사업",
    "기술",
    "개발",
    "이번",
    "가장",
    "이후",
    "최근",
    "따르면",
    "통해",
];
const KO_PARTICLES: &[&str] = &[
    "은", "는", "이", "가", "을", "를", "에", "에서", "의", "와", "로", "도",
];
const KO_ENDINGS: &[&str] = &[
    "했다",
    "밝혔다",
    "전했다",
    "설명했다",
    "예상된다",
    "발표했다",
    "덧붙였다",
];
/// Common Han characters; Chinese text is written without spaces.
const ZH_CHARS: &[&str] = &[
    "的", "一", "是", "在", "不", "了", "有", "和", "人", "这", "中", "大", "为", "上", "个", "国",
    "我", "以", "要", "他", "时", "来", "用", "们", "生", "到", "作", "地", "于", "出", "就", "分",
    "对", "成", "会", "可", "主", "发", "年", "动", "同", "工", "也", "能", "下", "过", "子", "说",
    "产", "种", "面", "而", "方", "后", "多", "定", "行", "学", "法", "所", "民", "得", "经", "十",
    "三", "之", "进", "着", "等", "部", "度", "家", "电", "力", "里", "如", "水", "化", "高", "自",
    "二", "理", "起", "小", "物", "现", "实", "加", "量", "都", "两", "体", "制", "机", "当", "使",
    "点", "从", "业", "本", "去", "把", "性", "好", "应", "开", "它", "合", "还", "因", "由", "其",
    "些", "然", "前", "外", "天", "政", "四", "日", "那", "社", "义", "事", "平", "形", "相", "全",
    "表", "间", "样", "与", "关", "各", "重", "新", "线", "内", "数", "正", "心", "反", "你", "明",
    "看", "原", "又", "么", "利", "比", "或", "但", "质", "气", "第", "向", "道", "命", "此", "变",
    "条", "只", "没", "结", "解", "银", "行", "市", "场", "投", "资", "券", "货", "币", "价", "格",
    "增", "长", "率", "企",
];

const LATIN_ONSETS: &[&str] = &[
    "b", "br", "c", "ch", "cl", "d", "dr", "f", "fl", "g", "gr", "h", "k", "l", "m", "n", "p",
    "pr", "r", "s", "st", "t", "tr", "v", "w", "z",
];
const LATIN_VOWELS: &[&str] = &["a", "e", "i", "o", "u", "ai", "ea", "ou", "ie"];
const LATIN_CODAS: &[&str] = &["", "n", "r", "s", "t", "l", "m", "nd", "rt", "x"];
const CYR_ONSETS: &[&str] = &[
    "б", "в", "г", "д", "ж", "з", "к", "л", "м", "н", "п", "р", "с", "т", "ф", "х", "ш", "ст", "пр",
];
const CYR_VOWELS: &[&str] = &["а", "е", "и", "о", "у", "я", "ы"];
const CYR_CODAS: &[&str] = &["", "н", "р", "с", "т", "л", "в", "к"];

/// How a copy differs from the original it republishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Original,
    /// "The post … appeared first on …" appended.
    Footer,
    /// A long legal disclaimer wrapped around the body.
    Disclaimer,
    /// The first two or three sentences and "[…]".
    TruncatedLead,
    /// A new headline and a few edited words.
    LightEdit,
    /// Headline only, no body.
    HeadlineOnly,
}

#[derive(Debug, Clone)]
pub struct Article {
    /// Which story this article carries (originals and copies share it).
    pub story: u64,
    pub lang: &'static str,
    /// Index of the publishing feed (see `Gen::feed_url`).
    pub feed: usize,
    pub guid: String,
    pub url: String,
    pub title: String,
    /// HTML body; empty for headline-only items.
    pub html: String,
    pub published: DateTime<Utc>,
    pub variant: Variant,
}

#[derive(Debug, Clone)]
pub struct GenConfig {
    /// Share of articles that are syndicated copies of an earlier one.
    pub copy_share: f64,
    pub feeds: usize,
    /// Body size range in bytes of HTML.
    pub min_bytes: usize,
    pub max_bytes: usize,
    /// Timestamps run from here, this many seconds apart on average.
    pub start: DateTime<Utc>,
    pub mean_gap_secs: f64,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            copy_share: 0.3,
            feeds: 200,
            min_bytes: 2_000,
            max_bytes: 5_000,
            start: Utc
                .with_ymd_and_hms(2026, 11, 1, 0, 0, 0)
                .single()
                .unwrap_or_else(Utc::now),
            mean_gap_secs: 120.0,
        }
    }
}

struct Original {
    story: u64,
    lang: &'static str,
    title: String,
    paragraphs: Vec<String>,
    url: String,
    published: DateTime<Utc>,
}

/// A deterministic stream of articles for one seed.
pub struct Gen {
    rng: StdRng,
    cfg: GenConfig,
    next_story: u64,
    next_guid: u64,
    clock: DateTime<Utc>,
    recent: Vec<Original>,
}

impl Gen {
    pub fn new(seed: u64, cfg: GenConfig) -> Gen {
        let clock = cfg.start;
        Gen {
            rng: StdRng::seed_from_u64(seed),
            cfg,
            next_story: 0,
            next_guid: 0,
            clock,
            recent: Vec::new(),
        }
    }

    /// The publisher behind feed `i`; its site name is used in footers.
    pub fn site_name(i: usize) -> String {
        format!("Daily Ledger {i}")
    }

    pub fn feed_lang(i: usize) -> &'static str {
        LANGS[i % LANGS.len()]
    }

    /// Next article: a new original, or (with `copy_share`) a copy of a
    /// recent original published by another feed in the same language.
    pub fn next_article(&mut self) -> Article {
        let gap: f64 = self.rng.random::<f64>() * 2.0 * self.cfg.mean_gap_secs;
        self.clock += Duration::milliseconds((gap * 1000.0) as i64);
        let copy = !self.recent.is_empty() && self.rng.random_bool(self.cfg.copy_share);
        if copy {
            self.copy_of_recent()
        } else {
            self.original()
        }
    }

    /// Moves the clock as one article would, without making one; returns
    /// the new time (bulk fills keep the chronology).
    pub fn advance(&mut self) -> DateTime<Utc> {
        let gap: f64 = self.rng.random::<f64>() * 2.0 * self.cfg.mean_gap_secs;
        self.clock += Duration::milliseconds((gap * 1000.0) as i64);
        self.clock
    }

    pub fn articles(&mut self, n: usize) -> Vec<Article> {
        (0..n).map(|_| self.next_article()).collect()
    }

    /// Numbers the next articles after `n`: a generator run against a store
    /// that already holds another run's articles gives them new identities.
    pub fn number_after(&mut self, n: u64) {
        self.next_guid = self.next_guid.max(n);
    }

    fn guid(&mut self) -> u64 {
        self.next_guid += 1;
        self.next_guid
    }

    fn original(&mut self) -> Article {
        let feed = self.rng.random_range(0..self.cfg.feeds.max(1));
        let lang = Self::feed_lang(feed);
        let story = self.next_story;
        self.next_story += 1;
        let topic = Topic::new(&mut self.rng, lang);
        let title = topic.headline(&mut self.rng);
        let target = self
            .rng
            .random_range(self.cfg.min_bytes..=self.cfg.max_bytes.max(self.cfg.min_bytes));
        let mut paragraphs = Vec::new();
        let mut size = 0;
        while size < target.saturating_sub(200) {
            let p = topic.paragraph(&mut self.rng);
            size += p.len() + 7;
            paragraphs.push(p);
        }
        let guid = self.guid();
        let url = format!(
            "https://news{feed}.example.com/{}/story-{guid}",
            self.clock.format("%Y/%m")
        );
        let published = self.clock;
        let html = paragraphs_html(&paragraphs);
        if self.recent.len() >= 256 {
            self.recent.remove(0);
        }
        self.recent.push(Original {
            story,
            lang,
            title: title.clone(),
            paragraphs,
            url: url.clone(),
            published,
        });
        Article {
            story,
            lang,
            feed,
            guid: format!("urn:ledger:{feed}:{guid}"),
            url,
            title,
            html,
            published,
            variant: Variant::Original,
        }
    }

    fn copy_of_recent(&mut self) -> Article {
        let idx = self.rng.random_range(0..self.recent.len());
        let (story, lang, title, paragraphs, orig_url, orig_published) = {
            let o = &self.recent[idx];
            (
                o.story,
                o.lang,
                o.title.clone(),
                o.paragraphs.clone(),
                o.url.clone(),
                o.published,
            )
        };
        // A feed of the same language that did not publish the original.
        let langs = LANGS.len();
        let lang_idx = LANGS.iter().position(|l| *l == lang).unwrap_or(0);
        let slots = (self.cfg.feeds.max(langs) - lang_idx)
            .div_ceil(langs)
            .max(1);
        let feed = lang_idx + langs * self.rng.random_range(0..slots);
        let variant = match self.rng.random_range(0..100) {
            0..=29 => Variant::Footer,
            30..=49 => Variant::Disclaimer,
            50..=69 => Variant::TruncatedLead,
            70..=89 => Variant::LightEdit,
            _ => Variant::HeadlineOnly,
        };
        let site = Self::site_name(feed);
        let mut title_out = title.clone();
        let html = match variant {
            Variant::Footer => {
                let mut h = paragraphs_html(&paragraphs);
                h.push_str(&footer(lang, &title, &orig_url, &Self::site_name(feed + 1)));
                h.push_str(&format!("<p class=\"credit\">Image: {site} / Archive</p>"));
                h
            }
            Variant::Disclaimer => {
                let d = disclaimer(lang, feed);
                let mut h = String::new();
                // Some republishers glue the summary in front of the body.
                if feed.is_multiple_of(2) {
                    h.push_str(&format!(
                        "<p>{}</p>",
                        escape(&first_sentences(&paragraphs[0], 2))
                    ));
                }
                h.push_str(&paragraphs_html(&paragraphs));
                h.push_str(&format!("<p><em>{}</em></p>", escape(&d)));
                h
            }
            Variant::TruncatedLead => {
                let lead = first_sentences(&paragraphs[0], self.rng.random_range(2..=3));
                format!(
                    "<p>{} […]</p><p><a href=\"{orig_url}\">Read more</a></p>",
                    escape(&lead)
                )
            }
            Variant::LightEdit => {
                title_out = edit_words(&mut self.rng, &title, 1);
                let edited: Vec<String> = paragraphs
                    .iter()
                    .map(|p| edit_words(&mut self.rng, p, 2))
                    .collect();
                paragraphs_html(&edited)
            }
            Variant::HeadlineOnly | Variant::Original => String::new(),
        };
        let guid = self.guid();
        // Copies arrive minutes to hours after the original; a few
        // republishers' clocks run early.
        let published = if self.rng.random_bool(0.05) {
            orig_published - Duration::minutes(self.rng.random_range(1..30))
        } else {
            orig_published.max(self.clock - Duration::hours(6))
                + Duration::minutes(self.rng.random_range(1..600))
        };
        Article {
            story,
            lang,
            feed,
            guid: format!("urn:ledger:{feed}:{guid}"),
            url: format!("https://news{feed}.example.com/syndicated/{guid}?utm_source=feed"),
            title: title_out,
            html,
            published,
            variant,
        }
    }
}

/// The vocabulary one story is written in.
struct Topic {
    lang: &'static str,
    words: Vec<String>,
    names: Vec<String>,
    orgs: Vec<String>,
}

impl Topic {
    fn new(rng: &mut StdRng, lang: &'static str) -> Topic {
        let words = (0..40).map(|_| synth_word(rng, lang)).collect();
        let names = (0..4).map(|_| person(rng, lang)).collect();
        let orgs = (0..3).map(|_| org(rng, lang)).collect();
        Topic {
            lang,
            words,
            names,
            orgs,
        }
    }

    fn word(&self, rng: &mut StdRng) -> String {
        // About half common words (Zipf-like: low indexes more often),
        // the rest topic words.
        if rng.random_bool(0.5) {
            let list = common(self.lang);
            let r: f64 = rng.random();
            let i = ((r * r) * list.len() as f64) as usize;
            list[i.min(list.len() - 1)].to_string()
        } else {
            self.words[rng.random_range(0..self.words.len())].clone()
        }
    }

    fn sentence(&self, rng: &mut StdRng) -> String {
        let n = rng.random_range(9..24);
        match self.lang {
            "zh" => {
                let mut s = String::new();
                for i in 0..n {
                    if i == 2 && rng.random_bool(0.5) {
                        s.push_str(&self.names[rng.random_range(0..self.names.len())]);
                    }
                    s.push_str(&self.word(rng));
                    if i == n / 2 {
                        if rng.random_bool(0.4) {
                            s.push_str(&amount(rng, "zh"));
                        }
                        s.push('，');
                    }
                }
                s.push('。');
                s
            }
            _ => {
                let mut words: Vec<String> = Vec::with_capacity(n + 4);
                for _ in 0..n {
                    words.push(self.word(rng));
                }
                if self.lang == "ko" {
                    for w in words.iter_mut() {
                        if rng.random_bool(0.5) {
                            w.push_str(KO_PARTICLES[rng.random_range(0..KO_PARTICLES.len())]);
                        }
                    }
                }
                let at = rng.random_range(0..words.len());
                words.insert(
                    at,
                    self.names[rng.random_range(0..self.names.len())].clone(),
                );
                if rng.random_bool(0.5) {
                    let at = rng.random_range(0..words.len());
                    words.insert(at, self.orgs[rng.random_range(0..self.orgs.len())].clone());
                }
                if rng.random_bool(0.4) {
                    let at = rng.random_range(0..words.len());
                    words.insert(at, amount(rng, self.lang));
                }
                if self.lang == "ko" {
                    words.push(KO_ENDINGS[rng.random_range(0..KO_ENDINGS.len())].to_string());
                }
                let mut s = words.join(" ");
                if let Some(first) = s.chars().next() {
                    let up: String = first.to_uppercase().collect();
                    s.replace_range(..first.len_utf8(), &up);
                }
                if rng.random_bool(0.15) && self.lang != "ko" {
                    s.push_str(&format!(", {} {}", said(self.lang), self.names[0]));
                }
                s.push('.');
                s
            }
        }
    }

    fn paragraph(&self, rng: &mut StdRng) -> String {
        let n = rng.random_range(2..5);
        let sep = if self.lang == "zh" { "" } else { " " };
        (0..n)
            .map(|_| self.sentence(rng))
            .collect::<Vec<_>>()
            .join(sep)
    }

    fn headline(&self, rng: &mut StdRng) -> String {
        let n = rng.random_range(5..10);
        let mut words: Vec<String> = (0..n).map(|_| self.word(rng)).collect();
        words.insert(0, self.orgs[0].clone());
        if rng.random_bool(0.5) {
            words.push(amount(rng, self.lang));
        }
        let sep = if self.lang == "zh" { "" } else { " " };
        let mut s = words.join(sep);
        if let Some(first) = s.chars().next() {
            let up: String = first.to_uppercase().collect();
            s.replace_range(..first.len_utf8(), &up);
        }
        s
    }
}

fn common(lang: &str) -> &'static [&'static str] {
    match lang {
        "de" => DE_COMMON,
        "fr" => FR_COMMON,
        "ru" => RU_COMMON,
        "ko" => KO_COMMON,
        "zh" => &ZH_CHARS[..60],
        _ => EN_COMMON,
    }
}

fn pick<'a>(rng: &mut StdRng, list: &[&'a str]) -> &'a str {
    list[rng.random_range(0..list.len())]
}

fn synth_word(rng: &mut StdRng, lang: &str) -> String {
    match lang {
        "ko" => (0..rng.random_range(2..4))
            .map(|_| pick(rng, KO_SYLLABLES))
            .collect(),
        "zh" => (0..rng.random_range(1..3))
            .map(|_| pick(rng, ZH_CHARS))
            .collect(),
        "ru" => (0..rng.random_range(2..4))
            .map(|_| {
                format!(
                    "{}{}{}",
                    pick(rng, CYR_ONSETS),
                    pick(rng, CYR_VOWELS),
                    pick(rng, CYR_CODAS)
                )
            })
            .collect(),
        _ => {
            let mut w: String = (0..rng.random_range(1..4))
                .map(|_| {
                    format!(
                        "{}{}{}",
                        pick(rng, LATIN_ONSETS),
                        pick(rng, LATIN_VOWELS),
                        pick(rng, LATIN_CODAS)
                    )
                })
                .collect();
            if lang == "de" && rng.random_bool(0.3) {
                w.push_str(pick(rng, &["ung", "keit", "heit", "schaft"]));
            }
            if lang == "fr" && rng.random_bool(0.3) {
                w.push_str(pick(rng, &["ement", "ité", "tion", "eur"]));
            }
            w
        }
    }
}

fn capitalized(rng: &mut StdRng) -> String {
    let w: String = (0..rng.random_range(2..4))
        .map(|_| {
            format!(
                "{}{}{}",
                pick(rng, LATIN_ONSETS),
                pick(rng, LATIN_VOWELS),
                pick(rng, LATIN_CODAS)
            )
        })
        .collect();
    let mut c = w.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => w,
    }
}

fn person(rng: &mut StdRng, lang: &str) -> String {
    match lang {
        "ko" => (0..3).map(|_| pick(rng, KO_SYLLABLES)).collect(),
        "zh" => (0..rng.random_range(2..4))
            .map(|_| pick(rng, ZH_CHARS))
            .collect(),
        "ru" => {
            let w: String = (0..3)
                .map(|_| format!("{}{}", pick(rng, CYR_ONSETS), pick(rng, CYR_VOWELS)))
                .collect();
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_uppercase().chain(c).collect(),
                None => w,
            }
        }
        _ => format!("{} {}", capitalized(rng), capitalized(rng)),
    }
}

fn org(rng: &mut StdRng, lang: &str) -> String {
    let base = capitalized(rng);
    let suffix = match lang {
        "de" => pick(rng, &["AG", "GmbH", "Bank", "Holding"]),
        "fr" => pick(rng, &["SA", "Groupe", "Banque", "Capital"]),
        "ru" => pick(rng, &["Банк", "Групп", "Холдинг"]),
        "ko" => pick(rng, &["그룹", "은행", "증권"]),
        "zh" => pick(rng, &["集团", "银行", "证券"]),
        _ => pick(rng, &["Corp", "Bank", "Holdings", "Capital", "Labs"]),
    };
    format!("{base} {suffix}")
}

fn said(lang: &str) -> &'static str {
    match lang {
        "de" => "sagte",
        "fr" => "a déclaré",
        "ru" => "сказал",
        _ => "said",
    }
}

/// An amount written the way the language writes it (scale words,
/// separators), which the anchor signature must normalize.
fn amount(rng: &mut StdRng, lang: &str) -> String {
    let n = rng.random_range(2..999);
    let frac = rng.random_range(0..10);
    match lang {
        "de" => format!(
            "{n},{frac} {}",
            pick(rng, &["Milliarden Euro", "Millionen Euro", "Prozent"])
        ),
        "fr" => format!(
            "{n},{frac} {}",
            pick(rng, &["milliards d'euros", "millions de dollars", "%"])
        ),
        "ru" => format!(
            "{n},{frac} {}",
            pick(rng, &["млрд рублей", "млн долларов", "%"])
        ),
        "ko" => format!("{n}{}", pick(rng, &["억 원", "조 원", "%"])),
        "zh" => format!("{n}{}", pick(rng, &["亿元", "万美元", "%"])),
        _ => format!("${n}.{frac} {}", pick(rng, &["billion", "million"])),
    }
}

fn footer(lang: &str, title: &str, url: &str, site: &str) -> String {
    let t = escape(title);
    match lang {
        "fr" => {
            format!("<p>L'article <a href=\"{url}\">{t}</a> est apparu en premier sur {site}.</p>")
        }
        "de" => format!("<p>Der Beitrag <a href=\"{url}\">{t}</a> erschien zuerst auf {site}.</p>"),
        "ru" => format!("<p>Запись <a href=\"{url}\">{t}</a> впервые появилась на {site}.</p>"),
        "ko" => format!("<p><a href=\"{url}\">{t}</a> 기사는 {site}에 처음 게재되었습니다.</p>"),
        "zh" => format!("<p>文章<a href=\"{url}\">{t}</a>最早发表于{site}。</p>"),
        _ => format!("<p>The post <a href=\"{url}\">{t}</a> appeared first on {site}.</p>"),
    }
}

/// A fixed ~70-word disclaimer per publisher (its template).
fn disclaimer(lang: &'static str, feed: usize) -> String {
    let mut rng = StdRng::seed_from_u64(0xd15c_1a1e ^ feed as u64);
    let topic = Topic::new(&mut rng, lang);
    let lead = match lang {
        "de" => "Haftungsausschluss:",
        "fr" => "Avertissement :",
        "ru" => "Отказ от ответственности:",
        "ko" => "면책 조항:",
        "zh" => "免责声明：",
        _ => "Disclaimer:",
    };
    let sep = if lang == "zh" { "" } else { " " };
    let body: Vec<String> = (0..5).map(|_| topic.sentence(&mut rng)).collect();
    format!("{lead} {}", body.join(sep))
}

fn first_sentences(p: &str, n: usize) -> String {
    let mut out = String::new();
    let mut count = 0;
    for ch in p.chars() {
        out.push(ch);
        if ch == '.' || ch == '。' {
            count += 1;
            if count == n {
                break;
            }
        }
    }
    out.trim().to_string()
}

/// Replaces `per_sentence` words per sentence-sized chunk (about 1 in 15).
fn edit_words(rng: &mut StdRng, text: &str, per_sentence: usize) -> String {
    if !text.contains(' ') {
        // CJK: swap a couple of characters.
        let mut chars: Vec<char> = text.chars().collect();
        for _ in 0..per_sentence * 2 {
            if chars.len() > 2 {
                let i = rng.random_range(0..chars.len());
                if !chars[i].is_ascii_punctuation() && chars[i] != '。' && chars[i] != '，' {
                    chars[i] = pick(rng, ZH_CHARS).chars().next().unwrap_or('的');
                }
            }
        }
        return chars.into_iter().collect();
    }
    let mut words: Vec<String> = text.split(' ').map(str::to_string).collect();
    let edits = (words.len() / 15).max(1) * per_sentence / 2 + 1;
    for _ in 0..edits {
        let i = rng.random_range(0..words.len());
        if !words[i].ends_with('.') {
            words[i] = EN_COMMON[rng.random_range(0..20)].to_string();
        }
    }
    words.join(" ")
}

/// XML/HTML text escaping: the library's own, so generated feeds escape
/// exactly as feedfold expects plain text to be escaped.
pub fn escape(s: &str) -> String {
    feedfold::parse::escape_html(s)
}

fn paragraphs_html(paragraphs: &[String]) -> String {
    let mut h = String::new();
    for (i, p) in paragraphs.iter().enumerate() {
        if i == 2 {
            h.push_str("<figure><img src=\"https://cdn.example.com/i.jpg\" alt=\"\"><figcaption>Photo: Staff</figcaption></figure>");
        }
        h.push_str("<p>");
        h.push_str(&escape(p));
        h.push_str("</p>");
    }
    h
}

/// Plain text of a generated body (the peers get text, not HTML).
pub fn plain_text(a: &Article) -> String {
    let mut out = String::with_capacity(a.html.len());
    let mut in_tag = false;
    for ch in a.html.chars() {
        match ch {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
}

// ---------------------------------------------------------------- feeds

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedKind {
    Rss,
    Atom,
    Json,
}

impl FeedKind {
    pub fn name(self) -> &'static str {
        match self {
            FeedKind::Rss => "rss",
            FeedKind::Atom => "atom",
            FeedKind::Json => "json",
        }
    }
    pub fn ext(self) -> &'static str {
        match self {
            FeedKind::Rss | FeedKind::Atom => "xml",
            FeedKind::Json => "json",
        }
    }
}

fn rfc822(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S +0000").to_string()
}

fn cdata(s: &str) -> String {
    format!("<![CDATA[{}]]>", s.replace("]]>", "]]]]><![CDATA[>"))
}

fn rss_item(a: &Article) -> String {
    let mut s = format!(
        "<item><title>{}</title><link>{}</link><guid isPermaLink=\"false\">{}</guid><pubDate>{}</pubDate><dc:creator>{}</dc:creator>",
        escape(&a.title),
        escape(&a.url),
        escape(&a.guid),
        rfc822(a.published),
        escape(&Gen::site_name(a.feed)),
    );
    if !a.html.is_empty() {
        let lead = first_sentences(&plain_text(a), 1);
        s.push_str(&format!(
            "<description>{}</description>",
            escape(lead.trim())
        ));
        s.push_str(&format!(
            "<content:encoded>{}</content:encoded>",
            cdata(&a.html)
        ));
    }
    s.push_str("</item>\n");
    s
}

fn atom_entry(a: &Article) -> String {
    let mut s = format!(
        "<entry><title type=\"text\">{}</title><link rel=\"alternate\" href=\"{}\"/><id>{}</id><published>{}</published><updated>{}</updated><author><name>{}</name></author>",
        escape(&a.title),
        escape(&a.url),
        escape(&a.guid),
        a.published.to_rfc3339(),
        a.published.to_rfc3339(),
        escape(&Gen::site_name(a.feed)),
    );
    if !a.html.is_empty() {
        s.push_str(&format!(
            "<content type=\"html\">{}</content>",
            escape(&a.html)
        ));
    }
    s.push_str("</entry>\n");
    s
}

fn json_item(a: &Article) -> serde_json::Value {
    let mut v = serde_json::json!({
        "id": a.guid,
        "url": a.url,
        "title": a.title,
        "date_published": a.published.to_rfc3339(),
        "authors": [{"name": Gen::site_name(a.feed)}],
    });
    if !a.html.is_empty() {
        v["content_html"] = serde_json::Value::String(a.html.clone());
    }
    v
}

/// A complete feed document carrying `items`.
pub fn feed_document(kind: FeedKind, feed: usize, items: &[Article]) -> String {
    let title = escape(&Gen::site_name(feed));
    let lang = Gen::feed_lang(feed);
    let site = format!("https://news{feed}.example.com/");
    match kind {
        FeedKind::Rss => {
            let mut s = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\" xmlns:content=\"http://purl.org/rss/1.0/modules/content/\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\" xmlns:sy=\"http://purl.org/rss/1.0/modules/syndication/\">\n<channel><title>{title}</title><link>{site}</link><description>News from {title}</description><language>{lang}</language><ttl>30</ttl><sy:updatePeriod>hourly</sy:updatePeriod><sy:updateFrequency>2</sy:updateFrequency>\n"
            );
            for a in items {
                s.push_str(&rss_item(a));
            }
            s.push_str("</channel></rss>\n");
            s
        }
        FeedKind::Atom => {
            let updated = items
                .iter()
                .map(|a| a.published)
                .max()
                .unwrap_or_else(Utc::now);
            let mut s = format!(
                "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"{lang}\"><title>{title}</title><id>{site}</id><link rel=\"alternate\" href=\"{site}\"/><link rel=\"self\" href=\"{site}feed.atom\"/><updated>{}</updated>\n",
                updated.to_rfc3339()
            );
            for a in items {
                s.push_str(&atom_entry(a));
            }
            s.push_str("</feed>\n");
            s
        }
        FeedKind::Json => {
            let v = serde_json::json!({
                "version": "https://jsonfeed.org/version/1.1",
                "title": Gen::site_name(feed),
                "home_page_url": site,
                "language": lang,
                "items": items.iter().map(json_item).collect::<Vec<_>>(),
            });
            v.to_string()
        }
    }
}

/// A feed of about `target_bytes`, with as many generated articles as fit.
pub fn feed_of_size(kind: FeedKind, target_bytes: usize, seed: u64) -> (String, usize) {
    let mut g = Gen::new(
        seed,
        GenConfig {
            copy_share: 0.2,
            ..GenConfig::default()
        },
    );
    let mut items = Vec::new();
    let mut approx = 600;
    while approx < target_bytes {
        let a = g.next_article();
        approx += a.html.len() + a.title.len() + 350 + a.html.len() / 16;
        items.push(a);
    }
    if items.is_empty() {
        items.push(g.next_article());
    }
    let n = items.len();
    (feed_document(kind, 0, &items), n)
}

/// Deterministic random state for the other benchmarks.
pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_corpus() {
        let a: Vec<String> = Gen::new(7, GenConfig::default())
            .articles(50)
            .into_iter()
            .map(|a| a.html)
            .collect();
        let b: Vec<String> = Gen::new(7, GenConfig::default())
            .articles(50)
            .into_iter()
            .map(|a| a.html)
            .collect();
        assert_eq!(a, b);
    }

    #[test]
    fn originals_are_two_to_five_kb_and_copies_exist() {
        let arts = Gen::new(1, GenConfig::default()).articles(600);
        let originals: Vec<_> = arts
            .iter()
            .filter(|a| a.variant == Variant::Original)
            .collect();
        assert!(
            originals
                .iter()
                .all(|a| a.html.len() >= 1_500 && a.html.len() <= 6_000)
        );
        let copies = arts.len() - originals.len();
        assert!(copies > 100 && copies < 300, "copies {copies}");
        for lang in LANGS {
            assert!(arts.iter().any(|a| a.lang == lang), "no {lang}");
        }
        // A copy shares its story with an original of the same language.
        for c in arts.iter().filter(|a| a.variant != Variant::Original) {
            let o = arts
                .iter()
                .find(|a| a.story == c.story && a.variant == Variant::Original);
            assert_eq!(o.map(|o| o.lang), Some(c.lang));
        }
    }

    #[test]
    fn feeds_reach_their_size_and_parse() {
        for kind in [FeedKind::Rss, FeedKind::Atom, FeedKind::Json] {
            let (doc, n) = feed_of_size(kind, 100_000, 3);
            assert!(
                doc.len() > 80_000 && doc.len() < 140_000,
                "{} {}",
                kind.name(),
                doc.len()
            );
            let parsed = feedfold::parse::feed(&doc, None).expect("parses");
            assert_eq!(parsed.items.len(), n);
        }
    }
}
