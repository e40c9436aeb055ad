//! What only the shared store does: two replicas of one shard write each event once; the
//! writer waits for a database that restarts (nothing acknowledged is lost) or is not there
//! yet at start-up, and counts every write its full queue drops meanwhile; the schema is
//! migrated once and a newer one refused; the password never shows.

use super::pg_server::{PgServer, binaries_or_skip};
use super::*;
use crate::config::SecretSource;
use crate::finding::Severity;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn server(test: &str) -> Option<PgServer> {
    let server = PgServer::start(&binaries_or_skip(test)?);
    server.create_database("maildrift");
    Some(server)
}

fn target(server: &PgServer) -> PgTarget {
    PgTarget::new(
        &server.url("maildrift"),
        Some(&SecretSource::File(server.password_file())),
    )
    .unwrap()
}

fn event(at: u64, kind: EventKind, code: Option<&str>, to: &str) -> Write {
    Write::Event(NewEvent {
        at: UNIX_EPOCH + Duration::from_secs(at),
        domain: "a.example".into(),
        check: CheckKind::Mx,
        kind,
        code: code.map(str::to_owned),
        severity: code.map(|_| Severity::Critical),
        message: format!("{kind:?}"),
        from: Some(json!(["10 mx.a.example."])),
        to: Some(json!([to])),
        server: None,
    })
}

fn failures(registry: &prometheus::Registry) -> f64 {
    registry
        .gather()
        .iter()
        .find(|f| f.name() == "maildrift_state_write_failures_total")
        .map(|f| f.get_metric()[0].get_counter().get_value())
        .unwrap()
}

fn count(server: &PgServer, sql: &str) -> i64 {
    server.query_i64("maildrift", sql)
}

#[test]
fn an_ha_pair_writes_each_event_once() {
    let Some(server) = server("an_ha_pair_writes_each_event_once") else {
        return;
    };
    let (a, b) = (
        Arc::new(Store::open_postgres(target(&server)).unwrap()),
        Arc::new(Store::open_postgres(target(&server)).unwrap()),
    );
    // What both replicas see of one drift, a second apart, written concurrently.
    let story = |offset: u64| {
        vec![
            event(
                100 + offset,
                EventKind::BaselineLearned,
                None,
                "10 mx.a.example.",
            ),
            event(
                200 + offset,
                EventKind::Changed,
                None,
                "10 mx.evil.example.",
            ),
            event(
                200 + offset,
                EventKind::Opened,
                Some("drift"),
                "10 mx.evil.example.",
            ),
            event(300 + offset, EventKind::Changed, None, "10 mx.a.example."),
            event(
                300 + offset,
                EventKind::Resolved,
                Some("drift"),
                "10 mx.a.example.",
            ),
        ]
    };
    let threads: Vec<_> = [(a.clone(), 0), (b.clone(), 1)]
        .into_iter()
        .map(|(store, offset)| {
            std::thread::spawn(move || {
                for write in story(offset) {
                    store.write(&[write]).unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let events = a
        .events(&EventQuery {
            limit: 100,
            ..EventQuery::default()
        })
        .unwrap();
    let kinds: Vec<&str> = events.iter().rev().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "baseline_learned").count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "opened").count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "resolved").count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "changed").count(),
        2,
        "{kinds:?}"
    );
    let resolved = events.iter().find(|e| e.kind == "resolved").unwrap();
    let opened = events.iter().find(|e| e.kind == "opened").unwrap();
    assert_eq!(resolved.incident_id, Some(opened.id));
    assert!(b.incidents(None).unwrap().is_empty());
    // A later, real change of the same records (past the replicas' window) is recorded
    // again, and so is one instance's own repeat within it.
    b.write(&[event(4000, EventKind::Changed, None, "10 mx.evil.example.")])
        .unwrap();
    assert_eq!(
        count(
            &server,
            "SELECT count(*) FROM events WHERE kind = 'changed'"
        ),
        3
    );
}

