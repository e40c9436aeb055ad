//! Recursive lookups through hickory-resolver: the system configuration or given servers.
//!
//! The resolver's own response cache is switched off (`cache_size = 0`, which the cache
//! implementation treats as "store nothing"): clamping its TTLs instead would also rewrite
//! the TTLs it returns to us. Sharing answers between domains within a round is
//! [`SharedLookups`](super::shared::SharedLookups)' job, where the age is bounded.
//!
//! hickory refuses a whole response that holds a TXT record without strings; such a
//! question is asked again of the same servers through the direct client, whose decoder
//! reads the record as an empty string.

use super::convert::{follow_chain, parse_name, status_of, to_hickory_type};
use super::direct::{DirectClient, DirectOptions};
use super::metrics::{rcode_name, result_label};
use super::{Answer, AnswerStatus, DnsError, DnsLookup, LookupResult, QueryMetrics, RecordType};
use futures::future::BoxFuture;
use hickory_proto::ProtoError;
use hickory_proto::op::ResponseCode;
use hickory_proto::serialize::binary::DecodeError;
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as NetDnsError, NetError};
use hickory_resolver::{TokioResolver, system_conf};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// Timeouts for recursive lookups.
#[derive(Clone, Debug)]
pub struct ResolverOptions {
    /// Per attempt.
    pub timeout: Duration,
    /// Attempts per server.
    pub attempts: usize,
}

impl Default for ResolverOptions {
    fn default() -> Self {
        ResolverOptions {
            timeout: Duration::from_secs(3),
            attempts: 2,
        }
    }
}

/// One hickory resolver; build one per distinct upstream set and share it.
pub struct RecursiveResolver {
    /// The hickory resolver, without a cache.
    resolver: TokioResolver,
    /// Where every lookup is counted.
    metrics: QueryMetrics,
    /// How errors name the upstream, e.g. "resolver 192.0.2.53:53".
    label: String,
    /// The upstream servers, asked again directly when hickory cannot decode a response
    /// (a TXT record without strings, see [`super::convert::decode_message`]).
    servers: Vec<SocketAddr>,
    /// Timeouts of those direct questions.
    options: ResolverOptions,
    /// The direct client for them, created on first need.
    direct: OnceCell<Arc<DirectClient>>,
}

/// The nameserver addresses of /etc/resolv.conf, read once per process (hickory's system
/// resolver reads it once too); empty, with a warning, when it cannot be read.
pub fn system_resolver_addrs() -> &'static [SocketAddr] {
    static ADDRS: std::sync::OnceLock<Vec<SocketAddr>> = std::sync::OnceLock::new();
    ADDRS.get_or_init(|| match system_conf::read_system_conf() {
        Ok((config, _)) => config
            .name_servers
            .iter()
            .map(|ns| SocketAddr::new(ns.ip, 53))
            .collect(),
        Err(error) => {
            tracing::warn!(%error, "cannot read /etc/resolv.conf: no resolver addresses for \"system\"");
            Vec::new()
        }
    })
}

impl RecursiveResolver {
    /// From the system configuration (/etc/resolv.conf).
    pub fn system(
        options: &ResolverOptions,
        metrics: QueryMetrics,
    ) -> Result<RecursiveResolver, DnsError> {
        let (config, _system_options) =
            system_conf::read_system_conf().map_err(|e| DnsError::NoServers {
                name: "any name".to_owned(),
                reason: format!(
                    "cannot read the system resolver configuration (/etc/resolv.conf): {e}"
                ),
            })?;
        if config.name_servers.is_empty() {
            return Err(DnsError::NoServers {
                name: "any name".to_owned(),
                reason: "/etc/resolv.conf lists no nameserver".to_owned(),
            });
        }
        let ips: Vec<String> = config
            .name_servers
            .iter()
            .map(|ns| ns.ip.to_string())
            .collect();
        let label = format!("system resolver {}", ips.join(", "));
        let servers = config
            .name_servers
            .iter()
            .map(|ns| SocketAddr::new(ns.ip, 53))
            .collect();
        // Only the servers are taken from the system; search domains do not apply to the
        // absolute names we ask, and timeouts are ours.
        let config = ResolverConfig::from_parts(None, vec![], config.name_servers);
        Ok(RecursiveResolver::build(
            config, options, metrics, label, servers,
        ))
    }

    /// Asking the given recursive resolvers.
    pub fn with_servers(
        servers: &[SocketAddr],
        options: &ResolverOptions,
        metrics: QueryMetrics,
    ) -> RecursiveResolver {
        let name_servers = servers
            .iter()
            .map(|server| {
                let mut config = NameServerConfig::udp_and_tcp(server.ip());
                for connection in &mut config.connections {
                    connection.port = server.port();
                }
                config
            })
            .collect();
        let addrs: Vec<String> = servers.iter().map(ToString::to_string).collect();
        let label = format!("resolver {}", addrs.join(", "));
        let config = ResolverConfig::from_parts(None, vec![], name_servers);
        RecursiveResolver::build(config, options, metrics, label, servers.to_vec())
    }

