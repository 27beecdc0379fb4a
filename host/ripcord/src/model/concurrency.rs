//! Bounded concurrency inside one task: a fleet's deployments are read, and its guards' cycles run, many at a
//! time but never more than a limit (provider rate limits, sockets, memory), without spawning — the futures borrow
//! the controller, and the guards of one cycle share its time. Results come back in input order.

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use std::future::Future;
use std::pin::Pin;

/// A future borrowed for the duration of [`bounded`].
pub type Task<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Runs `tasks` with at most `limit` in flight; their outputs in the order of `tasks`. A task is taken from the
/// iterator only when a slot is free, so a lazy iterator (`.map(|g| Box::pin(...))`) allocates at most `limit`
/// futures at a time: a guard's cycle is a large future, and 10,000 of them built up front held 160 MiB. Only the
/// tasks that were woken are polled, so a large limit (a thousand rollbacks waiting together) costs nothing while
/// they wait.
pub async fn bounded<'a, T>(tasks: impl IntoIterator<Item = Task<'a, T>>, limit: usize) -> Vec<T> {
    let limit = limit.max(1);
    let mut results: Vec<Option<T>> = Vec::new();
    let mut waiting = tasks.into_iter().enumerate();
    let mut running = FuturesUnordered::new();
    let start = |(index, task): (usize, Task<'a, T>)| async move { (index, task.await) };
    running.extend(waiting.by_ref().take(limit).map(start));
    while let Some((index, output)) = running.next().await {
        if results.len() <= index {
            results.resize_with(index + 1, || None);
        }
        results[index] = Some(output);
        running.extend(waiting.next().map(start));
    }
    results.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_task_runs_at_most_limit_at_once_and_results_keep_their_order() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build();
        let runtime = runtime.unwrap_or_else(|e| panic!("{e}"));
        let (in_flight, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let tasks: Vec<Task<'_, usize>> = (0..50usize)
            .map(|n| {
                let (in_flight, most) = (&in_flight, &most);
                Box::pin(async move {
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(std::time::Duration::from_millis((50 - n as u64) % 7)).await;
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    n * 2
                }) as Task<'_, usize>
            })
            .collect();
        let results = runtime.block_on(bounded(tasks, 8));
        assert_eq!(results, (0..50).map(|n| n * 2).collect::<Vec<_>>());
        assert!(most.load(Ordering::SeqCst) <= 8, "{} at once", most.load(Ordering::SeqCst));
        assert!(most.load(Ordering::SeqCst) > 1, "they did overlap");
    }
}