#[test]
fn a_learned_baseline_never_replaces_a_stored_one_an_accepted_one_does() {
    let Some(server) = server("a_learned_baseline_never_replaces_a_stored_one") else {
        return;
    };
    let store = Store::open_postgres(target(&server)).unwrap();
    let baseline = |values: &str, accepted| Write::Baseline {
        domain: "a.example".into(),
        check: CheckKind::Mx,
        values: vec![values.into()],
        at: SystemTime::now(),
        accepted,
    };
    let stored = || store.load_domain("a.example").unwrap().baselines[&CheckKind::Mx].clone();
    store.write(&[baseline("10 mx.a.example.", false)]).unwrap();
    store
        .write(&[baseline("10 mx.evil.example.", false)])
        .unwrap();
    assert_eq!(stored(), ["10 mx.a.example."]);
    store
        .write(&[baseline("10 mx.new.example.", true)])
        .unwrap();
    assert_eq!(stored(), ["10 mx.new.example."]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_database_loses_nothing_acknowledged_and_the_writer_reconnects() {
    let Some(mut server) = server("a_restarted_database_loses_nothing_acknowledged") else {
        return;
    };
    let registry = prometheus::Registry::new();
    let service =
        StateService::open_postgres(target(&server), Retention::default(), &registry).unwrap();
    let write = |i: u64| Write::CheckState {
        domain: format!("d{i}.example"),
        check: CheckKind::Mx,
        state_json: format!("{{\"i\":{i}}}"),
        at: SystemTime::now(),
    };
    for i in 0..500 {
        service.writer.send(write(i));
    }
    assert!(service.flush().await, "acknowledged");
    // The server stops (fast shutdown) while writes keep coming.
    let stopper = std::thread::spawn(move || {
        server.stop();
        server
    });
    for i in 500..1500 {
        service.writer.send(write(i));
        if i % 100 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let mut server = tokio::task::spawn_blocking(move || stopper.join().unwrap())
        .await
        .unwrap();
    for i in 1500..2000 {
        service.writer.send(write(i));
    }
    server.start_again();
    // The writer reconnects on its own (backoff at most 5 s).
    let deadline = Instant::now() + Duration::from_secs(30);
    while !service.flush().await {
        assert!(Instant::now() < deadline, "the writer never reconnected");
    }
    assert_eq!(count(&server, "SELECT count(*) FROM check_states"), 2000);
    assert_eq!(failures(&registry), 0.0, "nothing was lost");
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_a_full_queue_drops_while_the_database_is_down_are_counted_one_for_one() {
    let Some(mut server) = server("writes_a_full_queue_drops_are_counted_one_for_one") else {
        return;
    };
    server.stop();
    let registry = prometheus::Registry::new();
    // A queue of 8: the channel holds 8 and the writer keeps at most 8 pending.
    let options = super::writer::WriterOptions {
        queue: 8,
        ..Default::default()
    };
    let store = Arc::new(Store::postgres_unconnected(target(&server)));
    let service = StateService::start_postgres(store, target(&server), options, &registry).unwrap();
    let sent = 200;
    for i in 0..sent {
        service.writer.send(Write::CheckState {
            domain: format!("d{i}.example"),
            check: CheckKind::Mx,
            state_json: "{}".into(),
            at: SystemTime::now(),
        });
    }
    server.start_again();
    // Reconnected once a flush finds everything before it committed (bounded; a flush the
    // full channel refuses, or one answered for writes the writer dropped, is tried again
    // after a short poll).
    let deadline = Instant::now() + Duration::from_secs(30);
    while !service.flush().await {
        assert!(Instant::now() < deadline, "the writer never reconnected");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let stored = count(&server, "SELECT count(*) FROM check_states");
    let lost = failures(&registry);
    assert!(
        (1..=16).contains(&stored),
        "what the queue held is written, no more: {stored}"
    );
    assert_eq!(
        stored as f64 + lost,
        f64::from(sent),
        "every write is either stored or counted ({stored} stored, {lost} lost)"
    );
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_down_at_start_up_is_retried() {
    let Some(mut server) = server("a_database_down_at_start_up_is_retried") else {
        return;
    };
    server.stop();
    let registry = prometheus::Registry::new();
    let service = StateService::open_postgres(target(&server), Retention::default(), &registry)
        .expect("an unreachable database does not stop the start");
    let store = service.store.clone().unwrap();
    let error = store.load_domain("a.example").unwrap_err().to_string();
    let shown = format!(
        "postgres://maildrift@127.0.0.1:{}/maildrift",
        server.addr().port()
    );
    assert!(error.contains(&shown), "{error}");
    assert!(!error.contains(server.password()), "{error}");
    service.writer.send(event(
        100,
        EventKind::BaselineLearned,
        None,
        "10 mx.a.example.",
    ));
    assert!(
        !service.flush().await,
        "not written while the database is down"
    );
    server.start_again();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !service.flush().await {
        assert!(Instant::now() < deadline, "the writer never connected");
    }
    assert_eq!(count(&server, "SELECT count(*) FROM events"), 1);
    assert_eq!(failures(&registry), 0.0);
    // Reads connect on their own too.
    assert!(store.load_domain("a.example").is_ok());
    service.stop().await;
}

#[test]
fn the_schema_is_migrated_once_and_a_newer_one_refused() {
    let Some(server) = server("the_schema_is_migrated_once_and_a_newer_one_refused") else {
        return;
    };
    // Replicas starting together.
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let target = target(&server);
            std::thread::spawn(move || Store::open_postgres(target).map(|_| ()))
        })
        .collect();
    for thread in threads {
        thread.join().unwrap().unwrap();
    }
    assert_eq!(count(&server, "SELECT count(*) FROM maildrift_schema"), 1);
    server.execute(
        "maildrift",
        "UPDATE maildrift_schema SET version = version + 1",
    );
    let error = Store::open_postgres(target(&server))
        .err()
        .expect("refused");
    assert!(error.is_fatal(), "{error}");
    assert!(
        error
            .to_string()
            .contains("newer than this maildrift knows"),
        "{error}"
    );
}

#[test]
fn the_password_never_shows() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    std::fs::write(&file, "s3cret-pw\n").unwrap();
    let target = PgTarget::new(
        "postgres://maildrift@db.internal:6432/fleet",
        Some(&SecretSource::File(file)),
    )
    .unwrap();
    assert_eq!(
        target.to_string(),
        "postgres://maildrift@db.internal:6432/fleet"
    );
    assert_eq!(format!("{target:?}"), target.to_string());
    let error = PgTarget::new("postgres://u:s3cret-pw@db/x", None).unwrap_err();
    assert!(!error.to_string().contains("s3cret"), "{error}");
    let missing = SecretSource::File(dir.path().join("absent"));
    let error = PgTarget::new("postgres://u@db/x", Some(&missing)).unwrap_err();
    assert!(
        error.to_string().contains("cannot read the password file"),
        "{error}"
    );
}
