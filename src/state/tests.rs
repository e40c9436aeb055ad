//! Store tests: events and incidents round-trip, resolution time, pagination, retention,
//! corrupt files refused untouched, and a failing disk counted without stopping the writer.
//! The tests of what the store answers run on both backends ([`each_backend`]): SQLite in a
//! temporary directory, then PostgreSQL on a server of their own (skipped, with a note, when
//! PostgreSQL is not installed; a failure under `CI=true`).

use super::pg_server::{PgServer, binaries_or_skip};
use super::store::StoredDomain;
use super::writer::WriterOptions;
use super::*;
use crate::finding::Severity;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// Where one run of a test keeps its store.
enum TestDb {
    /// A SQLite file in this directory.
    Sqlite(tempfile::TempDir),
    /// A database of its own on a test server.
    Postgres(PgServer),
}

impl TestDb {
    /// Opens the store (again: a new connection, as after a restart).
    fn open(&self) -> Store {
        match self {
            TestDb::Sqlite(dir) => Store::open(dir.path()).unwrap(),
            TestDb::Postgres(server) => {
                let target = PgTarget::new(
                    &server.url("maildrift"),
                    Some(&crate::config::SecretSource::File(server.password_file())),
                )
                .unwrap();
                Store::open_postgres(target).unwrap()
            }
        }
    }

    /// Rows in `table`.
    fn count(&self, store: &Store, table: &str) -> i64 {
        let sql = format!("SELECT count(*) FROM {table}");
        match self {
            TestDb::Sqlite(_) => store
                .with_conn(|c| c.query_row(&sql, [], |r| r.get(0)))
                .unwrap(),
            TestDb::Postgres(server) => server.query_i64("maildrift", &sql),
        }
    }
}

/// Runs `body` on SQLite, then on PostgreSQL.
fn each_backend(test: &str, body: impl Fn(&TestDb)) {
    body(&TestDb::Sqlite(tempfile::tempdir().unwrap()));
    if let Some(bin) = binaries_or_skip(test) {
        let server = PgServer::start(&bin);
        server.create_database("maildrift");
        body(&TestDb::Postgres(server));
    }
}

fn event(at: u64, domain: &str, kind: EventKind, code: Option<&str>) -> NewEvent {
    NewEvent {
        at: UNIX_EPOCH + Duration::from_secs(at),
        domain: domain.to_owned(),
        check: CheckKind::Mx,
        kind,
        code: code.map(str::to_owned),
        severity: code.map(|_| Severity::Critical),
        message: format!("{kind:?} at {at}"),
        from: Some(json!(["a.example"])),
        to: Some(json!(["b.example"])),
        server: Some("127.0.0.1:53".into()),
    }
}

#[test]
fn events_incidents_and_resolution_time() {
    each_backend("events_incidents_and_resolution_time", |db| {
        events_incidents_and_resolution_time_on(db)
    });
}

fn events_incidents_and_resolution_time_on(db: &TestDb) {
    let store = db.open();
    let ids = store
        .write(&[
            Write::Event(event(100, "a.example", EventKind::Opened, Some("drift"))),
            Write::Event(event(
                110,
                "b.example",
                EventKind::Opened,
                Some("mx_missing"),
            )),
        ])
        .unwrap();
    assert_eq!(ids.len(), 2);
    let open = store.incidents(None).unwrap();
    assert_eq!(open.len(), 2);
    assert_eq!(open[0].domain, "a.example");
    assert_eq!(open[0].opened_at, 100.0);
    assert_eq!(store.incidents(Some("b.example")).unwrap().len(), 1);

    store
        .write(&[Write::Event(event(
            175,
            "a.example",
            EventKind::Resolved,
            Some("drift"),
        ))])
        .unwrap();
    let open = store.incidents(None).unwrap();
    assert_eq!(open.len(), 1, "{open:?}");
    let events = store
        .events(&EventQuery {
            domain: Some("a.example".into()),
            limit: 10,
            ..EventQuery::default()
        })
        .unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].kind(), Some(EventKind::Resolved));
    assert_eq!(events[0].resolution_seconds, Some(75.0));
    assert_eq!(events[0].from, Some(json!(["a.example"])));
    assert_eq!(events[1].resolution_seconds, None);
}

#[test]
fn pagination_filters_and_retention() {
    each_backend(
        "pagination_filters_and_retention",
        pagination_filters_and_retention_on,
    );
}

