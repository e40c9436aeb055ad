//! The pictures, as inline SVG drawn on the server: a check's state over the last 7 days as
//! bands (green, yellow, red; drift marked; notes as dots; hover titles say from → to), and
//! the fleet's open incidents over 24 hours as a sparkline.
//!
//! Both are computed backwards from now: the incidents open now, undone event by event
//! (a `resolved` event means it was open before; an `opened` one that it was not), so only
//! the window's events are read.

use super::{State, escape};
use crate::http::times::{age, utc};
use crate::i18n::{Language, Phrase, record_list};
use crate::state::{StoredEvent, StoredNote};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

/// Width of the timeline's drawing (the SVG scales to the page).
const WIDTH: f64 = 1000.0;
/// The narrowest band drawn, so that a short incident stays visible.
const MIN_BAND: f64 = 2.0;

/// A finding open during a band.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct OpenFinding {
    /// Finding code.
    pub code: String,
    /// `critical`, `warning`, `info`.
    pub severity: Option<String>,
    /// What it said.
    pub message: String,
    /// The incident (its `opened` event), when known.
    pub incident: Option<i64>,
}

/// A stretch of time in one state; `None`: before the store's first record of the domain.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Band {
    /// Unix seconds.
    pub start: f64,
    /// Unix seconds.
    pub end: f64,
    /// The state.
    pub state: Option<State>,
    /// The findings open during it (by code).
    pub open: BTreeMap<String, OpenFinding>,
}

fn state_of(open: &BTreeMap<String, OpenFinding>) -> State {
    let severity = |s: &str| open.values().any(|f| f.severity.as_deref() == Some(s));
    if open.contains_key("drift") {
        State::Drift
    } else if severity("critical") {
        State::Critical
    } else if severity("warning") {
        State::Warning
    } else {
        State::Ok
    }
}

/// The bands of one check from `start` to `now`: `open_now` are its incidents open now,
/// `events` its `opened`/`resolved` events since `start` (any order, other kinds ignored),
/// `first_record` when the store first heard of the domain. Adjacent bands differ in state.
pub(super) fn bands(
    start: f64,
    now: f64,
    open_now: Vec<OpenFinding>,
    events: &[&StoredEvent],
    first_record: Option<f64>,
) -> Vec<Band> {
    let mut open: BTreeMap<String, OpenFinding> =
        open_now.into_iter().map(|f| (f.code.clone(), f)).collect();
    let mut changes: Vec<&StoredEvent> = events
        .iter()
        .copied()
        .filter(|e| e.at >= start && (e.kind == "opened" || e.kind == "resolved"))
        .collect();
    changes.sort_by(|a, b| b.at.total_cmp(&a.at).then(b.id.cmp(&a.id)));
    let mut backwards = Vec::new();
    let mut end = now;
    for event in changes {
        backwards.push((event.at.min(end), end, open.clone()));
        end = event.at.min(end);
        let code = event.code.clone().unwrap_or_default();
        if event.kind == "opened" {
            open.remove(&code);
        } else {
            let message = event
                .message
                .strip_prefix("resolved: ")
                .unwrap_or(&event.message);
            open.insert(
                code.clone(),
                OpenFinding {
                    code,
                    severity: event.severity.clone(),
                    message: message.to_owned(),
                    incident: event.incident_id,
                },
            );
        }
    }
    backwards.push((start, end, open));
    let mut out: Vec<Band> = Vec::new();
    for (from, to, open) in backwards.into_iter().rev() {
        let known_from = first_record.map_or(start, |f| f.max(start));
        let mut pieces = Vec::new();
        if from < known_from {
            pieces.push((from, to.min(known_from), None));
        }
        if to > known_from {
            pieces.push((from.max(known_from), to, Some(state_of(&open))));
        }
        for (from, to, state) in pieces {
            if to <= from && !(from == start && to == now) {
                continue;
            }
            match out.last_mut() {
                Some(last) if last.state == state => {
                    last.end = to;
                    for (code, finding) in &open {
                        last.open
                            .entry(code.clone())
                            .or_insert_with(|| finding.clone());
                    }
                }
                _ => out.push(Band {
                    start: from,
                    end: to,
                    state,
                    open: if state.is_some() {
                        open.clone()
                    } else {
                        BTreeMap::new()
                    },
                }),
            }
        }
    }
    out
}

