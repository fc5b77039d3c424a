//! The metric store: per series (namespace, metric name, sorted dimensions, unit) one
//! [`StatisticSet`] per minute, and per second for high-resolution data. Minutes are kept 15
//! days and seconds 3 hours, as CloudWatch keeps them. Writes append to a log under the data
//! directory that is replayed and compacted when the store opens, so series survive restarts.
//!
//! Memory is bounded by [`MAX_CELLS`], the number of (series, period) cells held at once:
//! 10,000 series reporting every minute for 15 days would be 216 million cells, so a put that
//! would pass the bound is refused with `LimitExceeded` rather than growing without end.

use super::{Datum, StatisticSet};
use crate::error::ApiError;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// How long one-minute data is kept: 15 days, in milliseconds.
pub const MINUTE_RETENTION_MS: i64 = 15 * 24 * 3600 * 1000;
/// How long one-second data is kept: 3 hours, in milliseconds.
pub const SECOND_RETENTION_MS: i64 = 3 * 3600 * 1000;
/// How long one-minute data of a single task (a `TaskId` dimension) is kept: tasks come and
/// go by the thousand, so their series would otherwise crowd out every other.
pub const TASK_RETENTION_MS: i64 = 3 * 3600 * 1000;

/// How long one-minute data of the series `key` is kept.
fn minute_retention(key: &SeriesKey) -> i64 {
    if key.dimensions.iter().any(|(name, _)| name == "TaskId") {
        TASK_RETENTION_MS
    } else {
        MINUTE_RETENTION_MS
    }
}
/// The most (series, period) cells held in memory (about 100 bytes each).
pub const MAX_CELLS: usize = 2_000_000;

/// Who a series is: what PutMetricData names and GetMetricStatistics matches exactly.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeriesKey {
    pub namespace: String,
    pub metric_name: String,
    /// Sorted by name.
    pub dimensions: Vec<(String, String)>,
    pub unit: String,
}

/// The cells of one series, by period start (epoch milliseconds).
#[derive(Debug, Clone, Default)]
pub struct Series {
    pub minutes: BTreeMap<i64, StatisticSet>,
    pub seconds: BTreeMap<i64, StatisticSet>,
    /// When data was last put (epoch milliseconds, server clock), for RecentlyActive.
    pub last_put: i64,
}

/// Series by key.
pub type SeriesMap = BTreeMap<SeriesKey, Series>;

#[derive(Debug, Default)]
struct Inner {
    series: SeriesMap,
    cells: usize,
    /// The log and how many lines it holds.
    log: Option<(File, usize)>,
    /// When cells past retention were last dropped (epoch milliseconds).
    swept: i64,
}

/// The metric series of the server.
#[derive(Debug, Default)]
pub struct MetricStore {
    path: Option<PathBuf>,
    inner: Mutex<Inner>,
}

/// One cell as the log stores it.
#[derive(serde::Serialize, serde::Deserialize)]
struct LogLine {
    n: String,
    m: String,
    d: Vec<(String, String)>,
    u: String,
    /// Period start, epoch milliseconds.
    t: i64,
    /// Period length in seconds: 60 or 1.
    r: u8,
    /// SampleCount, Sum, Minimum, Maximum.
    s: [f64; 4],
    /// When it was put (epoch milliseconds).
    p: i64,
}

/// The server clock in epoch milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Adds `more` to `set`.
pub fn merge(set: &mut StatisticSet, more: &StatisticSet) {
    set.sample_count += more.sample_count;
    set.sum += more.sum;
    set.minimum = set.minimum.min(more.minimum);
    set.maximum = set.maximum.max(more.maximum);
}

