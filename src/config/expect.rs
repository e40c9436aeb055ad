//! What a domain's mail DNS should look like: the `expect:` section and provider presets,
//! validated. The checks read these; the config owns them.

/// What a domain's mail DNS should look like; built from `expect:` and provider presets.
/// `None` means "not declared".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expectations {
    /// Expected MX hosts.
    pub mx: Option<MxExpectation>,
    /// Expected SPF shape.
    pub spf: Option<SpfExpectation>,
    /// Expected DMARC policy.
    pub dmarc: Option<DmarcExpectation>,
    /// DKIM selectors that must publish a key.
    pub dkim: Option<DkimExpectation>,
}

/// Expected DMARC policy (`p=`): "none", "quarantine" or "reject".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DmarcExpectation {
    /// The policy that must be published.
    pub policy: String,
}

/// DKIM selectors to check.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DkimExpectation {
    /// Selector names (the label before `._domainkey`).
    pub selectors: Vec<String>,
}

/// Expected MX host set (normalised names, order irrelevant; `.` is the null MX).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MxExpectation {
    /// Every host that should be an MX, and no other.
    pub hosts: Vec<String>,
}

/// Expected SPF shape.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpfExpectation {
    /// Domains that must appear as `include:` (anywhere in the expansion tree).
    pub includes: Vec<String>,
    /// The required final `all` term, e.g. "-all" or "~all".
    pub all: Option<String>,
    /// Sending connections that must get `pass` (evaluated by the SPF authorization check).
    pub authorizes: Vec<super::AuthorizedSender>,
    /// The exact record, white space collapsed (`v=spf1 -all` for a parked domain); any
    /// other record is drift.
    pub record: Option<String>,
}
