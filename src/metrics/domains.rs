//! Per-domain series in a compact table: a few atomics per (domain, check), rendered straight
//! into the text exposition format at scrape time. A prometheus-crate child costs ~700 bytes
//! and a protobuf round trip per scrape; at 10,000 domains × 19 series that was 130 MiB and
//! 300 ms per scrape, this is ~300 bytes per domain and a single pass over the table.
//!
//! Besides the series every check has, each domain holds the samples of the gauge families
//! its checks declare ([`GaugeFamily`]); the table renders any family the same way.

use crate::checks::{Export, FamilyValues, GaugeFamily, Labels};
use crate::finding::{CheckKind, Severity};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// One gauge value, updated in place.
#[derive(Debug, Default)]
pub struct Cell(AtomicU64);

impl Cell {
    /// Sets the value.
    pub fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Ordering::Relaxed);
    }

    /// Reads the value.
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// A 0/1 gauge value in one byte.
#[derive(Debug, Default)]
pub struct Flag(AtomicU8);

impl Flag {
    /// Sets the value: 1 for anything but 0.
    pub fn set(&self, value: f64) {
        self.0.store(u8::from(value != 0.0), Ordering::Relaxed);
    }

    /// Reads the value.
    pub fn get(&self) -> f64 {
        f64::from(self.0.load(Ordering::Relaxed))
    }
}

/// A count gauge value in four bytes.
#[derive(Debug, Default)]
pub struct Count(AtomicU32);

impl Count {
    /// Sets the value (a count: whole, 0 to 2³²-1).
    pub fn set(&self, value: f64) {
        self.0.store(value as u32, Ordering::Relaxed);
    }

    /// Reads the value.
    pub fn get(&self) -> f64 {
        f64::from(self.0.load(Ordering::Relaxed))
    }
}

/// The series of one (domain, check) pair: 24 bytes (every domain has one per check).
#[derive(Debug)]
pub struct CheckRow {
    /// Which check.
    pub check: CheckKind,
    /// `maildrift_check_success`.
    pub success: Flag,
    /// `maildrift_drift`.
    pub drift: Flag,
    /// `maildrift_findings`, indexed like [`Severity::ALL`].
    pub findings: [Count; 3],
    /// `maildrift_last_check_timestamp_seconds`.
    pub last_check: Cell,
}

/// Fingerprint and TTL of one observed record set: 40 bytes (a domain has one per record
/// set, a dozen or so).
#[derive(Clone, Debug)]
struct RecordRow {
    record: std::borrow::Cow<'static, str>,
    fingerprint: f64,
    /// The TTL in seconds; [`RecordRow::NO_TTL`] until one is seen.
    ttl: u32,
}

impl RecordRow {
    /// `ttl` before any TTL is seen.
    const NO_TTL: u32 = u32::MAX;

    /// The TTL sample, when one was seen.
    fn ttl(&self) -> Option<f64> {
        (self.ttl != RecordRow::NO_TTL).then_some(f64::from(self.ttl))
    }
}

/// The samples of one gauge family as a domain keeps them between scrapes. A check reports
/// them as [`FamilyValues`] (a vector per sample's labels); kept like that, a domain's nine
/// families cost ~700 bytes, most of them for one unlabelled number or an `_info` family's
/// flags. Those two shapes are held without an allocation.
#[derive(Debug)]
struct HeldFamily {
    family: &'static GaugeFamily,
    samples: HeldSamples,
}

