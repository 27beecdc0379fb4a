//! The platforms' published API quotas and the `[aws.quotas]` / `[gcp.quotas]` settings that raise them: what
//! ripcord keeps to (`provider/quota.rs` paces every call within them). Here, with the configuration, because a
//! setting's default is the configuration's to know.

/// The share of each quota ripcord uses unless `quota_share` says otherwise: the rest is for the deploy tools,
/// consoles and scripts that share the account's or project's quota.
pub const DEFAULT_SHARE: f64 = 0.8;
/// Published default quotas, in calls per second (per-minute quotas divided by 60). What each limits is in
/// `provider/quota.rs`'s `Api`. Sources: the Lambda, CloudWatch, Cloud Run and Cloud Monitoring quota pages (2026).
pub mod published {
    /// Lambda control-plane API requests, per API (GetAlias, ListTags, UpdateAlias, TagResource, provisioned
    /// concurrency, ListVersionsByFunction): 15 a second each.
    pub const LAMBDA_PER_API: f64 = 15.0;
    /// Lambda GetFunction: 100 a second.
    pub const GET_FUNCTION: f64 = 100.0;
    /// CloudWatch GetMetricData: 50 transactions a second.
    pub const GET_METRIC_DATA: f64 = 50.0;
    /// CloudWatch ListMetrics: 25 transactions a second.
    pub const LIST_METRICS: f64 = 25.0;
    /// CodeDeploy PutLifecycleEventHookExecutionStatus (one per hook): 10 a second.
    pub const CODEDEPLOY: f64 = 10.0;
    /// Cloud Run Admin API read requests: 1,000 a minute per region.
    pub const RUN_READS_PER_MINUTE: f64 = 1_000.0;
    /// Cloud Run Admin API write requests: 180 a minute per region.
    pub const RUN_WRITES_PER_MINUTE: f64 = 180.0;
    /// Cloud Monitoring time-series queries (ListTimeSeries): 6,000 a minute per project.
    pub const MONITORING_READS_PER_MINUTE: f64 = 6_000.0;
}

/// Google Cloud's API quotas, in calls per minute, and the share of them ripcord uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GcpQuotas {
    pub run_reads_per_minute: f64,
    pub run_writes_per_minute: f64,
    pub monitoring_reads_per_minute: f64,
    /// The share of each quota ripcord uses (the rest is for deploy tools and people).
    pub share: f64,
}

impl Default for GcpQuotas {
    fn default() -> Self {
        Self {
            run_reads_per_minute: published::RUN_READS_PER_MINUTE,
            run_writes_per_minute: published::RUN_WRITES_PER_MINUTE,
            monitoring_reads_per_minute: published::MONITORING_READS_PER_MINUTE,
            share: DEFAULT_SHARE,
        }
    }
}

/// AWS's API quotas, in calls per second, and the share of them ripcord uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AwsQuotas {
    /// Lambda's control plane, per API (GetAlias, ListTags, UpdateAlias, TagResource, provisioned concurrency).
    pub lambda_per_api: f64,
    pub get_function: f64,
    pub get_metric_data: f64,
    pub list_metrics: f64,
    /// The share of each quota ripcord uses (the rest is for deploy tools and people).
    pub share: f64,
}

impl Default for AwsQuotas {
    fn default() -> Self {
        Self {
            lambda_per_api: published::LAMBDA_PER_API,
            get_function: published::GET_FUNCTION,
            get_metric_data: published::GET_METRIC_DATA,
            list_metrics: published::LIST_METRICS,
            share: DEFAULT_SHARE,
        }
    }
}
