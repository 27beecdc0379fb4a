//! Reading metric series: the points of a window, per-window aggregates, and points over a time span.

use crate::{MetricKind, MetricSeries, Point};

impl MetricSeries {
    /// The points of window `index` (a slice: points are ordered by time, so their windows are too).
    pub fn window(&self, index: usize) -> &[Point] {
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        let start = self.points.partition_point(|p| p.window < index);
        let end = start + self.points[start..].partition_point(|p| p.window == index);
        &self.points[start..end]
    }

    /// The values of window `index`; empty when the platform reported nothing for it.
    pub fn values(&self, index: usize) -> Vec<f64> {
        self.window(index).iter().map(|p| p.value).collect()
    }

    /// Sum of window `index`; `None` when the window has no points. Meant for counters.
    pub fn sum(&self, index: usize) -> Option<f64> {
        self.window(index).iter().map(|p| p.value).reduce(|a, b| a + b)
    }

    /// Sum over several windows, counting only windows with points; `None` when none has any.
    pub fn sum_over(&self, windows: std::ops::Range<usize>) -> Option<f64> {
        windows.filter_map(|i| self.sum(i)).reduce(|a, b| a + b)
    }

    /// The window's value as its kind suggests: the sum for a counter, the median of the points otherwise.
    pub fn aggregate(&self, index: usize) -> Option<f64> {
        match self.kind {
            MetricKind::Counter => self.sum(index),
            MetricKind::Gauge | MetricKind::Distribution => {
                let values = self.values(index);
                if values.is_empty() { None } else { crate::stats::percentile(&values, 50.0) }
            }
        }
    }

    /// All values with a timestamp at or after `since_ms`.
    pub fn values_since(&self, since_ms: i64) -> Vec<f64> {
        let start = self.points.partition_point(|p| p.at < since_ms);
        self.points[start..].iter().map(|p| p.value).collect()
    }
}