impl MetricStore {
    /// Opens the store under `data_dir` (in memory without one): replays the log of
    /// `data_dir/cloudwatch/metrics.log`, drops what is past retention and rewrites it compact.
    pub fn open(data_dir: Option<&Path>) -> std::io::Result<MetricStore> {
        let Some(dir) = data_dir else {
            return Ok(MetricStore::default());
        };
        let dir = dir.join("cloudwatch");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("metrics.log");
        let mut inner = Inner::default();
        if let Ok(file) = File::open(&path) {
            for line in BufReader::new(file).lines() {
                // A torn last line (a crash mid-write) is skipped, not fatal.
                let Ok(line) = serde_json::from_str::<LogLine>(&line?) else {
                    continue;
                };
                let key = SeriesKey {
                    namespace: line.n,
                    metric_name: line.m,
                    dimensions: line.d,
                    unit: line.u,
                };
                let [sample_count, sum, minimum, maximum] = line.s;
                let set = StatisticSet {
                    sample_count,
                    sum,
                    minimum,
                    maximum,
                };
                inner.add(key, line.t, line.r == 1, &set, line.p);
            }
        }
        inner.sweep(now_ms());
        let store = MetricStore {
            path: Some(path),
            inner: Mutex::new(inner),
        };
        store.compact()?;
        Ok(store)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves whole cells (each update is one assignment).
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Rewrites the log from memory (a temporary file renamed over it).
    fn compact(&self) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let mut inner = self.lock();
        let temporary = path.with_extension("log.tmp");
        let mut out = std::io::BufWriter::new(File::create(&temporary)?);
        let mut lines = 0;
        for (key, series) in &inner.series {
            for (minute, (start, set)) in series
                .minutes
                .iter()
                .map(|c| (true, c))
                .chain(series.seconds.iter().map(|c| (false, c)))
            {
                writeln!(
                    out,
                    "{}",
                    log_line(key, *start, !minute, set, series.last_put)
                )?;
                lines += 1;
            }
        }
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&temporary, path)?;
        let file = OpenOptions::new().append(true).open(path)?;
        inner.log = Some((file, lines));
        Ok(())
    }

    /// Stores `data` (the server's own writes, such as ECS's `AWS/ECS` utilisation; callers
    /// validate users' input first). Data past retention is dropped; all or nothing.
    pub fn put(&self, data: Vec<Datum>) -> Result<(), ApiError> {
        self.put_at(data.into_iter().map(|d| (d, false)).collect(), now_ms())
    }

    /// Stores `data` as of `now` (epoch milliseconds); a datum flagged high-resolution is also
    /// kept per second for 3 hours.
    pub fn put_at(&self, data: Vec<(Datum, bool)>, now: i64) -> Result<(), ApiError> {
        let mut inner = self.lock();
        if now - inner.swept >= 60_000 {
            inner.sweep(now);
            inner.swept = now;
        }
        let added: usize = data.iter().map(|(_, high)| if *high { 2 } else { 1 }).sum();
        if inner.cells + added > MAX_CELLS {
            return Err(ApiError::new(
                "LimitExceeded",
                format!("The metric store holds its limit of {MAX_CELLS} datapoints; it frees space as data ages past retention."),
            ));
        }
        // Cells to add: (series, period start, per second?, statistics).
        let mut cells = Vec::with_capacity(added);
        for (datum, high_resolution) in data {
            if datum.timestamp < now - MINUTE_RETENTION_MS {
                continue;
            }
            let mut dimensions = datum.dimensions;
            dimensions.sort();
            let key = SeriesKey {
                namespace: datum.namespace,
                metric_name: datum.metric_name,
                dimensions,
                unit: datum.unit,
            };
            if high_resolution && datum.timestamp >= now - SECOND_RETENTION_MS {
                let second = datum.timestamp.div_euclid(1000) * 1000;
                cells.push((key.clone(), second, true, datum.statistics));
            }
            let minute = datum.timestamp.div_euclid(60_000) * 60_000;
            cells.push((key, minute, false, datum.statistics));
        }
        // The log first: if the disk refuses, nothing of the call is stored.
        let compact = if let Some((file, count)) = &mut inner.log {
            let text: String = cells
                .iter()
                .map(|(key, start, second, set)| log_line(key, *start, *second, set, now) + "\n")
                .collect();
            file.write_all(text.as_bytes()).map_err(|e| {
                ApiError::server(format!("The metric log could not be written: {e}"))
            })?;
            *count += cells.len();
            *count > 2 * (inner.cells + cells.len()) + 100_000
        } else {
            false
        };
        for (key, start, second, set) in cells {
            inner.add(key, start, second, &set, now);
        }
        drop(inner);
        if compact {
            if let Err(e) = self.compact() {
                tracing::error!(error = %e, "could not compact the metric log");
            }
        }
        Ok(())
    }

    /// Runs `read` over the series (a consistent view: no write happens meanwhile).
    pub fn read<T>(&self, read: impl FnOnce(&SeriesMap) -> T) -> T {
        read(&self.lock().series)
    }
}

fn log_line(key: &SeriesKey, start: i64, second: bool, set: &StatisticSet, put: i64) -> String {
    let line = LogLine {
        n: key.namespace.clone(),
        m: key.metric_name.clone(),
        d: key.dimensions.clone(),
        u: key.unit.clone(),
        t: start,
        r: if second { 1 } else { 60 },
        s: [set.sample_count, set.sum, set.minimum, set.maximum],
        p: put,
    };
    serde_json::to_string(&line).unwrap_or_default()
}

