//! The values a check exports besides its per-check series: per-domain gauge families it
//! declares ([`GaugeFamily`]), and series of objects shared by many domains
//! ([`SharedFamily`], e.g. a zone's SOA serial per nameserver), exported once per object.

use std::borrow::Cow;

/// The label values of one sample, in the family's label order. Values known at compile
/// time (a DMARC policy name) are borrowed, so most samples allocate nothing.
pub type Labels = Vec<Cow<'static, str>>;

/// How `maildrift check --format json` shows a family under `metrics`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonShape {
    /// `"key": value` (the family's one sample).
    Number(&'static str),
    /// `"key": {"<label value>": value, ...}` (the family's one label).
    ByLabel(&'static str),
    /// `"key": "<label value>"`: the label value whose sample is 1 (an `_info` family).
    Label(&'static str),
}

/// Which of a family's samples `/metrics` shows by default (`metrics.detail: false`); with
/// `metrics.detail: true` every sample is shown. SPEC.md's budget: at most 25 series per
/// domain by default, per-record and zero-valued detail behind the setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Export {
    /// Every sample.
    Always,
    /// Only samples that are not 0 (an `_info` family: the one value that holds).
    NonZero,
    /// Only with `metrics.detail: true` (per-record and per-resolver detail).
    Detail,
}

impl Export {
    /// Whether a sample of `value` is shown.
    pub fn shows(self, value: f64, detail: bool) -> bool {
        detail
            || match self {
                Export::Always => true,
                Export::NonZero => value != 0.0,
                Export::Detail => false,
            }
    }
}

/// A per-domain gauge family: `name{domain="…",<labels>} value`.
#[derive(Debug)]
pub struct GaugeFamily {
    /// The metric name.
    pub name: &'static str,
    /// The `# HELP` text.
    pub help: &'static str,
    /// Labels besides `domain`, in output order.
    pub labels: &'static [&'static str],
    /// Series exported from the moment a domain is watched, before its first conclusive
    /// run: (label values, value). Empty: the family appears once the value is known.
    pub initial: &'static [(&'static [&'static str], f64)],
    /// How the one-shot JSON report shows it (`None`: not shown).
    pub json: Option<JsonShape>,
    /// Which samples `/metrics` shows by default.
    pub export: Export,
}

impl PartialEq for GaugeFamily {
    /// Families are known by name.
    fn eq(&self, other: &GaugeFamily) -> bool {
        self.name == other.name
    }
}

/// The samples of one family for one domain, as a check run found them; they replace the
/// domain's previous samples of that family.
#[derive(Clone, Debug, PartialEq)]
pub struct FamilyValues {
    /// The family.
    pub family: &'static GaugeFamily,
    /// (label values in the family's label order, value).
    pub samples: Vec<(Labels, f64)>,
}

impl FamilyValues {
    /// A family without labels: its one value.
    pub fn one(family: &'static GaugeFamily, value: f64) -> FamilyValues {
        FamilyValues {
            family,
            samples: vec![(Vec::new(), value)],
        }
    }

    /// A family with one label: a value per label value.
    pub fn by_label(
        family: &'static GaugeFamily,
        samples: impl IntoIterator<Item = (String, f64)>,
    ) -> FamilyValues {
        FamilyValues {
            family,
            samples: samples
                .into_iter()
                .map(|(l, v)| (vec![Cow::Owned(l)], v))
                .collect(),
        }
    }

    /// An `_info` family: 1 for `current`, 0 for every other value of its `initial` series.
    pub fn info(family: &'static GaugeFamily, current: &str) -> FamilyValues {
        FamilyValues {
            family,
            samples: family
                .initial
                .iter()
                .map(|(labels, _)| {
                    let value = if labels.first() == Some(&current) {
                        1.0
                    } else {
                        0.0
                    };
                    (labels.iter().map(|l| Cow::Borrowed(*l)).collect(), value)
                })
                .collect(),
        }
    }

    /// The family's samples before the first conclusive run.
    pub fn initial(family: &'static GaugeFamily) -> FamilyValues {
        FamilyValues {
            family,
            samples: family
                .initial
                .iter()
                .map(|(labels, value)| (labels.iter().map(|l| Cow::Borrowed(*l)).collect(), *value))
                .collect(),
        }
    }
}

/// A family of series keyed by a shared object (a zone, an MX host): exported once per
/// object, however many domains use it.
#[derive(Debug)]
pub struct SharedFamily {
    /// The metric name.
    pub name: &'static str,
    /// The `# HELP` text.
    pub help: &'static str,
    /// Every label, in output order.
    pub labels: &'static [&'static str],
}

impl PartialEq for SharedFamily {
    /// Families are known by name.
    fn eq(&self, other: &SharedFamily) -> bool {
        self.name == other.name
    }
}

/// The series of one shared object as a domain's check run found them. They replace the
/// object's previous series; for each family a run reports, the domain leaves the objects
/// it used before and no longer reports. Empty `samples`: the domain uses the object, which
/// has no value (an MX host without a certificate).
#[derive(Clone, Debug, PartialEq)]
pub struct SharedValues {
    /// The family.
    pub family: &'static SharedFamily,
    /// The object (e.g. the zone name).
    pub object: String,
    /// (label values in the family's label order, value).
    pub samples: Vec<(Labels, f64)>,
}

impl SharedValues {
    /// The domain uses no object of `family` (any it used before leaves): a domain whose MX
    /// hosts are gone, or a check turned off.
    pub fn none(family: &'static SharedFamily) -> SharedValues {
        SharedValues {
            family,
            object: String::new(),
            samples: Vec::new(),
        }
    }
}
