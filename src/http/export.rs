//! A domain's incidents with their notes, for a post-mortem: Markdown (to paste into a
//! ticket or a wiki) and CSV (one row per note; an incident without notes has one row).
//! Everything that came from DNS or from people is escaped for the format.

use super::times::{age, utc};
use crate::state::{IncidentRecord, StoredNote, unix_seconds};
use std::fmt::Write;
use std::time::SystemTime;

/// Text for Markdown: characters that would make markup (or HTML) are escaped, line
/// breaks become `<br>` so that a table cell stays one line.
fn md(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '#' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' => out.push_str("<br>"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Records (a JSON list of strings) as text: `a, b`.
fn records(value: Option<&serde_json::Value>) -> String {
    value.map(crate::i18n::record_list).unwrap_or_default()
}

fn first_response(note: &StoredNote) -> String {
    match (note.first_response_at, note.first_response_seconds) {
        (Some(at), Some(after)) if after >= 0.0 => {
            format!("{} ({} after opening)", utc(at), age(after))
        }
        (Some(at), _) => utc(at),
        _ => String::new(),
    }
}

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

/// The Markdown post-mortem of `domain`'s incidents (newest first).
pub(crate) fn markdown(domain: &str, incidents: &[IncidentRecord], now: SystemTime) -> String {
    let mut out = format!(
        "# Incidents of {}\n\nExported {} UTC by maildrift: {} incidents, newest first.\n",
        md(domain),
        utc(unix_seconds(now)),
        incidents.len()
    );
    for incident in incidents {
        let _ = write!(
            out,
            "\n## Incident {}: {} {} ({}), {}\n\n- Opened: {} UTC\n",
            incident.id,
            md(&incident.check),
            md(&incident.code),
            md(incident.severity.as_deref().unwrap_or("info")),
            incident.state,
            utc(incident.opened_at)
        );
        match (incident.resolved_at, incident.resolution_seconds) {
            (Some(at), Some(open)) => {
                let _ = writeln!(out, "- Resolved: {} UTC, after {}", utc(at), age(open));
            }
            (Some(at), None) => {
                let _ = writeln!(out, "- Resolved: {} UTC", utc(at));
            }
            _ => out.push_str("- Still open\n"),
        }
        let _ = writeln!(out, "- What: {}", md(&incident.message));
        for (label, value) in [
            ("From", records(incident.from.as_ref())),
            ("To", records(incident.to.as_ref())),
            ("Asked", incident.server.clone().unwrap_or_default()),
        ] {
            if !value.is_empty() {
                let _ = writeln!(out, "- {label}: {}", md(&value));
            }
        }
        if incident.notes.is_empty() {
            out.push_str("\nNo notes.\n");
            continue;
        }
        out.push_str(
            "\n| time (UTC) | channel | ticket | who | first response (UTC) | registrar | DNS provider | steps taken |\n\
             |---|---|---|---|---|---|---|---|\n",
        );
        for note in &incident.notes {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                utc(note.at),
                md(&note.channel),
                md(note.ticket.as_deref().unwrap_or("")),
                md(note.who.as_deref().unwrap_or("")),
                first_response(note),
                yes_no(note.registrar),
                yes_no(note.dns_provider),
                md(&note.text)
            );
        }
    }
    out
}