/// The timeline of `check`: its bands, drift marks, notes and day ticks.
/// `opened` maps an incident to its `opened` event (for from → to in the titles).
pub(super) fn timeline(
    check: &str,
    bands: &[Band],
    notes: &[&StoredNote],
    opened: &HashMap<i64, &StoredEvent>,
    (start, now): (f64, f64),
    language: Language,
) -> String {
    let span = (now - start).max(1.0);
    let x = |t: f64| ((t - start) / span * WIDTH).clamp(0.0, WIDTH);
    let mut svg = format!(
        "<svg class=\"timeline\" data-check=\"{check}\" viewBox=\"0 0 {WIDTH} 44\" role=\"img\" aria-label=\"{check}: {}\">",
        Phrase::LastSevenDays.text(language)
    );
    for band in bands {
        let (left, right) = (x(band.start), x(band.end));
        let width = (right - left).max(MIN_BAND);
        let left = left.min(WIDTH - width);
        let class = band.state.map_or("none", State::as_str);
        let _ = write!(
            svg,
            "<rect class=\"band s-{class}\" data-state=\"{class}\" x=\"{left:.1}\" y=\"4\" width=\"{width:.1}\" height=\"22\"><title>{}</title></rect>",
            band_title(band, opened, language)
        );
        if band.state == Some(State::Drift) {
            let _ = write!(
                svg,
                "<rect class=\"drift-mark\" x=\"{left:.1}\" y=\"26\" width=\"{width:.1}\" height=\"4\"><title>{}</title></rect>",
                Phrase::StateDrift.text(language)
            );
        }
    }
    for note in notes {
        let _ = write!(
            svg,
            "<circle class=\"note\" data-note=\"{}\" cx=\"{:.1}\" cy=\"15\" r=\"5\"><title>{} #{} · {}: {}</title></circle>",
            note.id,
            x(note.at).clamp(5.0, WIDTH - 5.0),
            Phrase::Note.text(language),
            note.incident_id,
            utc(note.at),
            super::note_summary(note, language),
        );
    }
    // Day ticks at UTC midnights.
    let mut day = (start / 86_400.0).ceil() * 86_400.0;
    while day < now {
        let date = utc(day);
        let _ = write!(
            svg,
            "<text class=\"axis\" x=\"{:.1}\" y=\"42\">{}</text>",
            x(day).min(WIDTH - 40.0),
            &date[5..10]
        );
        day += 86_400.0;
    }
    svg.push_str("</svg>");
    svg
}

/// Hover text: state, from → to (UTC) and how long, and what was open with its change.
fn band_title(band: &Band, opened: &HashMap<i64, &StoredEvent>, language: Language) -> String {
    let state = match band.state {
        Some(state) => state.label(language),
        None => Phrase::NoRecord.text(language),
    };
    let mut title = format!(
        "{state} · {} → {} UTC ({})",
        utc(band.start),
        utc(band.end),
        age(band.end - band.start)
    );
    for finding in band.open.values() {
        let _ = write!(title, "\n{}: {}", finding.code, finding.message);
        let change = finding.incident.and_then(|id| opened.get(&id));
        if let Some(event) = change
            && let (Some(from), Some(to)) = (&event.from, &event.to)
        {
            let _ = write!(title, " ([{}] → [{}])", record_list(from), record_list(to));
        }
    }
    escape(&title)
}

/// Buckets of the sparkline.
const BUCKETS: usize = 96;

/// The largest number of open incidents in each of [`BUCKETS`] stretches from `start` to
/// `now`: `open_now` now, `changes` (unix seconds, opened?) newest first.
pub(super) fn open_counts(
    start: f64,
    now: f64,
    open_now: usize,
    changes: &[(f64, bool)],
) -> Vec<usize> {
    let span = (now - start).max(1.0);
    let bucket = |t: f64| (((t - start) / span * BUCKETS as f64) as usize).min(BUCKETS - 1);
    let mut counts = vec![0usize; BUCKETS];
    let mut count = open_now as i64;
    let mut end = now;
    let mark = |from: f64, to: f64, count: i64, counts: &mut Vec<usize>| {
        for slot in counts
            .iter_mut()
            .take(bucket(to) + 1)
            .skip(bucket(from.max(start)))
        {
            *slot = (*slot).max(count.max(0) as usize);
        }
    };
    for &(at, opened) in changes {
        if at < start {
            break;
        }
        mark(at, end, count, &mut counts);
        count += if opened { -1 } else { 1 };
        end = at;
    }
    mark(start, end, count, &mut counts);
    counts
}