fn pagination_filters_and_retention_on(db: &TestDb) {
    let store = db.open();
    // Thirty successive changes, each from the previous records to new ones (the same
    // change twice in a row is one change seen by both replicas of an HA pair).
    let writes: Vec<Write> = (0..30)
        .map(|i| {
            let mut change = event(1000 + i, "a.example", EventKind::Changed, None);
            change.from = Some(json!([format!("mx{i}.example")]));
            change.to = Some(json!([format!("mx{}.example", i + 1)]));
            Write::Event(change)
        })
        .collect();
    store.write(&writes).unwrap();
    let page = |before, since| {
        store
            .events(&EventQuery {
                check: Some(CheckKind::Mx),
                before,
                since,
                limit: 10,
                ..EventQuery::default()
            })
            .unwrap()
    };
    let first = page(None, None);
    assert_eq!(first.len(), 10);
    assert_eq!(first[0].at, 1029.0);
    let second = page(Some(first[9].id), None);
    assert_eq!(second[0].id, first[9].id - 1);
    let recent = page(None, Some(UNIX_EPOCH + Duration::from_secs(1025)));
    assert_eq!(recent.len(), 5);
    let spf_only = store
        .events(&EventQuery {
            check: Some(CheckKind::Spf),
            limit: 10,
            ..EventQuery::default()
        })
        .unwrap();
    assert!(spf_only.is_empty());

    // Age: everything before 1010 goes; rows: then only the newest 5 stay.
    let now = UNIX_EPOCH + Duration::from_secs(1010 + 86_400);
    let by_age = Retention {
        max_age: Some(Duration::from_secs(86_400)),
        max_events: None,
    };
    assert_eq!(store.enforce_retention(by_age, now).unwrap(), 10);
    let by_rows = Retention {
        max_age: None,
        max_events: Some(5),
    };
    assert_eq!(store.enforce_retention(by_rows, now).unwrap(), 15);
    let left = page(None, None);
    assert_eq!(left.len(), 5);
    assert_eq!(left[4].at, 1025.0);
}

#[test]
fn baselines_and_check_states_survive_reopening() {
    each_backend(
        "baselines_and_check_states_survive_reopening",
        baselines_and_check_states_survive_reopening_on,
    );
}

fn baselines_and_check_states_survive_reopening_on(db: &TestDb) {
    {
        let store = db.open();
        store
            .write(&[
                Write::Baseline {
                    domain: "a.example".into(),
                    check: CheckKind::Mx,
                    values: vec!["10 mx.a.example".into()],
                    at: SystemTime::now(),
                    accepted: false,
                },
                Write::CheckState {
                    domain: "a.example".into(),
                    check: CheckKind::Spf,
                    state_json: "{\"x\":1}".into(),
                    at: SystemTime::now(),
                },
            ])
            .unwrap();
    }
    let store = db.open();
    let stored = store.load_domain("a.example").unwrap();
    assert_eq!(
        stored.baselines[&CheckKind::Mx],
        vec!["10 mx.a.example".to_owned()]
    );
    assert_eq!(stored.checks[&CheckKind::Spf], "{\"x\":1}");
    assert_eq!(
        store.load_domain("b.example").unwrap(),
        StoredDomain::default()
    );
}

#[test]
fn a_corrupt_database_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    let garbage =
        b"this is not a database at all, but it is long enough to look like one".repeat(100);
    std::fs::write(&path, &garbage).unwrap();
    let err = Store::open(dir.path()).err().expect("refused");
    assert!(err.is_fatal(), "{err}");
    assert!(err.to_string().contains("corrupt"), "{err}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), garbage);

    // A real database with a damaged page.
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        let writes: Vec<Write> = (0..2000)
            .map(|i| Write::Event(event(i, "a.example", EventKind::Changed, None)))
            .collect();
        store.write(&writes).unwrap();
        store
            .with_conn(|c| c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)"))
            .unwrap();
    }
    let path = dir.path().join(DB_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    let page = 4096;
    assert!(bytes.len() > 8 * page);
    for byte in &mut bytes[3 * page..3 * page + 200] {
        *byte = 0xA5;
    }
    std::fs::write(&path, &bytes).unwrap();
    let err = Store::open(dir.path()).err().expect("refused");
    assert!(err.is_fatal(), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "file modified");
}