/// One sample of a listed family: its label values, its value.
type HeldSample = (Box<[Cow<'static, str>]>, f64);

/// See [`HeldFamily`].
#[derive(Debug)]
enum HeldSamples {
    /// The family's one sample, without labels.
    One(f64),
    /// One sample per entry of the family's `initial` series, with those labels, each 0 or
    /// 1: bit `i` is the value of entry `i` (an `_info` family; at most 64 entries).
    Flags(u64),
    /// Any other samples.
    Listed(Box<[HeldSample]>),
}

impl HeldFamily {
    /// The compact form of `values`.
    fn hold(values: &FamilyValues) -> HeldFamily {
        let family = values.family;
        let samples = match values.samples.as_slice() {
            [(labels, value)] if labels.is_empty() => HeldSamples::One(*value),
            samples if HeldFamily::are_flags(family, samples) => HeldSamples::Flags(
                samples
                    .iter()
                    .enumerate()
                    .filter(|(_, (_, value))| *value == 1.0)
                    .fold(0, |bits, (i, _)| bits | 1 << i),
            ),
            samples => HeldSamples::Listed(
                samples
                    .iter()
                    .map(|(labels, value)| (labels.clone().into_boxed_slice(), *value))
                    .collect(),
            ),
        };
        HeldFamily { family, samples }
    }

    /// Whether `samples` are the family's `initial` series, label for label, each 0 or 1.
    fn are_flags(family: &GaugeFamily, samples: &[(Labels, f64)]) -> bool {
        !samples.is_empty()
            && samples.len() == family.initial.len()
            && samples.len() <= 64
            && samples
                .iter()
                .zip(family.initial)
                .all(|((labels, value), (initial, _))| {
                    (*value == 0.0 || *value == 1.0)
                        && labels.len() == initial.len()
                        && labels.iter().zip(initial.iter()).all(|(a, b)| a == b)
                })
    }

    /// Appends the samples `/metrics` shows of this family of `domain`.
    fn write(&self, out: &mut String, domain: &str, detail: bool) {
        let family = self.family;
        match &self.samples {
            HeldSamples::One(value) => {
                family_sample(out, family, domain, &mut std::iter::empty(), *value, detail);
            }
            HeldSamples::Flags(bits) => {
                for (i, (labels, _)) in family.initial.iter().enumerate() {
                    let value = if bits & (1 << i) != 0 { 1.0 } else { 0.0 };
                    let labels = &mut labels.iter().copied();
                    family_sample(out, family, domain, labels, value, detail);
                }
            }
            HeldSamples::Listed(samples) => {
                for (labels, value) in samples.iter() {
                    let labels = &mut labels.iter().map(AsRef::as_ref);
                    family_sample(out, family, domain, labels, *value, detail);
                }
            }
        }
    }
}

/// Every series of one domain.
#[derive(Debug)]
pub struct DomainRow {
    domain: String,
    /// One row per active check.
    pub checks: Vec<CheckRow>,
    records: Mutex<Vec<RecordRow>>,
    /// The samples of each gauge family the checks declare, as last known.
    gauges: Mutex<Vec<HeldFamily>>,
}

impl DomainRow {
    /// The row of one check, if it is active.
    pub fn check(&self, check: CheckKind) -> Option<&CheckRow> {
        self.checks.iter().find(|c| c.check == check)
    }

    /// Sets `maildrift_record_fingerprint` and (when known) `maildrift_record_ttl_seconds`.
    pub fn set_record(
        &self,
        record: std::borrow::Cow<'static, str>,
        fingerprint: u64,
        ttl: Option<u32>,
    ) {
        let mut records = self.records.lock().expect("lock poisoned");
        let fingerprint = fingerprint as f64;
        // A TTL of 2³²-1 (never seen in DNS: TTLs are at most 2³¹-1) would read as unknown.
        let ttl = ttl.map(|ttl| ttl.min(RecordRow::NO_TTL - 1));
        match records.iter_mut().find(|r| r.record == record) {
            Some(existing) => {
                existing.fingerprint = fingerprint;
                if let Some(ttl) = ttl {
                    existing.ttl = ttl;
                }
            }
            None => {
                // Each domain's row is sized to its record sets, never doubled.
                records.reserve_exact(1);
                records.push(RecordRow {
                    record,
                    fingerprint,
                    ttl: ttl.unwrap_or(RecordRow::NO_TTL),
                });
            }
        }
    }

    /// Replaces the samples of each family in `values`; other families keep theirs.
    pub fn set_gauges(&self, values: &[FamilyValues]) {
        let mut gauges = self.gauges.lock().expect("lock poisoned");
        for value in values {
            let held = HeldFamily::hold(value);
            match gauges
                .iter_mut()
                .find(|g| std::ptr::eq(g.family, value.family))
            {
                Some(existing) => *existing = held,
                None => {
                    // Sized to the domain's families, never doubled.
                    gauges.reserve_exact(1);
                    gauges.push(held);
                }
            }
        }
    }
}

/// All watched domains' series, sorted by domain for stable output.
#[derive(Debug, Default)]
pub struct DomainTable {
    rows: RwLock<BTreeMap<String, Arc<DomainRow>>>,
}

/// A family rendered from the table: name, help, and how to read its samples from a row.
struct Family {
    name: &'static str,
    help: &'static str,
}

const CHECK_SUCCESS: Family = Family {
    name: "maildrift_check_success",
    help: "1 when the last run of the check got conclusive DNS answers.",
};
const DRIFT: Family = Family {
    name: "maildrift_drift",
    help: "1 while the observed state differs from the expectation or learned baseline.",
};
const FINDINGS: Family = Family {
    name: "maildrift_findings",
    help: "Open findings of the check, by severity.",
};
const LAST_CHECK: Family = Family {
    name: "maildrift_last_check_timestamp_seconds",
    help: "Unix time of the last completed run of the check.",
};
const FINGERPRINT: Family = Family {
    name: "maildrift_record_fingerprint",
    help: "52-bit hash of the normalised record set; changes() shows edits.",
};
const RECORD_TTL: Family = Family {
    name: "maildrift_record_ttl_seconds",
    help: "TTL of the record set as seen at the authoritative servers.",
};
/// Reads one sample of a per-check family.
type CheckValue = fn(&CheckRow) -> f64;

/// Writes the `# HELP` and `# TYPE` lines of a gauge.
pub(super) fn header(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
}

/// Escapes a label value per the text format (backslash, double quote, newline).
pub(super) fn escaped(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n')) {
        return value.into();
    }
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
        .into()
}

impl DomainTable {
    /// Adds a domain (every series 0, and each family its initial samples, until its first
    /// check) or returns the existing row.
    pub fn insert(&self, domain: &str, checks: &[CheckKind]) -> Arc<DomainRow> {
        let mut rows = self.rows.write().expect("lock poisoned");
        rows.entry(domain.to_owned())
            .or_insert_with(|| {
                Arc::new(DomainRow {
                    domain: domain.to_owned(),
                    checks: checks
                        .iter()
                        .map(|&check| CheckRow {
                            check,
                            success: Flag::default(),
                            drift: Flag::default(),
                            findings: Default::default(),
                            last_check: Cell::default(),
                        })
                        .collect(),
                    records: Mutex::new(Vec::new()),
                    gauges: Mutex::new(Vec::new()),
                })
            })
            .clone()
    }

    /// Removes a domain's series.
    pub fn remove(&self, domain: &str) {
        self.rows.write().expect("lock poisoned").remove(domain);
    }

    /// Appends every family in the text exposition format; `families` are the gauge
    /// families the checks declare, each with its check (a domain that skips the check
    /// exports none of its families). The daemon streams [`DomainTable::scrape`] instead;
    /// this whole-text form is for the tests.
    #[cfg(test)]
    pub fn render(
        &self,
        out: &mut String,
        families: &[(CheckKind, &'static GaugeFamily)],
        detail: bool,
    ) {
        let mut scrape = self.scrape(families.to_vec(), detail);
        while !scrape.fill(out, usize::MAX) {}
    }

    /// A scrape of the table as it is now, rendered a chunk at a time by
    /// [`TableScrape::fill`]: a scrape of 100,000 domains never holds its whole text.
    pub fn scrape(
        &self,
        families: Vec<(CheckKind, &'static GaugeFamily)>,
        detail: bool,
    ) -> TableScrape {
        let rows: Vec<Arc<DomainRow>> = self
            .rows
            .read()
            .expect("lock poisoned")
            .values()
            .cloned()
            .collect();
        let initial = families
            .iter()
            .map(|(_, family)| FamilyValues::initial(family))
            .collect();
        TableScrape {
            rows,
            families,
            initial,
            detail,
            step: 0,
            row: 0,
        }
    }
}

/// The per-check families, in output order. By default (SPEC.md's budget) each check has
/// its success series; drift and findings appear while they are not 0; the time of the
/// last run and the per-record series come with `metrics.detail`.
const PER_CHECK: [(&Family, CheckValue, Export); 3] = [
    (&CHECK_SUCCESS, |c| c.success.get(), Export::Always),
    (&DRIFT, |c| c.drift.get(), Export::NonZero),
    (&LAST_CHECK, |c| c.last_check.get(), Export::Detail),
];

/// Steps of a scrape before the gauge families: the per-check families, the findings, the
/// record fingerprints and TTLs.
const FIXED_STEPS: usize = PER_CHECK.len() + 3;

/// One scrape of the [`DomainTable`] under way: family after family, each over every row
/// of the snapshot, resumed where the previous chunk stopped.
pub struct TableScrape {
    rows: Vec<Arc<DomainRow>>,
    families: Vec<(CheckKind, &'static GaugeFamily)>,
    /// Each family's samples before a domain's first conclusive run.
    initial: Vec<FamilyValues>,
    detail: bool,
    /// The family being written ([`FIXED_STEPS`] fixed ones, then `families`).
    step: usize,
    /// The next row of that family.
    row: usize,
}

impl TableScrape {
    /// Appends families' lines to `out` until it holds `budget` bytes or more, stopping
    /// between rows. Returns true when the scrape is complete.
    pub fn fill(&mut self, out: &mut String, budget: usize) -> bool {
        while self.step < FIXED_STEPS + self.families.len() {
            if self.row == 0 {
                let (name, help) = self.family_header();
                header(out, name, help);
                if !self.detail && matches!(self.step, 4 | 5) {
                    // Per-record series come only with `metrics.detail`.
                    self.row = self.rows.len();
                }
            }
            while self.row < self.rows.len() {
                if out.len() >= budget {
                    return false;
                }
                self.write_row(out, &self.rows[self.row]);
                self.row += 1;
            }
            self.step += 1;
            self.row = 0;
        }
        true
    }

    fn family_header(&self) -> (&'static str, &'static str) {
        match self.step {
            step if step < PER_CHECK.len() => (PER_CHECK[step].0.name, PER_CHECK[step].0.help),
            3 => (FINDINGS.name, FINDINGS.help),
            4 => (FINGERPRINT.name, FINGERPRINT.help),
            5 => (RECORD_TTL.name, RECORD_TTL.help),
            step => {
                let family = self.families[step - FIXED_STEPS].1;
                (family.name, family.help)
            }
        }
    }

    /// One row's samples of the current family.
    fn write_row(&self, out: &mut String, row: &DomainRow) {
        let detail = self.detail;
        let domain = row.domain.as_str();
        match self.step {
            step if step < PER_CHECK.len() => {
                let (family, value, export) = PER_CHECK[step];
                for check in &row.checks {
                    let value = value(check);
                    if export.shows(value, detail) {
                        sample(
                            out,
                            family.name,
                            [("check", check.check.as_str()), ("domain", domain)],
                            value,
                        );
                    }
                }
            }
            3 => {
                for check in &row.checks {
                    for (cell, severity) in check.findings.iter().zip(Severity::ALL) {
                        let value = cell.get();
                        if Export::NonZero.shows(value, detail) {
                            sample(
                                out,
                                FINDINGS.name,
                                [
                                    ("check", check.check.as_str()),
                                    ("domain", domain),
                                    ("severity", severity.as_str()),
                                ],
                                value,
                            );
                        }
                    }
                }
            }
            4 | 5 => {
                let (family, ttl) = if self.step == 4 {
                    (&FINGERPRINT, false)
                } else {
                    (&RECORD_TTL, true)
                };
                let records = row.records.lock().expect("lock poisoned");
                for record in records.iter() {
                    let value = if ttl {
                        record.ttl()
                    } else {
                        Some(record.fingerprint)
                    };
                    if let Some(value) = value {
                        sample(
                            out,
                            family.name,
                            [("domain", domain), ("record", record.record.as_ref())],
                            value,
                        );
                    }
                }
            }
            step => {
                let i = step - FIXED_STEPS;
                let (check, family) = self.families[i];
                if row.check(check).is_none() {
                    return;
                }
                // Read under the row's lock, nothing copied.
                let gauges = row.gauges.lock().expect("lock poisoned");
                match gauges.iter().find(|g| std::ptr::eq(g.family, family)) {
                    Some(held) => held.write(out, domain, detail),
                    None => {
                        for (labels, value) in &self.initial[i].samples {
                            let labels = &mut labels.iter().map(AsRef::as_ref);
                            family_sample(out, family, domain, labels, *value, detail);
                        }
                    }
                }
            }
        }
    }
}

/// Appends one sample of a family of one domain, when `/metrics` shows it.
fn family_sample<'a>(
    out: &mut String,
    family: &GaugeFamily,
    domain: &'a str,
    labels: &mut dyn Iterator<Item = &'a str>,
    value: f64,
    detail: bool,
) {
    if family.export.shows(value, detail) {
        let named = family.labels.iter().copied().zip(labels);
        sample(
            out,
            family.name,
            std::iter::once(("domain", domain)).chain(named),
            value,
        );
    }
}

/// Appends one sample line, `name{label="value",…} value`, escaping the label values.
pub(super) fn sample<'a>(
    out: &mut String,
    name: &str,
    labels: impl IntoIterator<Item = (&'a str, &'a str)>,
    value: f64,
) {
    out.push_str(name);
    out.push('{');
    for (i, (label, text)) in labels.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(label);
        out.push_str("=\"");
        out.push_str(&escaped(text));
        out.push('"');
    }
    out.push_str("} ");
    push_value(out, value);
    out.push('\n');
}

/// Appends a sample value as the text format writes it. Most values are whole numbers (0,
/// 1, counts, Unix times): those are written as integers, which prints the same digits as
/// the float formatter at a fraction of its cost.
pub(super) fn push_value(out: &mut String, value: f64) {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53: every integer below is exact
    if value.fract() == 0.0 && value.abs() < EXACT {
        let _ = write!(out, "{}", value as i64);
    } else {
        let _ = write!(out, "{value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::{Registry, dkim, dmarc, nameservers};

    fn families() -> Vec<(CheckKind, &'static GaugeFamily)> {
        Registry::standard().families().collect()
    }

    fn rendered(table: &DomainTable) -> String {
        let mut text = String::new();
        table.render(&mut text, &families(), true);
        text
    }

    #[test]
    fn a_check_row_stays_small_and_keeps_its_values() {
        // 13 per domain: 24 bytes each instead of 56 with a float per series.
        assert_eq!(std::mem::size_of::<CheckRow>(), 24);
        let table = DomainTable::default();
        let row = table.insert("a.example", &[CheckKind::Mx]);
        let mx = row.check(CheckKind::Mx).unwrap();
        mx.success.set(1.0);
        mx.findings[2].set(70_000.0);
        mx.last_check.set(1_764_633_600.5);
        assert_eq!(mx.success.get(), 1.0);
        assert_eq!(mx.findings[2].get(), 70_000.0);
        assert_eq!(mx.last_check.get(), 1_764_633_600.5);
    }

    #[test]
    fn gauge_samples_are_held_compactly_and_render_as_reported() {
        // Every domain keeps its families' samples and record rows between scrapes.
        assert_eq!(std::mem::size_of::<HeldFamily>(), 32);
        assert_eq!(std::mem::size_of::<RecordRow>(), 40);
        let policy = |current| FamilyValues::info(&dmarc::POLICY_INFO, current);
        let pending = FamilyValues {
            family: &nameservers::PROPAGATION_PENDING,
            samples: vec![
                (vec!["mx".into(), "192.0.2.53:53".into()], 40.0),
                (vec!["spf".into(), "192.0.2.53:53".into()], 0.0),
            ],
        };
        let keys = FamilyValues::by_label(&dkim::KEY_BITS, [("s1".to_owned(), 2048.0)]);
        let one = FamilyValues::one(&nameservers::CONSISTENT, 1.0);
        let cases = [
            (one, "One"),
            (policy("reject"), "Flags"),
            (policy("not a policy"), "Flags"),
            (pending, "Listed"),
            (keys, "Listed"),
        ];
        for (values, shape) in cases {
            let held = HeldFamily::hold(&values);
            assert!(format!("{:?}", held.samples).starts_with(shape), "{held:?}");
            for detail in [false, true] {
                let mut from_held = String::new();
                held.write(&mut from_held, "a.example", detail);
                let mut reported = String::new();
                for (labels, value) in &values.samples {
                    let labels = &mut labels.iter().map(AsRef::as_ref);
                    family_sample(
                        &mut reported,
                        values.family,
                        "a.example",
                        labels,
                        *value,
                        detail,
                    );
                }
                assert_eq!(from_held, reported, "{shape} detail={detail}");
                assert!(!reported.is_empty() || !detail);
            }
        }
        // A TTL of 2^32-1 stays a TTL; none seen is no sample.
        let table = DomainTable::default();
        let row = table.insert("a.example", &[CheckKind::Mx]);
        row.set_record("mx".into(), 1, Some(u32::MAX));
        row.set_record("spf".into(), 2, None);
        let text = rendered(&table);
        assert!(
            text.contains(
                "maildrift_record_ttl_seconds{domain=\"a.example\",record=\"mx\"} 4294967294\n"
            ),
            "{text}"
        );
        assert!(
            !text.contains("record_ttl_seconds{domain=\"a.example\",record=\"spf\"}"),
            "{text}"
        );
    }

    #[test]
    fn renders_every_family_and_forgets_removed_domains() {
        let table = DomainTable::default();
        let row = table.insert("a.example", &[CheckKind::Mx]);
        row.check(CheckKind::Mx).unwrap().drift.set(1.0);
        row.check(CheckKind::Mx).unwrap().findings[0].set(2.0);
        row.set_record("mx".into(), 12345, Some(300));
        row.set_record("mx".into(), 777, None);
        table.insert("b.example", &[CheckKind::Mx, CheckKind::Dmarc]);
        let text = rendered(&table);
        assert!(
            text.contains("maildrift_drift{check=\"mx\",domain=\"a.example\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("maildrift_drift{check=\"mx\",domain=\"b.example\"} 0\n"));
        assert!(text.contains(
            "maildrift_findings{check=\"mx\",domain=\"a.example\",severity=\"critical\"} 2\n"
        ));
        assert!(
            text.contains("maildrift_record_fingerprint{domain=\"a.example\",record=\"mx\"} 777\n")
        );
        assert!(
            text.contains("maildrift_record_ttl_seconds{domain=\"a.example\",record=\"mx\"} 300\n")
        );
        assert!(!text.contains("record_ttl_seconds{domain=\"b.example\""));
        assert!(
            text.contains(
                "maildrift_dmarc_policy_info{domain=\"b.example\",policy=\"missing\"} 0\n"
            )
        );
        assert_eq!(text.matches("# TYPE maildrift_drift gauge").count(), 1);
        // a.example does not run the DMARC check (skipped): none of its families.
        assert!(!text.contains("maildrift_dmarc_policy_info{domain=\"a.example\""));
        assert!(!text.contains("maildrift_drift{check=\"dmarc\",domain=\"a.example\""));
        table.remove("a.example");
        let text = rendered(&table);
        assert!(!text.contains("a.example"), "{text}");
    }

    #[test]
    fn nameserver_families_appear_once_known() {
        let table = DomainTable::default();
        let row = table.insert("a.example", &[CheckKind::Nameservers]);
        let text = rendered(&table);
        assert!(
            !text.contains("maildrift_nameservers_consistent{"),
            "{text}"
        );
        row.set_gauges(&[
            FamilyValues::one(&nameservers::CONSISTENT, 0.0),
            FamilyValues {
                family: &nameservers::PROPAGATION_PENDING,
                samples: vec![(vec!["mx".into(), "223.5.5.5".into()], 1200.0)],
            },
        ]);
        let text = rendered(&table);
        assert!(text.contains("maildrift_nameservers_consistent{domain=\"a.example\"} 0\n"));
        assert!(text.contains(
            "maildrift_propagation_pending_seconds{domain=\"a.example\",record=\"mx\",resolver=\"223.5.5.5\"} 1200\n"
        ));
    }

    #[test]
    fn dmarc_policy_and_dkim_keys() {
        let table = DomainTable::default();
        let row = table.insert("a.example", &[CheckKind::Dkim, CheckKind::Dmarc]);
        row.set_gauges(&[
            FamilyValues::info(&dmarc::POLICY_INFO, "quarantine"),
            FamilyValues::by_label(
                &dkim::KEY_BITS,
                [("s1".to_owned(), 2048.0), ("s2".to_owned(), 0.0)],
            ),
        ]);
        let text = rendered(&table);
        for (policy, value) in [
            ("none", 0),
            ("quarantine", 1),
            ("reject", 0),
            ("missing", 0),
        ] {
            let line = format!(
                "maildrift_dmarc_policy_info{{domain=\"a.example\",policy=\"{policy}\"}} {value}\n"
            );
            assert!(text.contains(&line), "{line} not in {text}");
        }
        assert!(
            text.contains("maildrift_dkim_key_bits{domain=\"a.example\",selector=\"s1\"} 2048\n")
        );
        assert!(text.contains("maildrift_dkim_key_bits{domain=\"a.example\",selector=\"s2\"} 0\n"));
        row.set_gauges(&[
            FamilyValues::by_label(&dkim::KEY_BITS, []),
            FamilyValues::info(&dmarc::POLICY_INFO, "missing"),
        ]);
        let text = rendered(&table);
        assert!(!text.contains("selector=\"s1\""));
        assert!(text.contains("policy=\"missing\"} 1\n"));
    }

    #[test]
    fn by_default_zero_valued_and_per_record_series_are_left_out() {
        let table = DomainTable::default();
        let row = table.insert("a.example", &[CheckKind::Mx, CheckKind::Dmarc]);
        row.check(CheckKind::Dmarc).unwrap().findings[1].set(1.0);
        row.set_record("mx".into(), 12345, Some(300));
        row.set_gauges(&[FamilyValues::info(&dmarc::POLICY_INFO, "none")]);
        let mut text = String::new();
        table.render(&mut text, &families(), false);
        let series: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        for expected in [
            "maildrift_check_success{check=\"mx\",domain=\"a.example\"} 0",
            "maildrift_check_success{check=\"dmarc\",domain=\"a.example\"} 0",
            "maildrift_findings{check=\"dmarc\",domain=\"a.example\",severity=\"warning\"} 1",
            "maildrift_dmarc_policy_info{domain=\"a.example\",policy=\"none\"} 1",
            "maildrift_mx_records{domain=\"a.example\"} 0",
        ] {
            assert!(series.contains(&expected), "{expected} not in {series:#?}");
        }
        for absent in [
            "maildrift_drift{",
            "maildrift_last_check_timestamp_seconds{",
            "severity=\"critical\"",
            "maildrift_record_fingerprint{",
            "maildrift_record_ttl_seconds{",
            "policy=\"reject\"",
        ] {
            assert!(
                !series.iter().any(|l| l.contains(absent)),
                "{absent} shown by default: {series:#?}"
            );
        }
        assert!(
            text.contains("# TYPE maildrift_drift gauge"),
            "families still declared"
        );
    }

    #[test]
    fn values_are_written_as_the_float_formatter_writes_them() {
        for value in [
            0.0,
            1.0,
            -1.0,
            2048.0,
            1_764_641_234.0,
            0.5,
            -0.25,
            1e-9,
            123_456.789,
            4_503_599_627_370_495.0,
            9_007_199_254_740_992.0,
            1e300,
            f64::NAN,
            f64::INFINITY,
        ] {
            let mut out = String::new();
            push_value(&mut out, value);
            assert_eq!(out, format!("{value}"), "{value:?}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escaped("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(escaped("plain.example"), "plain.example");
    }
}