/// The sparkline of open incidents over the last 24 hours.
pub(super) fn sparkline(counts: &[usize], open_now: usize, language: Language) -> String {
    let (width, height) = (240.0, 48.0);
    let max = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let step = width / counts.len().max(1) as f64;
    let y = |v: usize| height - 2.0 - v as f64 / max * (height - 6.0);
    let mut line = String::new();
    for (i, &v) in counts.iter().enumerate() {
        let (left, right) = (i as f64 * step, (i + 1) as f64 * step);
        let cmd = if i == 0 { 'M' } else { 'L' };
        let _ = write!(line, "{cmd}{left:.1},{:.1}L{right:.1},{:.1}", y(v), y(v));
    }
    let peak = counts.iter().copied().max().unwrap_or(0);
    format!(
        "<svg class=\"sparkline\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"{label}\" data-now=\"{open_now}\" data-peak=\"{peak}\"><title>{label}: {now_word} {open_now}, {peak_word} {peak}</title><path class=\"spark-area\" d=\"{line}L{width},{height}L0,{height}Z\"/><path class=\"spark\" d=\"{line}\"/></svg>",
        label = Phrase::OpenIncidents24h.text(language),
        now_word = Phrase::Now.text(language),
        peak_word = Phrase::Peak.text(language),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: i64, at: f64, kind: &str, code: &str, severity: &str) -> StoredEvent {
        StoredEvent {
            id,
            at,
            domain: "a.example".into(),
            check: "mx".into(),
            kind: kind.into(),
            code: Some(code.into()),
            severity: Some(severity.into()),
            message: format!("{code} <b>"),
            from: Some(serde_json::json!(["10 a"])),
            to: Some(serde_json::json!(["10 b"])),
            server: None,
            resolution_seconds: None,
            incident_id: Some(if kind == "opened" { id } else { id - 1 }),
        }
    }

    fn states(bands: &[Band]) -> Vec<Option<&'static str>> {
        bands.iter().map(|b| b.state.map(State::as_str)).collect()
    }

    #[test]
    fn bands_walk_back_from_the_open_incidents() {
        let (start, now) = (0.0, 7.0 * 86_400.0);
        // ok → warning (day 1) → + drift (day 2) → drift resolved (day 3) → warning
        // resolved (day 4) → critical opened (day 5), still open.
        let events = [
            event(1, 86_400.0, "opened", "dmarc_policy_none", "warning"),
            event(2, 2.0 * 86_400.0, "opened", "drift", "critical"),
            event(3, 3.0 * 86_400.0, "resolved", "drift", "critical"),
            event(
                4,
                4.0 * 86_400.0,
                "resolved",
                "dmarc_policy_none",
                "warning",
            ),
            event(5, 5.0 * 86_400.0, "opened", "mx_missing", "critical"),
        ];
        let refs: Vec<&StoredEvent> = events.iter().rev().collect();
        let open_now = vec![OpenFinding {
            code: "mx_missing".into(),
            severity: Some("critical".into()),
            message: "no MX".into(),
            incident: Some(5),
        }];
        let bands = bands(start, now, open_now.clone(), &refs, Some(0.0));
        assert_eq!(
            states(&bands),
            [
                Some("ok"),
                Some("warning"),
                Some("drift"),
                Some("warning"),
                Some("ok"),
                Some("critical")
            ]
        );
        assert_eq!(bands[2].start, 2.0 * 86_400.0);
        assert_eq!(bands[2].end, 3.0 * 86_400.0);
        assert_eq!(bands.last().unwrap().end, now);
        // Before the store heard of the domain: no record.
        let late = super::bands(start, now, open_now, &refs, Some(0.5 * 86_400.0));
        assert_eq!(late[0].state, None);
        assert_eq!(late[0].end, 0.5 * 86_400.0);
        assert_eq!(late.len(), 7);
        // No events at all: one band in the state of now.
        let quiet = super::bands(start, now, Vec::new(), &[], None);
        assert_eq!(states(&quiet), [Some("ok")]);

        let opened: HashMap<i64, &StoredEvent> = events
            .iter()
            .filter(|e| e.kind == "opened")
            .map(|e| (e.id, e))
            .collect();
        let svg = timeline("mx", &bands, &[], &opened, (start, now), Language::En);
        assert_eq!(svg.matches("<rect class=\"band ").count(), 6);
        assert_eq!(svg.matches("class=\"drift-mark\"").count(), 1);
        assert!(
            svg.contains("drift: drift &lt;b&gt; ([10 a] → [10 b])"),
            "{svg}"
        );
        assert!(
            svg.contains("1970-01-03 00:00:00 → 1970-01-04 00:00:00 UTC (1d 0h)"),
            "{svg}"
        );
        assert!(!svg.contains("<b>"), "unescaped: {svg}");
    }

    #[test]
    fn open_counts_per_bucket() {
        let hour = 3600.0;
        let (start, now) = (0.0, 24.0 * hour);
        // Two open now; one opened at 18 h, one resolved at 12 h, one opened at 6 h.
        let changes = [
            (18.0 * hour, true),
            (12.0 * hour, false),
            (6.0 * hour, true),
        ];
        let counts = open_counts(start, now, 2, &changes);
        assert_eq!(counts.len(), BUCKETS);
        assert_eq!(counts[0], 1); // 0–6 h: 1
        assert_eq!(counts[30], 2); // 6–12 h: 2
        assert_eq!(counts[50], 1); // 12–18 h: 1
        assert_eq!(counts[95], 2); // 18–24 h: 2
        let svg = sparkline(&counts, 2, Language::ZhCn);
        assert!(svg.contains("data-now=\"2\" data-peak=\"2\""), "{svg}");
        assert!(svg.contains("近 24 小时未解决的事件"), "{svg}");
    }
}