#[test]
fn an_unusable_directory_is_unavailable_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, "x").unwrap();
    let err = Store::open(&file.join("state")).err().expect("refused");
    assert!(!err.is_fatal());
    assert!(err.to_string().contains("unavailable"), "{err}");
}

#[tokio::test]
async fn a_full_disk_is_counted_and_the_writer_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let registry = prometheus::Registry::new();
    // Cap the writer's connection a few pages above the current size: SQLite then answers
    // "database or disk is full" (SQLITE_FULL), exactly as on a full file system.
    let conn = store.connect().unwrap();
    let pages: i64 = conn
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    conn.execute_batch(&format!("PRAGMA max_page_count = {}", pages + 4))
        .unwrap();
    let service =
        StateService::start_on(store.clone(), conn, WriterOptions::default(), &registry).unwrap();
    let failures = || {
        registry
            .gather()
            .iter()
            .find(|f| f.name() == "maildrift_state_write_failures_total")
            .map(|f| f.get_metric()[0].get_counter().get_value())
            .unwrap()
    };
    let small = || Write::Event(event(1, "a.example", EventKind::Changed, None));
    service.writer.send(small());
    assert!(service.flush().await);
    service.writer.send(Write::CheckState {
        domain: "a.example".into(),
        check: CheckKind::Mx,
        state_json: "x".repeat(256 * 1024),
        at: SystemTime::now(),
    });
    assert!(
        !service.flush().await,
        "a full disk must not be reported as written"
    );
    assert_eq!(failures(), 1.0, "the lost write is counted");
    // The writer is still there and writes again once there is room.
    service.writer.send(small());
    assert!(service.flush().await);
    assert_eq!(failures(), 1.0);
    let written = store
        .events(&EventQuery {
            limit: 10,
            ..EventQuery::default()
        })
        .unwrap();
    assert_eq!(written.len(), 2);
    service.stop().await;
}

fn note(incident_id: i64, at: u64, text: &str) -> Write {
    Write::Note(NewNote {
        incident_id,
        at: UNIX_EPOCH + Duration::from_secs(at),
        channel: Channel::Ticket,
        ticket: Some("T-1".into()),
        who: Some("alice".into()),
        text: text.into(),
        first_response_at: Some(UNIX_EPOCH + Duration::from_secs(130)),
        registrar: false,
        dns_provider: true,
    })
}

#[test]
fn incidents_carry_notes_open_and_resolved() {
    each_backend(
        "incidents_carry_notes_open_and_resolved",
        incidents_carry_notes_open_and_resolved_on,
    );
}

