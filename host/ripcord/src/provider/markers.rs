//! The markers ripcord keeps on a platform resource (Lambda function tags, Cloud Run service annotations), so a
//! scheduled run needs no local state: their names and the one codec for their values. Each provider only says
//! where a marker lives (`ripcord:known-good:ALIAS`, `ripcord.dev/known-good`).

use super::{Approval, ApprovalState, Capacity, Mark, Release, Rollout};

/// What a marker records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// The last known good revision.
    KnownGood,
    /// When ripcord last rolled back (ms since the epoch): the cooldown.
    RolledBackAt,
    /// Capacity ripcord added and when it goes: `REVISION@DUE_MS` or `REVISION@standby`.
    Prewarm,
    /// The candidate's rollout: `REVISION@FIRST_TRAFFIC_MS`, then `REVISION@FIRST_TRAFFIC_MS@ALL_TRAFFIC_MS` once it
    /// serves all traffic. Where its evidence starts, and when its bake started.
    Rollout,
    /// A pending rollback (`pending@CANDIDATE@TARGET@SINCE_MS`) or a rejected one (`rejected@CANDIDATE@SINCE_MS`).
    Approval,
}

impl Marker {
    /// The marker's name inside a tag key or annotation key.
    pub fn name(self) -> &'static str {
        match self {
            Self::KnownGood => "known-good",
            Self::RolledBackAt => "rolled-back-at",
            Self::Prewarm => "prewarm",
            Self::Rollout => "rollout",
            Self::Approval => "approval",
        }
    }
}

/// The marker a mark writes, and its value (`None`: remove the marker).
pub fn encode(mark: &Mark) -> (Marker, Option<String>) {
    match mark {
        Mark::KnownGood(revision) => (Marker::KnownGood, Some(revision.clone())),
        Mark::RolledBackAt(ms) => (Marker::RolledBackAt, Some(ms.to_string())),
        Mark::ClearRolledBackAt => (Marker::RolledBackAt, None),
        Mark::Capacity(Capacity { revision, release }) => {
            let when = match release {
                Release::At(due) => due.to_string(),
                Release::WhenPromoted => "standby".to_string(),
            };
            (Marker::Prewarm, Some(format!("{revision}@{when}")))
        }
        Mark::ClearCapacity => (Marker::Prewarm, None),
        Mark::Rollout(Rollout { revision, first_traffic_ms, all_traffic_ms }) => {
            let all = all_traffic_ms.map(|ms| format!("@{ms}")).unwrap_or_default();
            (Marker::Rollout, Some(format!("{revision}@{first_traffic_ms}{all}")))
        }
        Mark::ClearRollout => (Marker::Rollout, None),
        Mark::Approval(Approval { candidate, state, since_ms }) => {
            let value = match state {
                ApprovalState::Pending { target } => format!("pending@{candidate}@{target}@{since_ms}"),
                ApprovalState::Rejected => format!("rejected@{candidate}@{since_ms}"),
            };
            (Marker::Approval, Some(value))
        }
        Mark::ClearApproval => (Marker::Approval, None),
    }
}

/// The markers found on a resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Markers {
    pub known_good: Option<String>,
    pub last_rollback_ms: Option<i64>,
    pub capacity: Option<Capacity>,
    pub rollout: Option<Rollout>,
    pub approval: Option<Approval>,
}

impl Markers {
    /// Reads the markers with `get` (a marker's value on the resource, if set); a value that does not parse is
    /// taken as absent.
    pub fn decode<'a>(get: impl Fn(Marker) -> Option<&'a str>) -> Self {
        let capacity = get(Marker::Prewarm).and_then(|value| {
            let (revision, release) = value.split_once('@')?;
            let release = match release {
                "standby" => Release::WhenPromoted,
                due => Release::At(due.parse().ok()?),
            };
            Some(Capacity { revision: revision.to_string(), release })
        });
        let rollout = get(Marker::Rollout).and_then(|value| {
            let mut parts = value.split('@');
            let revision = parts.next().filter(|r| !r.is_empty())?.to_string();
            let first_traffic_ms = parts.next()?.parse().ok()?;
            let all_traffic_ms = match parts.next() {
                Some(ms) => Some(ms.parse().ok()?),
                None => None,
            };
            parts.next().is_none().then_some(Rollout { revision, first_traffic_ms, all_traffic_ms })
        });
        let approval = get(Marker::Approval).and_then(|value| {
            let parts: Vec<&str> = value.split('@').collect();
            let (candidate, state, since) = match parts.as_slice() {
                ["pending", candidate, target, since] if !target.is_empty() => {
                    (candidate, ApprovalState::Pending { target: target.to_string() }, since)
                }
                ["rejected", candidate, since] => (candidate, ApprovalState::Rejected, since),
                _ => return None,
            };
            let since_ms = since.parse().ok()?;
            (!candidate.is_empty()).then(|| Approval { candidate: candidate.to_string(), state, since_ms })
        });
        Self {
            rollout,
            approval,
            known_good: get(Marker::KnownGood).map(str::to_string),
            last_rollback_ms: get(Marker::RolledBackAt).and_then(|v| v.parse().ok()),
            capacity,
        }
    }
}

