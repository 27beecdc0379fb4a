//! The audit trail: an append-only JSONL file, fsync'd after every record, with a `decision` record for every
//! cycle of every guard, an `intent` record before any change to a platform and a `result` record after it was
//! verified. The same records go to the structured log (target `ripcord::audit`) and, for intents and results, to
//! an optional webhook — delivered in the background, never on a change's path, and flushed with a bound at the
//! end of a cycle. If the process dies between intent and result, the intent without a result is the evidence.
//!
//! The file survives what disks do: a torn last line (power loss mid-write) is ended before the next record is
//! appended, and readers skip and count lines that are not records (torn, bad bytes) instead of refusing the log.

mod record;

use crate::record::notify::{Message, Severity, Webhook};

pub use record::{
    Action, Actor, DeploymentRecord, Evidence, HistoryRange, Kind, MAX_WINDOW_SUMMARIES, Outcome, PolicyRecord, Record,
    RevisionSummary, Timings, WindowSummary, Writer, unanswered,
};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The audit file could not be written. The I/O error is part of the message, not a source: printed with its
/// chain it would say the same thing twice.
#[derive(Debug, thiserror::Error)]
#[error("audit log {path}: {cause}")]
pub struct AuditError {
    path: PathBuf,
    cause: std::io::Error,
}

/// Writes audit records.
#[derive(Debug)]
pub struct Audit {
    path: PathBuf,
    /// The file, and whether records were written since its last `fsync`.
    file: Mutex<(std::fs::File, bool)>,
    webhook: Option<Webhook>,
}

