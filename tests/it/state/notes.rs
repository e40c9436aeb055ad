//! Incident records end to end: a drift opens an incident whose id the domain's JSON
//! carries; notes are added through the API and the CLI (to the running daemon, and into
//! the store when it is down), to open and resolved incidents, and refused with a reason
//! when invalid; the Markdown and CSV exports list them.

use super::{BIN, StateDaemon, config, learned_zone, ready_daemon, start};
use crate::harness::{request, request_body, wait_until};
use serde_json::{Value, json};
use std::time::Duration;

/// The id of the learned domain's open MX drift incident, if any.
async fn open_drift(addr: std::net::SocketAddr) -> Option<i64> {
    let response = request(addr, "GET", "/api/v1/domains/learned.example").await;
    let domain: Value = serde_json::from_str(&response.body).ok()?;
    domain["incidents"]
        .as_array()?
        .iter()
        .find(|i| i["check"] == "mx" && i["code"] == "drift")
        .and_then(|i| i["id"].as_i64())
}

/// Waits for the learned domain's MX drift and returns the id of the incident it opened.
pub async fn drift_incident(daemon: &StateDaemon) -> i64 {
    daemon.wait_drift(1.0).await;
    let found = wait_until(Duration::from_secs(10), || async {
        open_drift(daemon.addr).await.is_some()
    })
    .await;
    assert!(found, "no open mx drift incident with an id");
    open_drift(daemon.addr).await.unwrap()
}