fn incidents_carry_notes_open_and_resolved_on(db: &TestDb) {
    let store = db.open();
    let ids = store
        .write(&[
            Write::Event(event(100, "a.example", EventKind::Opened, Some("drift"))),
            Write::Event(event(105, "a.example", EventKind::Changed, None)),
        ])
        .unwrap();
    let (opened, changed) = (ids[0], ids[1]);
    assert_eq!(store.incidents(None).unwrap()[0].id, opened);
    store
        .write(&[note(opened, 120, "called the provider")])
        .unwrap();
    let open = store.incident(opened).unwrap().expect("the incident");
    assert_eq!(open.state, "open");
    assert_eq!((open.resolved_at, open.resolution_seconds), (None, None));
    assert_eq!(open.notes.len(), 1);
    assert_eq!(open.notes[0].text, "called the provider");
    assert_eq!(open.notes[0].first_response_seconds, Some(30.0));
    assert!(open.notes[0].dns_provider && !open.notes[0].registrar);
    assert_eq!(store.incident(changed).unwrap(), None, "not an incident");
    assert_eq!(store.incident(9999).unwrap(), None);

    // Resolved: the resolved event names the incident; notes can still be added.
    let ids = store
        .write(&[Write::Event(event(
            160,
            "a.example",
            EventKind::Resolved,
            Some("drift"),
        ))])
        .unwrap();
    let events = store
        .events(&EventQuery {
            domain: Some("a.example".into()),
            limit: 10,
            ..EventQuery::default()
        })
        .unwrap();
    assert_eq!(events[0].id, ids[0]);
    assert_eq!(events[0].incident_id, Some(opened));
    assert_eq!(events[1].incident_id, None, "a change is no incident");
    store.write(&[note(opened, 170, "post-mortem")]).unwrap();
    let resolved = store.incident(opened).unwrap().unwrap();
    assert_eq!(resolved.state, "resolved");
    assert_eq!(resolved.resolved_at, Some(160.0));
    assert_eq!(resolved.resolution_seconds, Some(60.0));
    assert_eq!(resolved.notes.len(), 2);
    // A second incident of the same code is another incident.
    let again = store
        .write(&[Write::Event(event(
            200,
            "a.example",
            EventKind::Opened,
            Some("drift"),
        ))])
        .unwrap()[0];
    let listed = store.domain_incidents("a.example", None, 10).unwrap();
    assert_eq!(
        listed.iter().map(|i| i.id).collect::<Vec<_>>(),
        [again, opened]
    );
    assert_eq!(listed[0].state, "open");
    let since = UNIX_EPOCH + Duration::from_secs(150);
    assert_eq!(
        store
            .domain_incidents("a.example", Some(since), 10)
            .unwrap()
            .len(),
        1
    );
    let notes = store
        .domain_notes("a.example", UNIX_EPOCH + Duration::from_secs(150))
        .unwrap();
    assert_eq!(notes.len(), 1);
    assert_eq!(
        (notes[0].0.as_str(), notes[0].1.text.as_str()),
        ("mx", "post-mortem")
    );
    assert_eq!(store.first_event_at("a.example").unwrap(), Some(100.0));
    assert_eq!(store.first_event_at("b.example").unwrap(), None);
    // Opened and resolved since 150, newest first.
    assert_eq!(
        store.incident_changes(since, 10, None).unwrap(),
        [(200.0, true), (160.0, false)]
    );

    // Retention removes the old incident's notes with its events; the open one keeps its.
    store.write(&[note(again, 210, "still open")]).unwrap();
    let retention = Retention {
        max_age: Some(Duration::from_secs(50)),
        max_events: None,
    };
    store
        .enforce_retention(retention, UNIX_EPOCH + Duration::from_secs(230))
        .unwrap();
    assert_eq!(store.incident(opened).unwrap(), None);
    let kept = store.incident(again).unwrap().unwrap();
    assert_eq!(kept.notes.len(), 1);
    assert_eq!(db.count(&store, "incident_notes"), 1);
}

#[test]
fn open_summary_counts_what_wants_attention() {
    each_backend(
        "open_summary_counts_what_wants_attention",
        open_summary_counts_what_wants_attention_on,
    );
}

fn open_summary_counts_what_wants_attention_on(db: &TestDb) {
    let store = db.open();
    let mut info = event(90, "a.example", EventKind::Opened, Some("tls_rpt_missing"));
    info.severity = Some(Severity::Info);
    store
        .write(&[
            Write::Event(info),
            Write::Event(event(100, "a.example", EventKind::Opened, Some("drift"))),
            Write::Event(event(
                110,
                "a.example",
                EventKind::Opened,
                Some("mx_missing"),
            )),
            Write::Event(event(120, "b.example", EventKind::Opened, Some("drift"))),
        ])
        .unwrap();
    let summary = store.open_summary(2, None).unwrap();
    assert_eq!(summary.count, 3, "info is left out");
    let oldest: Vec<(&str, f64)> = summary
        .oldest
        .iter()
        .map(|i| (i.code.as_str(), i.opened_at))
        .collect();
    assert_eq!(oldest, [("drift", 100.0), ("mx_missing", 110.0)]);
    let mut since = summary.since.clone();
    since.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        since,
        [
            ("a.example".to_owned(), "mx".to_owned(), 100.0),
            ("b.example".to_owned(), "mx".to_owned(), 120.0)
        ]
    );
}

#[test]
fn the_fleet_reads_see_every_domains_check_states() {
    each_backend(
        "the_fleet_reads_see_every_domains_check_states",
        the_fleet_reads_see_every_domains_check_states_on,
    );
}

/// A stored check state as the monitor writes it (its `CheckStatus` JSON, in the fields the
/// summary reads).
fn check_state(domain: &str, check: CheckKind, at: u64, json: serde_json::Value) -> Write {
    Write::CheckState {
        domain: domain.into(),
        check,
        state_json: json.to_string(),
        at: UNIX_EPOCH + Duration::from_secs(at),
    }
}