impl Audit {
    /// Opens (creating) the audit file for appending; its folder must exist (a typo there is an error at start,
    /// never a tree of folders somewhere unexpected). A last line without its newline (the process or the
    /// machine stopped mid-write) is ended first, so the next record starts on a line of its own.
    pub fn open(path: &Path, webhook: Option<Webhook>) -> Result<Self, AuditError> {
        let fail = |cause| AuditError { path: path.into(), cause };
        let mut file = std::fs::OpenOptions::new().create(true).read(true).append(true).open(path).map_err(fail)?;
        if ends_mid_line(&mut file).map_err(fail)? {
            tracing::warn!(target: "ripcord::audit", path = %path.display(), "the audit log's last line was torn (cut mid-write); ending it");
            file.write_all(b"\n").and_then(|()| file.sync_data()).map_err(fail)?;
        }
        Ok(Self { path: path.into(), file: Mutex::new((file, false)), webhook })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `record` and logs it; intents, results and decisions with a finding (a shared degradation) are
    /// also queued for the webhook, which delivers them in the background (see [`Audit::flush_notifications`]).
    ///
    /// An intent or a result is durable (`fsync`) before this returns: a change is never made without its intent
    /// on disk. Decision records are written at once and made durable together — by the next intent or result, or
    /// by [`Audit::sync`] at the end of the cycle — so a cycle over 10,000 guards pays one `fsync`, not 10,000; a
    /// crash can lose the decisions of the cycle it interrupts, which the next cycle makes again.
    pub async fn write(&self, record: &Record) -> Result<(), AuditError> {
        let fail = |cause| AuditError { path: self.path.clone(), cause };
        let line = serde_json::to_string(record).map_err(|e| fail(std::io::Error::other(e)))?;
        {
            let mut guard = self.file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let (file, unsynced) = &mut *guard;
            file.write_all(format!("{line}\n").as_bytes()).map_err(fail)?;
            if record.record == Kind::Decision {
                *unsynced = true;
            } else {
                file.sync_data().map_err(fail)?;
                *unsynced = false;
            }
        }
        tracing::info!(target: "ripcord::audit", record = %line, "{:?} {} {}", record.record, record.guard, record.verdict);
        // Changes, findings, and what a person must answer or should know was answered.
        let approval = matches!(record.action, Action::AwaitApproval | Action::RejectRollback);
        if (record.record != Kind::Decision || !record.findings.is_empty() || approval)
            && let Some(webhook) = &self.webhook
        {
            webhook.send(message(record, line));
        }
        Ok(())
    }

    /// Makes every record written so far durable (one `fsync`, if any record is not yet); called at the end of a
    /// cycle. A failure is logged: the records are written, their durability is what is in doubt.
    pub async fn sync(&self) {
        let mut guard = self.file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (file, unsynced) = &mut *guard;
        if *unsynced {
            match file.sync_data() {
                Ok(()) => *unsynced = false,
                Err(error) => {
                    tracing::error!(path = %self.path.display(), %error, "cannot make the cycle's decision records durable")
                }
            }
        }
    }

    /// Waits until the queued notifications are delivered (or given up), but not past `until`; what is still
    /// queued then is logged as undelivered. Called at the end of a cycle, after its changes.
    pub async fn flush_notifications(&self, until: tokio::time::Instant) {
        if let Some(webhook) = &self.webhook {
            webhook.flush(until).await;
        }
    }

    /// Intents without a result, oldest first: changes still in flight in another process, or interrupted
    /// (the process died between the intent and the result). Streams the file with one reused buffer and parses
    /// only intents and results — records are written with `record` as their first field, so a line's first bytes
    /// say what it is — so a long log of decisions costs a scan, not a parse (`benches/audit.rs`).
    pub fn open_intents(path: &Path) -> std::io::Result<Vec<Record>> {
        use std::io::BufRead;
        const INTENT: &[u8] = br#"{"record":"intent""#;
        const RESULT: &[u8] = br#"{"record":"result""#;
        let file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        // Only a regular file holds records (a device such as /dev/full would be read without end).
        if !file.metadata()?.is_file() {
            return Ok(Vec::new());
        }
        let mut reader = std::io::BufReader::with_capacity(1 << 16, file);
        let mut line = Vec::new();
        let mut failed = None;
        let changes = std::iter::from_fn(|| {
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) => return None,
                    Ok(_) if line.starts_with(INTENT) || line.starts_with(RESULT) => {
                        if let Ok(record) = serde_json::from_slice::<Record>(&line) {
                            return Some(record);
                        }
                    }
                    Ok(_) => {}
                    Err(error) => {
                        failed = Some(error);
                        return None;
                    }
                }
            }
        });
        let open = unanswered(changes);
        failed.map_or(Ok(open), Err)
    }

    /// Every record in an audit file, skipping lines that are not records (see [`Audit::load`]).
    pub fn read(path: &Path) -> std::io::Result<Vec<Record>> {
        Self::load(path).map(|log| log.records)
    }

    /// Every record in an audit file, and the lines that are not records (a torn line after a crash, bytes that
    /// are not UTF-8, a line someone edited): those are skipped and counted, never a reason to refuse the log. A
    /// missing file is an empty log; [`Audit::load_existing`] says it is missing.
    pub fn load(path: &Path) -> std::io::Result<AuditLog> {
        match Self::load_existing(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(AuditLog::default()),
            other => other,
        }
    }

    /// Like [`Audit::load`], but a missing file is an error.
    pub fn load_existing(path: &Path) -> std::io::Result<AuditLog> {
        let bytes = std::fs::read(path)?;
        let mut log = AuditLog::default();
        for (number, line) in bytes.split(|b| *b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<Record>(line) {
                Ok(record) => log.records.push(record),
                Err(_) => log.damaged.push(number + 1),
            }
        }
        Ok(log)
    }
}

/// The records of an audit file, and the numbers of its lines that are not records.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditLog {
    pub records: Vec<Record>,
    /// 1-based line numbers of the damaged lines.
    pub damaged: Vec<usize>,
}

impl AuditLog {
    /// A note for people about damaged lines, if there are any.
    pub fn damage_note(&self, path: &Path) -> Option<String> {
        let first = self.damaged.first()?;
        Some(format!(
            "{}: skipped {} damaged line{} (not an audit record; first at line {first})",
            path.display(),
            self.damaged.len(),
            if self.damaged.len() == 1 { "" } else { "s" }
        ))
    }
}

/// Whether the file's last byte is not a newline (a line was cut mid-write).
fn ends_mid_line(file: &mut std::fs::File) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    if file.metadata()?.len() == 0 {
        return Ok(false);
    }
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8];
    file.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