async fn post_json(daemon: &StateDaemon, path: &str, body: &Value) -> (u16, Value) {
    let response = request_body(
        daemon.addr,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
    .await;
    let value = serde_json::from_str(&response.body).unwrap_or(json!({ "raw": response.body }));
    (response.status, value)
}

pub async fn cli_note(args: &[&str], url: &str, state_dir: &std::path::Path) -> (i32, String) {
    let output = tokio::process::Command::new(BIN)
        .args(["incident", "note"])
        .args(args)
        .args(["--url", url])
        .arg("--state-dir")
        .arg(state_dir)
        .output()
        .await
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

#[tokio::test]
async fn notes_through_the_api_and_the_cli_and_the_exports() {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("data");
    let (dns, daemon) = ready_daemon(dir.path()).await;
    dns.set_zone(&learned_zone("mx-b")).unwrap();
    let id = drift_incident(&daemon).await;
    // The events name their incident too.
    let events = daemon.events("domain=learned.example&check=mx").await;
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "opened" && e["incident_id"] == id),
        "{events:?}"
    );

    // Through the API.
    let (status, body) = post_json(
        &daemon,
        &format!("/api/v1/incidents/{id}/notes"),
        &json!({
            "channel": "ticket", "ticket": "ALI-20240501-17", "who": "王伟",
            "text": "Opened a ticket with the DNS provider: MX changed without our request.",
            "first_response_at": 1, "dns_provider": true,
        }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["note"]["ticket"], "ALI-20240501-17");
    assert_eq!(body["note"]["who"], "王伟");
    assert_eq!(body["note"]["channel"], "ticket");
    assert_eq!(body["note"]["dns_provider"], true);
    assert_eq!(body["note"]["registrar"], false);
    assert_eq!(body["incident"]["id"], id);
    assert_eq!(body["incident"]["state"], "open");
    let incident = daemon.json(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(incident["domain"], "learned.example");
    assert_eq!(incident["code"], "drift");
    assert_eq!(incident["from"], json!(["10 mx-a.learned.example"]));
    assert_eq!(incident["to"], json!(["10 mx-b.learned.example"]));
    assert_eq!(incident["notes"].as_array().unwrap().len(), 1);
    let opened_at = incident["opened_at"].as_f64().unwrap();
    assert_eq!(
        incident["notes"][0]["first_response_seconds"].as_f64(),
        Some(1.0 - opened_at)
    );

    // Refusals, each with its reason.
    let notes = format!("/api/v1/incidents/{id}/notes");
    for (body, status, needle) in [
        (json!({"channel": "fax", "text": "x"}), 400, "\"fax\""),
        (json!({"channel": "phone", "text": " "}), 400, "steps taken"),
        (
            json!({"channel": "phone", "text": "x", "colour": 1}),
            422,
            "colour",
        ),
        (
            json!({"channel": "phone", "text": "x", "first_response_at": "soon"}),
            400,
            "\"soon\"",
        ),
    ] {
        let (got, answer) = post_json(&daemon, &notes, &body).await;
        assert_eq!(got, status, "{body}: {answer}");
        let message = answer["error"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{answer}");
    }
    let (got, answer) = post_json(
        &daemon,
        "/api/v1/incidents/999999/notes",
        &json!({"channel": "phone", "text": "x"}),
    )
    .await;
    assert_eq!(got, 404, "{answer}");
    assert_eq!(
        request(daemon.addr, "GET", "/api/v1/incidents/abc")
            .await
            .status,
        400
    );
    assert_eq!(
        request(daemon.addr, "GET", "/api/v1/incidents/999999")
            .await
            .status,
        404
    );
    let huge = json!({"channel": "phone", "text": "x".repeat(20_000)}).to_string();
    let response = request_body(
        daemon.addr,
        "POST",
        &notes,
        &[("Content-Type", "application/json")],
        huge.as_bytes(),
    )
    .await;
    assert_eq!(response.status, 413, "{}", response.body);
    let response = request_body(daemon.addr, "POST", &notes, &[], b"{}").await;
    assert_eq!(response.status, 415, "{}", response.body);

    // Through the CLI, to the running daemon.
    let url = format!("http://{}", daemon.addr);
    let (code, output) = cli_note(
        &[
            &id.to_string(),
            "--channel",
            "phone",
            "--ticket",
            "T-2",
            "--text",
            "Called the registrar; the account was taken over.",
            "--registrar",
            "--first-response-at",
            "2024-05-01 10:30 +08:00",
        ],
        &url,
        &dir.path().join("elsewhere"),
    )
    .await;
    assert_eq!(code, 0, "{output}");
    assert!(
        output.contains(&format!(
            "added to incident {id} (learned.example mx drift, open)"
        )),
        "{output}"
    );
    assert!(output.contains("by the daemon at"), "{output}");
    assert!(
        !dir.path().join("elsewhere").exists(),
        "the CLI opened a store"
    );
    let (code, output) = cli_note(
        &["999999", "--channel", "phone", "--text", "x"],
        &url,
        &state_dir,
    )
    .await;
    assert_eq!(code, 1, "{output}");
    assert!(output.contains(": 404"), "{output}");
    let (code, output) = cli_note(
        &[&id.to_string(), "--channel", "fax", "--text", "x"],
        &url,
        &state_dir,
    )
    .await;
    assert_eq!(code, 2, "{output}");

    // Resolved: still takes notes.
    dns.set_zone(&learned_zone("mx-a")).unwrap();
    daemon.wait_drift(0.0).await;
    let resolved = wait_until(Duration::from_secs(10), || async {
        daemon.json(&format!("/api/v1/incidents/{id}")).await["state"] == "resolved"
    })
    .await;
    assert!(resolved, "the incident did not resolve");
    let (status, body) = post_json(
        &daemon,
        &notes,
        &json!({"channel": "chat", "text": "Post-mortem: enable registry lock."}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["incident"]["state"], "resolved");
    assert_eq!(body["incident"]["notes"].as_array().unwrap().len(), 3);

    // The exports.
    let markdown = request(
        daemon.addr,
        "GET",
        "/api/v1/domains/learned.example/timeline.md",
    )
    .await;
    assert_eq!(markdown.status, 200);
    assert!(
        markdown
            .headers
            .to_ascii_lowercase()
            .contains("content-type: text/markdown"),
        "{}",
        markdown.headers
    );
    let text = &markdown.body;
    assert!(text.starts_with("# Incidents of learned.example"), "{text}");
    assert!(
        text.contains(&format!("## Incident {id}: mx drift (critical), resolved")),
        "{text}"
    );
    assert!(text.contains("- From: 10 mx-a.learned.example"), "{text}");
    assert!(
        text.contains("| ticket | ALI-20240501-17 | 王伟 |"),
        "{text}"
    );
    assert!(text.contains("| phone | T-2 |"), "{text}");
    assert!(
        text.contains("2024-05-01 02:30:00"),
        "first response in UTC: {text}"
    );
    assert!(
        text.contains("Post-mortem: enable registry lock."),
        "{text}"
    );
    let csv = request(
        daemon.addr,
        "GET",
        "/api/v1/domains/learned.example/timeline.csv",
    )
    .await;
    assert_eq!(csv.status, 200);
    assert!(
        csv.headers
            .to_ascii_lowercase()
            .contains("content-type: text/csv")
    );
    let rows: Vec<&str> = csv.body.trim_end().split("\r\n").collect();
    assert!(
        rows[0].starts_with("incident_id,domain,check,code,"),
        "{}",
        csv.body
    );
    let ours: Vec<&&str> = rows
        .iter()
        .filter(|r| r.starts_with(&format!("{id},learned.example,mx,drift,critical,resolved,")))
        .collect();
    assert_eq!(ours.len(), 3, "one row per note: {}", csv.body);
    assert!(
        ours.iter().any(|r| r.contains(",ALI-20240501-17,王伟,")),
        "{}",
        csv.body
    );
    let since = request(
        daemon.addr,
        "GET",
        &format!(
            "/api/v1/domains/learned.example/timeline.csv?since={}",
            opened_at + 0.001
        ),
    )
    .await;
    assert_eq!(since.status, 200);
    assert!(
        !since.body.contains(&format!("\r\n{id},")),
        "opened before: {}",
        since.body
    );
    assert_eq!(
        request(
            daemon.addr,
            "GET",
            "/api/v1/domains/nope.example/timeline.md"
        )
        .await
        .status,
        404
    );
    assert_eq!(
        request(
            daemon.addr,
            "GET",
            "/api/v1/domains/learned.example/timeline.csv?since=later"
        )
        .await
        .status,
        400
    );
    daemon.stop().await;

    // With the daemon down, the CLI writes into the store; the next start shows it.
    let (code, output) = cli_note(
        &[
            &id.to_string(),
            "--channel",
            "email",
            "--text",
            "Registrar confirmed the lock.",
        ],
        "http://127.0.0.1:1",
        &state_dir,
    )
    .await;
    assert_eq!(code, 0, "{output}");
    assert!(
        output.contains("no daemon at http://127.0.0.1:1: written to"),
        "{output}"
    );
    let daemon = start(dir.path(), &config(dns.addr(), "300ms"), &state_dir)
        .await
        .unwrap();
    let incident = daemon.json(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(incident["notes"].as_array().unwrap().len(), 4, "{incident}");
    assert_eq!(incident["notes"][3]["channel"], "email");
    daemon.stop().await;
}