    /// The resolver for `config` with our options.
    fn build(
        config: ResolverConfig,
        options: &ResolverOptions,
        metrics: QueryMetrics,
        label: String,
        servers: Vec<SocketAddr>,
    ) -> RecursiveResolver {
        let mut opts = ResolverOpts::default();
        opts.timeout = options.timeout;
        opts.attempts = options.attempts;
        // Ask one server at a time: asking two in parallel doubles the load.
        opts.num_concurrent_reqs = 1;
        // No cache at all (see the module comment): every lookup reaches the network.
        opts.cache_size = 0;
        opts.preserve_intermediates = true;
        opts.use_hosts_file = ResolveHosts::Never;
        let resolver = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(opts)
            .build()
            // Building fails only when setting up TLS, which this build does not enable.
            .expect("a resolver without TLS always builds");
        RecursiveResolver {
            resolver,
            metrics,
            label,
            servers,
            options: options.clone(),
            direct: OnceCell::new(),
        }
    }

    /// One lookup, converted.
    async fn resolve(&self, name: &str, rtype: RecordType) -> LookupResult {
        let qname = parse_name(name)?;
        let started = Instant::now();
        let lookup = self.resolver.lookup(qname, to_hickory_type(rtype)).await;
        // hickory refuses a response holding a TXT record without strings; ours reads it.
        // After a truncated UDP answer, hickory reports its failure to use the TCP answer
        // (such a record in a large answer) as `Truncated`: ask directly then too.
        let undecodable = matches!(
            &lookup,
            Err(
                NetError::Proto(ProtoError::Decode(DecodeError::InvalidEmptyRecord))
                    | NetError::Truncated
            )
        );
        let result = match lookup {
            Ok(lookup) => {
                let chained = follow_chain(name, rtype, lookup.answers().iter());
                Ok(Answer {
                    status: status_of(&chained.records, false),
                    records: chained.records,
                    cname_chain: chained.cname_chain,
                    ttl: chained.ttl.unwrap_or(0),
                    server: None,
                    authoritative: false,
                    additional: Vec::new(),
                    signed: None,
                })
            }
            Err(error) => self.convert_error(error, name, rtype),
        };
        self.metrics
            .observe(result_label(&result), started.elapsed());
        if undecodable {
            return self.ask_directly(name, rtype).await;
        }
        result
    }

    /// Asks the upstream servers in turn through the direct client, whose decoder reads
    /// what hickory's refuses; the answer looks like the resolver's (no server, no AA).
    async fn ask_directly(&self, name: &str, rtype: RecordType) -> LookupResult {
        let options = DirectOptions {
            timeout: self.options.timeout,
            attempts: u32::try_from(self.options.attempts).unwrap_or(u32::MAX),
            ..DirectOptions::default()
        };
        let client = self
            .direct
            .get_or_try_init(|| DirectClient::new(options, self.metrics.clone()))
            .await
            .map_err(|e| DnsError::Transport {
                server: self.label.clone(),
                name: name.to_owned(),
                reason: format!("cannot open a socket to ask directly: {e}"),
            })?;
        let mut last = None;
        for server in &self.servers {
            match client.query(*server, name, rtype, true).await {
                Ok(answer) => {
                    return Ok(Answer {
                        server: None,
                        authoritative: false,
                        additional: Vec::new(),
                        signed: None,
                        ..answer
                    });
                }
                Err(error) => last = Some(error),
            }
        }
        Err(last.unwrap_or_else(|| DnsError::NoServers {
            name: name.to_owned(),
            reason: format!("{} has no server to ask directly", self.label),
        }))
    }

    /// NXDOMAIN/NODATA are answers; everything else an error naming the upstream.
    fn convert_error(&self, error: NetError, name: &str, rtype: RecordType) -> LookupResult {
        let server = self.label.clone();
        let name = name.to_owned();
        match error {
            NetError::Dns(NetDnsError::NoRecordsFound(no_records)) => {
                let status = if no_records.response_code == ResponseCode::NXDomain {
                    AnswerStatus::NxDomain
                } else {
                    AnswerStatus::NoData
                };
                let mut answer = Answer::empty(status);
                answer.ttl = no_records.negative_ttl.unwrap_or(0);
                Ok(answer)
            }
            NetError::Dns(NetDnsError::ResponseCode(code)) => Err(DnsError::Rcode {
                server,
                name,
                rtype,
                rcode: rcode_name(code),
            }),
            NetError::Timeout => Err(DnsError::Timeout {
                server,
                name,
                rtype,
            }),
            NetError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
                Err(DnsError::Timeout {
                    server,
                    name,
                    rtype,
                })
            }
            other => Err(DnsError::Transport {
                server,
                name,
                reason: other.to_string(),
            }),
        }
    }
}

impl DnsLookup for RecursiveResolver {
    fn lookup<'a>(&'a self, name: &'a str, rtype: RecordType) -> BoxFuture<'a, LookupResult> {
        Box::pin(self.resolve(name, rtype))
    }
}
