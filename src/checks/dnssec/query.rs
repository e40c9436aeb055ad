//! DNS questions with the DO bit over TCP, keeping RRSIG, DNSKEY and DS records (the
//! normalised [`DnsLookup`](crate::dns::DnsLookup) answers drop them). TCP because signed
//! answers are large; one connection per question, a few per domain and round.

use crate::dns::DnsError;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Deadline of one question.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// Asks `server` for `name`/`rtype` with DO set; `recursive` sets RD and CD (the resolver
/// recurses but leaves validation to us, so bogus data comes back instead of SERVFAIL).
/// NXDOMAIN is an answer; other error codes, timeouts and transport failures are not.
pub(super) async fn ask(
    server: SocketAddr,
    name: &Name,
    rtype: RecordType,
    recursive: bool,
) -> Result<Message, DnsError> {
    let transport = |reason: String| DnsError::Transport {
        server: server.to_string(),
        name: format!("{} {rtype}", name.to_ascii()),
        reason,
    };
    let mut query = Message::new(rand::random(), MessageType::Query, OpCode::Query);
    query.metadata.recursion_desired = recursive;
    query.metadata.checking_disabled = recursive;
    query.add_query(Query::query(name.clone(), rtype));
    let mut edns = Edns::new();
    edns.set_max_payload(4096);
    edns.set_dnssec_ok(true);
    query.set_edns(edns);
    let bytes = query.to_vec().map_err(|e| transport(e.to_string()))?;
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(server).await?;
        let length = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
        stream.write_all(&length.to_be_bytes()).await?;
        stream.write_all(&bytes).await?;
        let length = stream.read_u16().await?;
        let mut response = vec![0; usize::from(length)];
        stream.read_exact(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = match tokio::time::timeout(QUERY_TIMEOUT, exchange).await {
        Err(_) => return Err(transport(format!("no answer within {QUERY_TIMEOUT:?}"))),
        Ok(Err(e)) => return Err(transport(format!("tcp: {e}"))),
        Ok(Ok(response)) => response,
    };
    let message = Message::from_vec(&response).map_err(|e| transport(e.to_string()))?;
    if message.metadata.id != query.metadata.id {
        return Err(transport("response id does not match".to_owned()));
    }
    let rcode = message.metadata.response_code;
    if rcode != ResponseCode::NoError && rcode != ResponseCode::NXDomain {
        return Err(transport(format!("answered {rcode}")));
    }
    Ok(message)
}
