//! Since when each zone's servers have disagreed on the SOA serial: the grace timer of
//! `ns_serial_mismatch`, kept by the nameservers check across rounds.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// A zone whose serials were last seen apart longer ago than this starts over: the zone
/// was not checked for a while (removed, or its domains reconfigured).
const SERIAL_MEMORY: Duration = Duration::from_secs(3600);

/// Since when each zone's servers have disagreed on the SOA serial. Shared by every domain
/// of a daemon (domains in one zone see the same servers); uses tokio's clock, so tests
/// run the grace period on a paused clock.
#[derive(Debug, Default)]
pub struct SerialTracker {
    /// Zone → (first seen apart, last seen apart).
    apart: Mutex<HashMap<String, (Instant, Instant)>>,
}

impl SerialTracker {
    /// Records one observation of `zone`: `apart` when its servers gave different serials.
    /// Returns how long they have been apart (zero on the first sighting), `None` when
    /// they agree.
    pub fn observe(&self, zone: &str, apart: bool) -> Option<Duration> {
        let now = Instant::now();
        let mut zones = self.apart.lock().expect("serial tracker poisoned");
        zones.retain(|_, (_, last)| now.duration_since(*last) < SERIAL_MEMORY);
        if !apart {
            zones.remove(zone);
            return None;
        }
        let entry = zones.entry(zone.to_owned()).or_insert((now, now));
        entry.1 = now;
        Some(now.duration_since(entry.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn serials_apart_accumulate_until_they_agree() {
        let tracker = SerialTracker::default();
        assert_eq!(tracker.observe("a.example", false), None);
        assert_eq!(tracker.observe("a.example", true), Some(Duration::ZERO));
        tokio::time::advance(Duration::from_secs(300)).await;
        assert_eq!(
            tracker.observe("a.example", true),
            Some(Duration::from_secs(300))
        );
        // Another zone has its own clock.
        assert_eq!(tracker.observe("b.example", true), Some(Duration::ZERO));
        assert_eq!(tracker.observe("a.example", false), None);
        assert_eq!(tracker.observe("a.example", true), Some(Duration::ZERO));
        // A zone not seen for longer than the memory starts over.
        tokio::time::advance(SERIAL_MEMORY + Duration::from_secs(1)).await;
        assert_eq!(tracker.observe("a.example", true), Some(Duration::ZERO));
    }
}
