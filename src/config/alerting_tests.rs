//! alerting config tests