/// A CSV field: quoted when needed; text from DNS or people that a spreadsheet would take
/// for a formula gets a leading `'`.
fn field(text: &str, untrusted: bool) -> String {
    let guarded;
    let text = if untrusted && text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        guarded = format!("'{text}");
        guarded.as_str()
    } else {
        text
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

const CSV_HEADER: &str = "incident_id,domain,check,code,severity,state,opened_at_utc,resolved_at_utc,resolution_seconds,message,from,to,server,note_id,note_at_utc,channel,ticket,who,first_response_at_utc,first_response_seconds,registrar,dns_provider,text";

/// The CSV export: one row per note, an incident without notes on one row.
pub(crate) fn csv(incidents: &[IncidentRecord]) -> String {
    let mut out = format!("{CSV_HEADER}\r\n");
    let number = |n: Option<f64>| n.map(|n| format!("{n:.0}")).unwrap_or_default();
    for incident in incidents {
        let head = [
            incident.id.to_string(),
            field(&incident.domain, true),
            field(&incident.check, true),
            field(&incident.code, true),
            field(incident.severity.as_deref().unwrap_or(""), true),
            incident.state.to_owned(),
            utc(incident.opened_at),
            incident.resolved_at.map(utc).unwrap_or_default(),
            number(incident.resolution_seconds),
            field(&incident.message, true),
            field(&records(incident.from.as_ref()), true),
            field(&records(incident.to.as_ref()), true),
            field(incident.server.as_deref().unwrap_or(""), true),
        ]
        .join(",");
        let notes: Vec<Option<&StoredNote>> = if incident.notes.is_empty() {
            vec![None]
        } else {
            incident.notes.iter().map(Some).collect()
        };
        for note in notes {
            let tail = match note {
                None => ",".repeat(9),
                Some(note) => [
                    note.id.to_string(),
                    utc(note.at),
                    field(&note.channel, true),
                    field(note.ticket.as_deref().unwrap_or(""), true),
                    field(note.who.as_deref().unwrap_or(""), true),
                    note.first_response_at.map(utc).unwrap_or_default(),
                    number(note.first_response_seconds),
                    yes_no(note.registrar).to_owned(),
                    yes_no(note.dns_provider).to_owned(),
                    field(&note.text, true),
                ]
                .join(","),
            };
            let _ = write!(out, "{head},{tail}\r\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn incident(notes: Vec<StoredNote>) -> IncidentRecord {
        IncidentRecord {
            id: 7,
            domain: "a.example".into(),
            check: "mx".into(),
            code: "drift".into(),
            severity: Some("critical".into()),
            state: "resolved",
            message: "MX changed | <script>".into(),
            opened_at: 1_700_000_000.0,
            resolved_at: Some(1_700_003_600.0),
            resolution_seconds: Some(3600.0),
            from: Some(json!(["10 mx-a.a.example"])),
            to: Some(json!(["10 mx-b.a.example"])),
            server: Some("authoritative 192.0.2.1:53".into()),
            notes,
        }
    }

    fn note(text: &str) -> StoredNote {
        StoredNote {
            id: 3,
            incident_id: 7,
            at: 1_700_000_600.0,
            channel: "ticket".into(),
            ticket: Some("=HYPERLINK(\"x\")".into()),
            who: Some("王伟".into()),
            text: text.into(),
            first_response_at: Some(1_700_001_500.0),
            first_response_seconds: Some(1500.0),
            registrar: true,
            dns_provider: false,
        }
    }

    #[test]
    fn markdown_escapes_and_lists_notes() {
        let text = markdown(
            "a.example",
            &[incident(vec![note("called *the* registrar\nthen waited")])],
            SystemTime::UNIX_EPOCH,
        );
        assert!(text.starts_with("# Incidents of a.example\n\nExported 1970-01-01 00:00:00 UTC by maildrift: 1 incidents"), "{text}");
        assert!(
            text.contains("## Incident 7: mx drift (critical), resolved"),
            "{text}"
        );
        assert!(
            text.contains("- Resolved: 2023-11-14 23:13:20 UTC, after 1h 0m"),
            "{text}"
        );
        assert!(
            text.contains("- What: MX changed \\| &lt;script&gt;"),
            "{text}"
        );
        assert!(
            text.contains("- From: 10 mx-a.a.example\n- To: 10 mx-b.a.example"),
            "{text}"
        );
        assert!(text.contains(
            "| 2023-11-14 22:23:20 | ticket | =HYPERLINK(\"x\") | 王伟 | 2023-11-14 22:38:20 (25m after opening) | yes | no | called \\*the\\* registrar<br>then waited |"
        ), "{text}");
        assert!(
            markdown("a.example", &[incident(vec![])], SystemTime::UNIX_EPOCH)
                .contains("No notes.")
        );
    }

    #[test]
    fn csv_quotes_and_guards_formulas() {
        let text = csv(&[
            incident(vec![note("a, \"quoted\"\nline")]),
            incident(vec![]),
        ]);
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines[0], CSV_HEADER);
        assert!(lines[1].starts_with("7,a.example,mx,drift,critical,resolved,2023-11-14 22:13:20,2023-11-14 23:13:20,3600,MX changed | <script>,10 mx-a.a.example,10 mx-b.a.example,authoritative 192.0.2.1:53,3,2023-11-14 22:23:20,ticket,\"'=HYPERLINK(\"\"x\"\")\",王伟,2023-11-14 22:38:20,1500,yes,no,\"a, \"\"quoted\"\""), "{text}");
        // The quoted text spans a line break; the incident without notes is one row.
        assert!(text.contains("\nline\"\r\n7,a.example,"), "{text}");
        let last = text.trim_end().rsplit("\r\n").next().unwrap();
        assert!(last.ends_with(",,,,,,,,,"), "{last}");
        assert_eq!(last.matches(',').count(), CSV_HEADER.matches(',').count());
    }
}