/// The notification for `record` (whose JSON is `line`).
fn message(record: &Record, line: String) -> Message {
    let severity = match (record.record, record.outcome) {
        (Kind::Result, Some(Outcome::Pinned)) => Severity::Done,
        (Kind::Result, Some(Outcome::Failed | Outcome::Aborted)) => Severity::Failed,
        _ => Severity::Info,
    };
    Message { headline: record.headline(), severity, json: line }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Mode;

    fn record(kind: Kind, id: &str) -> Record {
        Record {
            action: Action::Rollback,
            target: Some("1".into()),
            writer: Some(Writer::this_process()),
            ..Record::new(kind, id.into(), 0, "g", Actor::Schedule, Mode::Enforce)
        }
    }

    #[test]
    fn open_intents_are_the_intents_without_a_result() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("audit.jsonl");
        let lines: Vec<String> = [
            record(Kind::Decision, "a"),
            record(Kind::Intent, "a"),
            record(Kind::Result, "a"),
            record(Kind::Decision, "b"),
            record(Kind::Intent, "b"),
        ]
        .iter()
        .map(|r| serde_json::to_string(r).unwrap_or_default())
        .collect();
        // The scan relies on `record` being the first field of every line.
        assert!(lines[1].starts_with(r#"{"record":"intent""#), "{}", lines[1]);
        // A torn last line (the process died mid-write) is not a record.
        let text = format!("{}\n{{\"record\":\"intent\",\"id\":\"c", lines.join("\n"));
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        let open = Audit::open_intents(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(open.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["b"]);
        assert!(Audit::open_intents(&dir.path().join("none.jsonl")).is_ok_and(|o| o.is_empty()));
    }

    #[tokio::test]
    async fn a_torn_last_line_is_ended_before_the_next_record() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("audit.jsonl");
        let intent = serde_json::to_string(&record(Kind::Intent, "a")).unwrap_or_default();
        std::fs::write(&path, format!("{intent}\n{{\"record\":\"result\",\"id\":\"a"))
            .unwrap_or_else(|e| panic!("{e}"));
        let audit = Audit::open(&path, None).unwrap_or_else(|e| panic!("{e}"));
        audit.write(&record(Kind::Result, "a")).await.unwrap_or_else(|e| panic!("{e}"));
        let log = Audit::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(log.records.iter().map(|r| r.record).collect::<Vec<_>>(), [Kind::Intent, Kind::Result]);
        assert_eq!(log.damaged, [2], "the torn fragment is a damaged line of its own");
        assert!(Audit::open_intents(&path).is_ok_and(|open| open.is_empty()), "the result answers the intent");
    }

    #[test]
    fn lines_that_are_not_records_are_skipped_and_counted() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("audit.jsonl");
        let decision = serde_json::to_string(&record(Kind::Decision, "a")).unwrap_or_default();
        let mut bytes = format!("{decision}\n").into_bytes();
        bytes.extend_from_slice(b"\xff\xfe not utf-8 \x80\n\n{\"record\": 3}\n");
        bytes.extend_from_slice(format!("{decision}\n").as_bytes());
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{e}"));
        let log = Audit::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(log.records.len(), 2);
        assert_eq!(log.damaged, [2, 4]);
        let note = log.damage_note(&path).unwrap_or_default();
        assert!(note.ends_with("skipped 2 damaged lines (not an audit record; first at line 2)"), "{note}");
        assert!(Audit::load(&dir.path().join("missing.jsonl")).is_ok_and(|l| l.records.is_empty()));
        assert!(Audit::load_existing(&dir.path().join("missing.jsonl")).is_err());
    }

    #[test]
    fn actions_and_outcomes_are_written_as_documented() {
        let mut record = record(Kind::Result, "a");
        record.action = Action::RecordKnownGood;
        record.outcome = Some(Outcome::AlreadyPinned);
        let line = serde_json::to_value(&record).unwrap_or_default();
        assert_eq!(
            (line["action"].as_str(), line["outcome"].as_str()),
            (Some("record-known-good"), Some("already-pinned"))
        );
        assert_eq!(Action::StandbyPrewarm.to_string(), "standby-prewarm");
        assert_eq!(Outcome::Interrupted.to_string(), "interrupted");
    }

    #[test]
    fn a_writer_is_stopped_only_when_known_gone() {
        let me = Writer::this_process();
        assert!(!me.has_stopped(), "this process is running");
        let elsewhere = Writer { host: format!("{}-elsewhere", me.host), pid: u32::MAX };
        assert!(!elsewhere.has_stopped(), "another host cannot be told");
        let gone = Writer { host: me.host.clone(), pid: u32::MAX };
        assert_eq!(gone.has_stopped(), Path::new("/proc/self").exists());
    }
}
