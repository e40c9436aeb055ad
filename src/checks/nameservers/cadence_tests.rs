//! When the resolvers are compared with the authoritative answers: only when it can tell
//! something (answers changed, a resolver lagged, an hour passed), on tokio's paused clock.

use super::*;
use crate::dns::{Answer, DnsView, LookupResult, RData, RecordType, ZoneAuthority, ZoneServers};
use futures::future::BoxFuture;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// One authoritative server and one resolver, whose MX answers the test sets.
struct Zone {
    /// The MX host the authoritative server gives.
    mx: Mutex<String>,
    /// The MX host the resolver still serves.
    cached: Mutex<String>,
    /// Questions the resolver got.
    resolver_questions: AtomicUsize,
}

const SERVER: &str = "192.0.2.53:53";
const RESOLVER: &str = "198.51.100.53:53";

fn mx(host: &str) -> Answer {
    let mut answer = Answer::records(
        vec![RData::Mx {
            preference: 10,
            exchange: host.to_owned(),
        }],
        300,
    );
    answer.authoritative = true;
    answer
}

impl ZoneAuthority for Zone {
    fn zone_servers<'a>(
        &'a self,
        _name: &'a str,
    ) -> BoxFuture<'a, Result<Arc<ZoneServers>, crate::dns::DnsError>> {
        Box::pin(async {
            Ok(Arc::new(ZoneServers {
                zone: "a.example".to_owned(),
                nameservers: vec![Nameserver {
                    host: None,
                    addr: SERVER.parse().unwrap(),
                }],
            }))
        })
    }

    fn parent_delegation<'a>(
        &'a self,
        _zone: &'a str,
    ) -> BoxFuture<'a, Result<Option<Delegation>, crate::dns::DnsError>> {
        Box::pin(async { Ok(None) })
    }

    fn ask_server<'a>(
        &'a self,
        _server: SocketAddr,
        _name: &'a str,
        rtype: RecordType,
    ) -> BoxFuture<'a, LookupResult> {
        let answer = match rtype {
            RecordType::Mx => mx(&self.mx.lock().unwrap()),
            RecordType::Soa => {
                let soa = RData::Soa {
                    mname: "ns1.a.example".to_owned(),
                    serial: 1,
                    minimum: 60,
                };
                Answer {
                    authoritative: true,
                    ..Answer::records(vec![soa], 300)
                }
            }
            _ => Answer {
                authoritative: true,
                ..Answer::records(Vec::new(), 300)
            },
        };
        Box::pin(async move { Ok(answer) })
    }

    fn resolvers(&self) -> &[SocketAddr] {
        static RESOLVERS: std::sync::OnceLock<Vec<SocketAddr>> = std::sync::OnceLock::new();
        RESOLVERS.get_or_init(|| vec![RESOLVER.parse().unwrap()])
    }

    fn ask_resolver<'a>(
        &'a self,
        _resolver: SocketAddr,
        _name: &'a str,
        rtype: RecordType,
    ) -> BoxFuture<'a, LookupResult> {
        self.resolver_questions.fetch_add(1, Ordering::SeqCst);
        let answer = match rtype {
            RecordType::Mx => mx(&self.cached.lock().unwrap()),
            _ => Answer::records(Vec::new(), 300),
        };
        Box::pin(async move { Ok(answer) })
    }
}

#[tokio::test(start_paused = true)]
async fn resolvers_are_asked_only_when_they_can_tell_something() {
    let zone = Arc::new(Zone {
        mx: Mutex::new("mx1.a.example".to_owned()),
        cached: Mutex::new("mx1.a.example".to_owned()),
        resolver_questions: AtomicUsize::new(0),
    });
    let view = DnsView::new(
        Arc::new(crate::dns::fake::FakeDns::new()),
        Arc::new(crate::dns::fake::FakeDns::new()),
    )
    .with_authority(zone.clone());
    let registry = crate::checks::Registry::empty().with(Nameservers::default());
    let config = crate::config::DomainConfig::new("a.example");
    let global = crate::config::GlobalConfig::default();
    let mut memory: crate::kind_map::KindMap<crate::checks::Memory> = Default::default();
    // One round through the seam, keeping what the check remembers (as the monitor does).
    let mut round = async || {
        let before = zone.resolver_questions.load(Ordering::SeqCst);
        let known = crate::checks::Known {
            baselines: None,
            memory: Some(&memory),
        };
        let run = crate::checks::run::Run::observe(&registry, &config, &view, &global, known).await;
        let report = run.evaluate();
        assert!(report.checks[0].success, "{:?}", report.checks[0].error);
        memory.extend(report.memory);
        zone.resolver_questions.load(Ordering::SeqCst) - before
    };

    assert!(round().await > 0, "the first round compares");
    assert_eq!(
        round().await,
        0,
        "nothing changed, nobody lags: no resolver question"
    );
    tokio::time::advance(Duration::from_secs(1800)).await;
    assert_eq!(round().await, 0, "half an hour later still nothing to tell");

    // The zone changes; the resolver still serves the old MX: asked now, and every round
    // until it serves the new one.
    *zone.mx.lock().unwrap() = "mx2.a.example".to_owned();
    assert!(round().await > 0, "answers changed");
    assert!(round().await > 0, "the resolver still lags");
    *zone.cached.lock().unwrap() = "mx2.a.example".to_owned();
    assert!(round().await > 0, "asked once more: it has switched");
    assert_eq!(round().await, 0, "all switched: quiet again");

    tokio::time::advance(RESOLVER_INTERVAL).await;
    assert!(round().await > 0, "an hour without a comparison");
    assert_eq!(round().await, 0);
}
