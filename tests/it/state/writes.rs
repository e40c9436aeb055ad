//! Writes are protected like everything else: notes (API and the page's form), accepting a
//! baseline and reloading need basic auth when it is configured, and are refused when a
//! browser says they come from another site's page; the CLI passes with the credentials in
//! its URL. Query strings are bounded.

use super::notes::cli_note;
use super::{DECLARED_ZONE, config, learned_zone, start_with};
use crate::harness::{dns_server, request_body, request_with, wait_until};
use maildrift::app::RunOptions;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[tokio::test]
async fn writes_need_credentials_and_the_same_origin() {
    let dns = dns_server(&[&learned_zone("mx-a"), DECLARED_ZONE]).await;
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    let hash = bcrypt::hash("wonderland", 4).unwrap();
    std::fs::write(&web, format!("basic_auth_users:\n  alice: '{hash}'\n")).unwrap();
    let options = RunOptions {
        state_dir: Some(dir.path().join("data")),
        web_config: Some(Arc::new(maildrift::WebConfig::load(&web).unwrap())),
        ..RunOptions::default()
    };
    let daemon = start_with(dir.path(), &config(dns.addr(), "300ms"), options)
        .await
        .unwrap();
    let alice = basic("alice", "wonderland");
    let ready = wait_until(Duration::from_secs(15), || async {
        request_with(daemon.addr, "GET", "/-/ready", &[])
            .await
            .status
            == 200
    })
    .await;
    assert!(ready);
    dns.set_zone(&learned_zone("mx-b")).unwrap();
    let drifted = wait_until(Duration::from_secs(15), || async {
        let response = request_with(
            daemon.addr,
            "GET",
            "/api/v1/domains/learned.example",
            &[("Authorization", &alice)],
        )
        .await;
        response.body.contains("\"code\":\"drift\"") && response.body.contains("\"id\":")
    })
    .await;
    assert!(drifted, "no drift incident");
    let domain: Value = serde_json::from_str(
        &request_with(
            daemon.addr,
            "GET",
            "/api/v1/domains/learned.example",
            &[("Authorization", &alice)],
        )
        .await
        .body,
    )
    .unwrap();
    let id = domain["incidents"][0]["id"].as_i64().unwrap();
    let notes = format!("/api/v1/incidents/{id}/notes");
    let body = json!({"channel": "phone", "text": "called"}).to_string();
    let own = format!("http://{}", daemon.addr);
    let post = |path: String, headers: Vec<(&'static str, String)>, body: String| {
        let addr = daemon.addr;
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            request_body(addr, "POST", &path, &headers, body.as_bytes())
                .await
                .status
        }
    };
    let json_type = ("Content-Type", "application/json".to_owned());
    let form_type = (
        "Content-Type",
        "application/x-www-form-urlencoded".to_owned(),
    );
    let auth = ("Authorization", alice.clone());
    // No credentials: 401, whatever the origin.
    assert_eq!(
        post(notes.clone(), vec![json_type.clone()], body.clone()).await,
        401
    );
    assert_eq!(
        post(
            notes.clone(),
            vec![
                json_type.clone(),
                ("Authorization", basic("alice", "wrong"))
            ],
            body.clone()
        )
        .await,
        401
    );
    // Credentials from another site's page: 403 on every write.
    let evil = ("Origin", "http://evil.example".to_owned());
    for (path, kind) in [
        (notes.clone(), json_type.clone()),
        (
            "/domains/learned.example/notes".to_owned(),
            form_type.clone(),
        ),
        (
            "/api/v1/domains/learned.example/accept".to_owned(),
            json_type.clone(),
        ),
        ("/-/reload".to_owned(), json_type.clone()),
    ] {
        assert_eq!(
            post(
                path.clone(),
                vec![kind.clone(), auth.clone(), evil.clone()],
                body.clone()
            )
            .await,
            403,
            "{path}"
        );
    }
    let cross = ("Sec-Fetch-Site", "cross-site".to_owned());
    assert_eq!(
        post(
            notes.clone(),
            vec![json_type.clone(), auth.clone(), cross],
            body.clone()
        )
        .await,
        403
    );
    let null = ("Origin", "null".to_owned());
    assert_eq!(
        post(
            notes.clone(),
            vec![json_type.clone(), auth.clone(), null],
            body.clone()
        )
        .await,
        403
    );
    // Reads from anywhere are fine.
    let read = request_with(
        daemon.addr,
        "GET",
        &format!("/api/v1/incidents/{id}"),
        &[("Authorization", &alice), ("Origin", "http://evil.example")],
    )
    .await;
    assert_eq!(read.status, 200);
    // The same origin (the page's own form) and no origin (the CLI) are accepted.
    let same = ("Origin", own.clone());
    assert_eq!(
        post(
            notes.clone(),
            vec![json_type.clone(), auth.clone(), same.clone()],
            body.clone()
        )
        .await,
        201
    );
    assert_eq!(
        post(
            notes.clone(),
            vec![json_type.clone(), auth.clone()],
            body.clone()
        )
        .await,
        201
    );
    let form =
        format!("incident={id}&channel=chat&ticket=&who=ops&first_response_at=&text=from+the+page");
    let response = request_body(
        daemon.addr,
        "POST",
        "/domains/learned.example/notes",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Authorization", &alice),
            ("Origin", &own),
        ],
        form.as_bytes(),
    )
    .await;
    assert_eq!(response.status, 303, "{}", response.body);
    assert!(
        response.headers.contains(&format!("#incident-{id}")),
        "{}",
        response.headers
    );
    let incident: Value = serde_json::from_str(
        &request_with(
            daemon.addr,
            "GET",
            &format!("/api/v1/incidents/{id}"),
            &[("Authorization", &alice)],
        )
        .await
        .body,
    )
    .unwrap();
    assert_eq!(incident["notes"].as_array().unwrap().len(), 3, "{incident}");
    assert_eq!(incident["notes"][2]["text"], "from the page");
    // The CLI with credentials in the URL; without, refused.
    let (code, output) = cli_note(
        &[
            &id.to_string(),
            "--channel",
            "phone",
            "--text",
            "from the CLI",
        ],
        &format!("http://alice:wonderland@{}", daemon.addr),
        &dir.path().join("elsewhere"),
    )
    .await;
    assert_eq!(code, 0, "{output}");
    let (code, output) = cli_note(
        &[&id.to_string(), "--channel", "phone", "--text", "x"],
        &format!("http://alice:wrong@{}", daemon.addr),
        &dir.path().join("elsewhere"),
    )
    .await;
    assert_eq!(code, 1, "{output}");
    assert!(
        output.contains(": 401") && !output.contains("wrong"),
        "{output}"
    );
    // A query string beyond the bound: 414.
    let long = format!("/?q={}", "x".repeat(3000));
    let response = request_with(daemon.addr, "GET", &long, &[("Authorization", &alice)]).await;
    assert_eq!(response.status, 414);
    daemon.stop().await;
}