fn the_fleet_reads_see_every_domains_check_states_on(db: &TestDb) {
    let store = db.open();
    let finding =
        |severity: &str| json!({"code": "x", "severity": severity, "message": "m", "evidence": {}});
    store
        .write(&[
            check_state(
                "a.example",
                CheckKind::Mx,
                100,
                json!({"success": true, "drift": true, "findings": [finding("info"), finding("critical")], "records": [], "last_checked": 100.0}),
            ),
            check_state(
                "a.example",
                CheckKind::Spf,
                101,
                json!({"success": true, "drift": false, "findings": [finding("warning")], "records": [], "last_checked": 101.0}),
            ),
            check_state(
                "b.example",
                CheckKind::Mx,
                102,
                json!({"success": false, "drift": false, "findings": [], "records": [], "error": "timeout", "last_checked": 102.0}),
            ),
            // Without findings or a time: nothing open.
            Write::CheckState {
                domain: "b.example".into(),
                check: CheckKind::Dkim,
                state_json: json!({"success": true, "drift": false, "findings": [], "records": []}).to_string(),
                at: UNIX_EPOCH + Duration::from_secs(103),
            },
        ])
        .unwrap();
    let states = store.all_check_states().unwrap();
    assert_eq!(
        states.keys().collect::<Vec<_>>(),
        ["a.example", "b.example"]
    );
    assert_eq!(
        states["a.example"].keys().copied().collect::<Vec<_>>(),
        [CheckKind::Mx, CheckKind::Spf]
    );
    let spf: serde_json::Value =
        serde_json::from_str(&states["a.example"][&CheckKind::Spf]).unwrap();
    assert_eq!(spf["findings"][0]["severity"], "warning");
    assert_eq!(states["b.example"].len(), 2);

    let mut summaries = store.check_summaries().unwrap();
    summaries.sort_by(|a, b| (&a.domain, &a.check).cmp(&(&b.domain, &b.check)));
    let summed: Vec<(&str, &str, bool, bool, bool, bool, f64)> = summaries
        .iter()
        .map(|s| {
            (
                s.domain.as_str(),
                s.check.as_str(),
                s.success,
                s.drift,
                s.critical,
                s.warning,
                s.stored_at,
            )
        })
        .collect();
    assert_eq!(
        summed,
        [
            ("a.example", "mx", true, true, true, false, 100.0),
            ("a.example", "spf", true, false, false, true, 101.0),
            ("b.example", "dkim", true, false, false, false, 103.0),
            ("b.example", "mx", false, false, false, false, 102.0),
        ]
    );

    // Open incidents of some domains only: honoured by the shared store, ignored by
    // SQLite (it holds only its instance's domains).
    store
        .write(&[
            Write::Event(event(100, "a.example", EventKind::Opened, Some("drift"))),
            Write::Event(event(110, "b.example", EventKind::Opened, Some("drift"))),
        ])
        .unwrap();
    let only_b = ["b.example".to_owned()];
    let summary = store.open_summary(10, Some(&only_b)).unwrap();
    let changes = store
        .incident_changes(UNIX_EPOCH, 10, Some(&only_b))
        .unwrap();
    let everything = store.open_summary(10, None).unwrap();
    assert_eq!(everything.count, 2);
    assert_eq!(
        store.incident_changes(UNIX_EPOCH, 10, None).unwrap().len(),
        2
    );
    match db {
        TestDb::Postgres(_) => {
            assert_eq!(summary.count, 1);
            assert_eq!(summary.oldest[0].domain, "b.example");
            assert_eq!(summary.since.len(), 1);
            assert_eq!(changes, [(110.0, true)]);
        }
        TestDb::Sqlite(_) => {
            assert_eq!((summary.count, &summary.oldest), (2, &everything.oldest));
            assert_eq!(summary.since.len(), 2);
            assert_eq!(changes.len(), 2);
        }
    }
}

#[test]
fn the_overview_reads_through_the_partial_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for (sql, index) in [
        (super::notes::INCIDENT_CHANGES, "events_attention"),
        (super::queries::OPEN_SINCE, "incidents_attention"),
    ] {
        let plan: Vec<String> = store
            .with_conn(|c| {
                // Parameters left unbound: the plan does not depend on their values.
                let mut statement = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                let mut rows = statement.raw_query();
                let mut plan = Vec::new();
                while let Some(row) = rows.next()? {
                    plan.push(row.get::<_, String>(3)?);
                }
                Ok(plan)
            })
            .unwrap();
        assert!(
            plan.iter().any(|step| step.contains(index)),
            "{sql}: {plan:?}"
        );
    }
}
