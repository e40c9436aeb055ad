//! An in-memory [`DnsLookup`] for unit tests: a table of answers, and a count of what was asked.

use super::{Answer, AnswerStatus, DnsError, DnsLookup, LookupResult, RData, RecordType};
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::Mutex;

/// Answers from a table; names not in the table are NXDOMAIN, known names without the
/// asked type are NODATA.
#[derive(Default)]
pub struct FakeDns {
    answers: Mutex<HashMap<(String, RecordType), LookupResult>>,
    asked: Mutex<Vec<(String, RecordType)>>,
}

impl FakeDns {
    /// An empty table.
    pub fn new() -> FakeDns {
        FakeDns::default()
    }

    /// Sets the records for `name`/`rtype` (TTL 300).
    pub fn set(&self, name: &str, rtype: RecordType, records: Vec<RData>) -> &Self {
        let answer = Answer::records(records, 300);
        self.answers
            .lock()
            .unwrap()
            .insert((super::normalize_name(name), rtype), Ok(answer));
        self
    }

    /// Sets TXT records for `name`.
    pub fn txt(&self, name: &str, texts: &[&str]) -> &Self {
        let records = texts.iter().map(|t| RData::Txt((*t).to_owned())).collect();
        self.set(name, RecordType::Txt, records)
    }

    /// Sets A records for `name`.
    pub fn a(&self, name: &str, ips: &[&str]) -> &Self {
        let records = ips.iter().map(|ip| RData::A(ip.parse().unwrap())).collect();
        self.set(name, RecordType::A, records)
    }

    /// Sets MX records for `name` from `(preference, exchange)` pairs.
    pub fn mx(&self, name: &str, mxs: &[(u16, &str)]) -> &Self {
        let records = mxs
            .iter()
            .map(|(preference, exchange)| RData::Mx {
                preference: *preference,
                exchange: super::normalize_name(exchange),
            })
            .collect();
        self.set(name, RecordType::Mx, records)
    }

    /// Makes `name`/`rtype` fail (e.g. a SERVFAIL or timeout).
    pub fn fail(&self, name: &str, rtype: RecordType, error: DnsError) -> &Self {
        self.answers
            .lock()
            .unwrap()
            .insert((super::normalize_name(name), rtype), Err(error));
        self
    }

    /// Every question asked so far, in order.
    pub fn asked(&self) -> Vec<(String, RecordType)> {
        self.asked.lock().unwrap().clone()
    }
}

impl DnsLookup for FakeDns {
    fn lookup<'a>(&'a self, name: &'a str, rtype: RecordType) -> BoxFuture<'a, LookupResult> {
        let name = super::normalize_name(name);
        self.asked.lock().unwrap().push((name.clone(), rtype));
        let answers = self.answers.lock().unwrap();
        let result = match answers.get(&(name.clone(), rtype)) {
            Some(result) => result.clone(),
            None if answers.keys().any(|(n, _)| *n == name) => {
                Ok(Answer::empty(AnswerStatus::NoData))
            }
            None => Ok(Answer::empty(AnswerStatus::NxDomain)),
        };
        Box::pin(std::future::ready(result))
    }
}
