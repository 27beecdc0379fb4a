//! Time as ripcord reads and writes it: RFC 3339 timestamps (UTC, milliseconds) and durations written as text
//! (`5m`, `1h 30m`). Every module that parses or prints a time uses these, so they all agree.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Parses an RFC 3339 UTC timestamp such as `2026-11-26T10:00:00Z` to milliseconds since the epoch.
pub fn timestamp(text: &str) -> Result<i64, String> {
    let time = humantime::parse_rfc3339(text).map_err(|e| format!("invalid timestamp {text:?}: {e}"))?;
    Ok(millis_since_epoch(time))
}

/// Formats milliseconds since the epoch as RFC 3339.
pub fn format_timestamp(ms: i64) -> String {
    let time = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(time).to_string()
}

fn millis_since_epoch(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Parses a positive duration such as `5m` to milliseconds.
pub fn duration_ms(text: &str) -> Result<i64, String> {
    let d = humantime::parse_duration(text).map_err(|e| format!("invalid duration {text:?}: {e}"))?;
    match d.as_millis() {
        0 => Err(format!("duration {text:?} must be positive")),
        ms => i64::try_from(ms).map_err(|_| format!("duration {text:?} is too long")),
    }
}
