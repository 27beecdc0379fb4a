//! What a Cloud Run service's traffic says — which revision serves what share, whether the split is reconciled —
//! and the traffic entries ripcord writes. Kept apart from the client code in `cloud_run.rs` so the reading of a
//! split, which decides candidate and baseline, can be read (and tested) on its own.

use google_cloud_run_v2::model::{Service, TrafficTarget, TrafficTargetAllocationType};
use std::collections::BTreeMap;

/// The short name of a revision (`svc-00002-abc`) from its full name.
pub(super) fn short(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// A traffic entry: `percent` of the traffic to `revision`, under `tag` (none when empty).
pub(super) fn revision_target(revision: &str, percent: i32, tag: &str) -> TrafficTarget {
    TrafficTarget::new()
        .set_type(TrafficTargetAllocationType::Revision)
        .set_revision(revision)
        .set_percent(percent)
        .set_tag(tag)
}

/// What serves now, revision by revision (short names, shares in percent, revisions at 0% left out): the
/// reconciled split, falling back to the spec before the first reconciliation.
pub(super) fn shares(service: &Service) -> BTreeMap<String, i32> {
    let latest = short(&service.latest_ready_revision);
    let entries: Vec<(String, i32)> = if service.traffic_statuses.is_empty() {
        service.traffic.iter().map(|t| (resolve(&t.r#type, &t.revision, latest), t.percent)).collect()
    } else {
        service.traffic_statuses.iter().map(|t| (resolve(&t.r#type, &t.revision, latest), t.percent)).collect()
    };
    let mut shares: BTreeMap<String, i32> = BTreeMap::new();
    for (revision, percent) in entries.into_iter().filter(|(_, p)| *p > 0) {
        *shares.entry(revision).or_default() += percent;
    }
    shares
}

/// Whether the service's split is reconciled: the statuses equal the spec and its generation was observed.
pub(super) fn is_reconciled(service: &Service) -> bool {
    let spec: Vec<(&str, i32, &str)> =
        service.traffic.iter().map(|t| (t.revision.as_str(), t.percent, t.tag.as_str())).collect();
    let status: Vec<(&str, i32, &str)> =
        service.traffic_statuses.iter().map(|t| (t.revision.as_str(), t.percent, t.tag.as_str())).collect();
    !service.reconciling && spec == status && service.observed_generation == service.generation
}

/// Whether all of the service's reconciled traffic goes to `revision`.
pub(super) fn serves_only(service: &Service, revision: &str) -> bool {
    let latest = short(&service.latest_ready_revision);
    service
        .traffic_statuses
        .iter()
        .filter(|t| t.percent > 0)
        .all(|t| resolve(&t.r#type, &t.revision, latest) == revision)
}

/// The short name of the revision a traffic entry sends to: `LATEST` resolved to `latest`.
pub(super) fn resolve(kind: &TrafficTargetAllocationType, revision: &str, latest: &str) -> String {
    if *kind == TrafficTargetAllocationType::Latest || revision.is_empty() {
        latest.to_string()
    } else {
        short(revision).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use google_cloud_run_v2::model::TrafficTargetStatus;

    fn status(kind: TrafficTargetAllocationType, revision: &str, percent: i32) -> TrafficTargetStatus {
        TrafficTargetStatus::new().set_type(kind).set_revision(revision).set_percent(percent)
    }

    #[test]
    fn shares_resolve_latest_and_add_up_entries_of_one_revision() {
        let service = Service::new()
            .set_latest_ready_revision("projects/p/locations/l/services/s/revisions/s-00003")
            .set_traffic_statuses([
                status(TrafficTargetAllocationType::Revision, "s-00002", 60),
                status(TrafficTargetAllocationType::Latest, "", 30),
                status(TrafficTargetAllocationType::Revision, "s-00003", 10),
                status(TrafficTargetAllocationType::Revision, "s-00001", 0),
            ]);
        let shares = shares(&service);
        assert_eq!(shares.into_iter().collect::<Vec<_>>(), [("s-00002".into(), 60), ("s-00003".into(), 40)]);
        assert!(!serves_only(&service, "s-00003"));
    }

    #[test]
    fn the_spec_counts_until_the_first_reconciliation() {
        let service = Service::new().set_traffic([revision_target("s-00001", 100, "")]);
        assert_eq!(shares(&service).into_iter().collect::<Vec<_>>(), [("s-00001".into(), 100)]);
        assert!(!is_reconciled(&service), "no status yet");
    }
}