impl Inner {
    fn add(&mut self, key: SeriesKey, start: i64, second: bool, set: &StatisticSet, put: i64) {
        let series = self.series.entry(key).or_default();
        series.last_put = series.last_put.max(put);
        let cells = if second {
            &mut series.seconds
        } else {
            &mut series.minutes
        };
        match cells.get_mut(&start) {
            Some(cell) => merge(cell, set),
            None => {
                cells.insert(start, *set);
                self.cells += 1;
            }
        }
    }

    /// Drops cells past retention, and series left empty.
    fn sweep(&mut self, now: i64) {
        let mut removed = 0;
        self.series.retain(|key, series| {
            let before = series.minutes.len() + series.seconds.len();
            series.minutes = series.minutes.split_off(&(now - minute_retention(key)));
            series.seconds = series.seconds.split_off(&(now - SECOND_RETENTION_MS));
            removed += before - series.minutes.len() - series.seconds.len();
            !series.minutes.is_empty()
        });
        self.cells -= removed.min(self.cells);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datum(metric: &str, at: i64, value: f64) -> Datum {
        Datum {
            namespace: "App".into(),
            metric_name: metric.into(),
            dimensions: vec![("B".into(), "2".into()), ("A".into(), "1".into())],
            timestamp: at,
            statistics: StatisticSet::single(value),
            unit: "Count".into(),
        }
    }

    const NOW: i64 = 1_796_083_200_000;

    #[test]
    fn store_merges_values_of_one_minute_and_sorts_dimensions() {
        let store = MetricStore::default();
        store
            .put_at(
                vec![
                    (datum("Hits", NOW - 50_000, 1.0), false),
                    (datum("Hits", NOW - 40_000, 3.0), false),
                ],
                NOW,
            )
            .expect("stored");
        store.read(|series| {
            let (key, series) = series.iter().next().expect("one series");
            assert_eq!(key.dimensions[0].0, "A");
            let cell = series.minutes.values().next().expect("one minute");
            assert_eq!(
                (cell.sample_count, cell.sum, cell.minimum, cell.maximum),
                (2.0, 4.0, 1.0, 3.0)
            );
        });
    }

    #[test]
    fn store_drops_data_older_than_fifteen_days() {
        let store = MetricStore::default();
        store
            .put_at(
                vec![(datum("Old", NOW - MINUTE_RETENTION_MS - 1, 1.0), false)],
                NOW,
            )
            .expect("stored");
        store
            .put_at(vec![(datum("New", NOW - 1000, 1.0), false)], NOW)
            .expect("stored");
        store
            .put_at(vec![], NOW + MINUTE_RETENTION_MS + 60_000)
            .expect("swept");
        assert!(store.read(|series| series.is_empty()));
    }

    #[test]
    fn a_single_tasks_series_is_kept_three_hours() {
        let store = MetricStore::default();
        let mut task = datum("CpuUtilized", NOW - 1000, 1.0);
        task.dimensions.push(("TaskId".into(), "abc".into()));
        let service = datum("CpuUtilized", NOW - 1000, 1.0);
        store
            .put_at(vec![(task, false), (service, false)], NOW)
            .expect("stored");
        store
            .put_at(vec![], NOW + TASK_RETENTION_MS + 60_000)
            .expect("swept");
        store.read(|series| {
            assert_eq!(
                series.len(),
                1,
                "the task's series is gone, the service's kept"
            );
            let (key, _) = series.iter().next().expect("one series");
            assert!(key.dimensions.iter().all(|(name, _)| name != "TaskId"));
        });
    }

    #[test]
    fn store_survives_reopening_and_keeps_high_resolution_seconds() {
        let dir = tempfile::tempdir().expect("temp dir");
        let now = now_ms();
        // Both seconds in one minute (the previous one), whatever the clock says: one minute
        // cell and two second cells.
        let minute = now - now % 60_000 - 60_000;
        {
            let store = MetricStore::open(Some(dir.path())).expect("opens");
            store
                .put_at(
                    vec![
                        (datum("Hits", minute + 30_000, 2.0), true),
                        (datum("Hits", minute + 31_000, 5.0), true),
                    ],
                    now,
                )
                .expect("stored");
        }
        let store = MetricStore::open(Some(dir.path())).expect("reopens");
        store.read(|series| {
            let series = series.values().next().expect("the series came back");
            assert_eq!(series.minutes.values().map(|c| c.sum).sum::<f64>(), 7.0);
            assert_eq!(series.seconds.len(), 2);
        });
        // Compaction rewrote the log with one line per cell.
        let text = std::fs::read_to_string(dir.path().join("cloudwatch/metrics.log")).expect("log");
        assert!(text.lines().count() <= 3);
    }
}
