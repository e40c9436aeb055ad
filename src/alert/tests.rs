//! Alerting tests.