impl Markers {
    /// Applies `mark`, as writing it on the resource would.
    pub fn apply(&mut self, mark: &Mark) {
        match mark {
            Mark::KnownGood(revision) => self.known_good = Some(revision.clone()),
            Mark::RolledBackAt(ms) => self.last_rollback_ms = Some(*ms),
            Mark::ClearRolledBackAt => self.last_rollback_ms = None,
            Mark::Capacity(capacity) => self.capacity = Some(capacity.clone()),
            Mark::ClearCapacity => self.capacity = None,
            Mark::Rollout(rollout) => self.rollout = Some(rollout.clone()),
            Mark::ClearRollout => self.rollout = None,
            Mark::Approval(approval) => self.approval = Some(approval.clone()),
            Mark::ClearApproval => self.approval = None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn every_mark_reads_back_as_written() {
        let marks = [
            Mark::KnownGood("7".into()),
            Mark::RolledBackAt(1_795_683_900_000),
            Mark::Capacity(Capacity { revision: "svc-00001-aaa".into(), release: Release::At(1_795_684_000_000) }),
            Mark::Rollout(Rollout {
                revision: "svc-00002-bbb".into(),
                first_traffic_ms: 1_795_683_000_000,
                all_traffic_ms: Some(1_795_683_600_000),
            }),
        ];
        let stored: HashMap<&str, String> =
            marks.iter().map(encode).filter_map(|(marker, value)| Some((marker.name(), value?))).collect();
        let read = Markers::decode(|marker| stored.get(marker.name()).map(String::as_str));
        assert_eq!(read.known_good.as_deref(), Some("7"));
        assert_eq!(read.last_rollback_ms, Some(1_795_683_900_000));
        assert_eq!(
            read.capacity,
            Some(Capacity { revision: "svc-00001-aaa".into(), release: Release::At(1_795_684_000_000) })
        );
        let rollout = read.rollout.unwrap_or_else(|| panic!("the rollout marker"));
        assert_eq!((rollout.revision.as_str(), rollout.first_traffic_ms), ("svc-00002-bbb", 1_795_683_000_000));
        assert_eq!(rollout.all_traffic_ms, Some(1_795_683_600_000));
        let canary = Rollout { revision: "3".into(), first_traffic_ms: 5, all_traffic_ms: None };
        assert_eq!(encode(&Mark::Rollout(canary)), (Marker::Rollout, Some("3@5".to_string())));
        assert_eq!(encode(&Mark::ClearRollout), (Marker::Rollout, None));
        let standby = encode(&Mark::Capacity(Capacity { revision: "3".into(), release: Release::WhenPromoted }));
        assert_eq!(standby, (Marker::Prewarm, Some("3@standby".to_string())));
        assert_eq!(encode(&Mark::ClearCapacity), (Marker::Prewarm, None));
        for state in [ApprovalState::Pending { target: "svc-00001-aaa".into() }, ApprovalState::Rejected] {
            let approval = Approval { candidate: "svc-00002-bbb".into(), state, since_ms: 1_795_683_000_000 };
            let (marker, value) = encode(&Mark::Approval(approval.clone()));
            let read = Markers::decode(|m| (m == marker).then_some(value.as_deref()).flatten());
            assert_eq!(read.approval, Some(approval));
        }
        assert_eq!(encode(&Mark::ClearApproval), (Marker::Approval, None));
    }

    #[test]
    fn a_damaged_marker_is_absent() {
        let read = Markers::decode(|marker| match marker {
            Marker::Prewarm => Some("no-at-sign"),
            Marker::RolledBackAt => Some("yesterday"),
            Marker::KnownGood => None,
            Marker::Rollout => Some("3@5@6@7"),
            Marker::Approval => Some("pending@3@@5"),
        });
        assert_eq!(read, Markers::default());
    }
}
