//! The audit log: one JSON line per decision (time, peer, TEE, measurement, decision, reason, key id; never key
//! material), written and made durable before the reply is sent. If it cannot be written, nothing is released.
//!
//! Crash safety: each record is formatted whole, newline included, and appended with one `write(2)`, so a broker
//! killed at any point leaves either the whole record or (a power cut mid-write, a full disk) a torn tail with no
//! newline. [`AuditLog::open`] finds such a tail, truncates the file back to its last newline, and records what it
//! removed as the first new line, so the repair itself is in the trail. A torn record was never followed by its
//! reply: the reply waits for the durable write.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Mutex;

use protocol::tee::Tee;
use serde_json::json;

use crate::decision::Decision;

/// How far back from the end [`AuditLog::open`] looks for the last newline before giving up and truncating the
/// whole tail: a record is a few hundred bytes, so a longer line is not one of ours.
const MAX_RECORD_LEN: u64 = 64 * 1024;

/// An append-only JSON-lines file.
pub struct AuditLog {
    file: Mutex<File>,
    repaired_bytes: u64,
}

impl AuditLog {
    /// Opens (creating if needed) the log at `path` for appending, first removing a torn last record if the
    /// previous process died while writing it (`time_ms` dates the repair record).
    pub fn open(path: &Path, time_ms: u64) -> std::io::Result<AuditLog> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).read(true).append(true).open(path)?;
        let repaired_bytes = remove_torn_tail(&file)?;
        let log = AuditLog { file: Mutex::new(file), repaired_bytes };
        if repaired_bytes > 0 {
            log.append(&json!({ "time_ms": time_ms, "event": "torn_record_removed", "bytes": repaired_bytes }))?;
        }
        Ok(log)
    }

    /// How many bytes of a torn last record [`AuditLog::open`] removed (0: the log ended cleanly).
    pub fn repaired_bytes(&self) -> u64 {
        self.repaired_bytes
    }

    /// Appends one decision and makes it durable.
    pub fn record(&self, time_ms: u64, peer: &str, tee: Option<Tee>, decision: &Decision) -> std::io::Result<()> {
        self.append(&json!({
            "time_ms": time_ms,
            "peer": peer,
            "tee": tee.map(Tee::as_str),
            "measurement": decision.measurement.as_ref().map(hex::encode),
            "decision": if decision.outcome.is_ok() { "released" } else { "refused" },
            "reason": decision.outcome.err().map(|c| c.as_str()),
            "key_id": decision.outcome.ok().map(hex::encode),
        }))
    }

    fn append(&self, record: &serde_json::Value) -> std::io::Result<()> {
        let mut line = record.to_string();
        line.push('\n');
        // One write(2) under the lock (records never interleave or tear at a kill); durability outside it, so that
        // concurrent decisions share the filesystem's journal commits instead of queueing one sync each. Either
        // way, the caller replies only after its own line is on disk.
        let handle = {
            let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
            file.write_all(line.as_bytes())?;
            file.try_clone()?
        };
        handle.sync_data()
    }
}

/// Truncates `file` after its last newline if it does not end with one; returns the bytes removed.
fn remove_torn_tail(mut file: &File) -> std::io::Result<u64> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(0);
    }
    let tail_len = len.min(MAX_RECORD_LEN);
    let mut tail = vec![0u8; tail_len as usize];
    file.seek(SeekFrom::Start(len - tail_len))?;
    file.read_exact(&mut tail)?;
    if tail.last() == Some(&b'\n') {
        return Ok(0);
    }
    let keep = match tail.iter().rposition(|&b| b == b'\n') {
        Some(at) => len - tail_len + at as u64 + 1,
        None if tail_len == len => 0,
        // No newline in the last MAX_RECORD_LEN bytes of a longer file: not a log this broker wrote.
        None => return Err(std::io::Error::other("the audit log's last line is not a record; refusing to append")),
    };
    file.set_len(keep)?;
    file.sync_all()?;
    Ok(len - keep)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("ampoule-audit-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("audit.jsonl")
    }

    #[test]
    fn a_torn_last_record_is_removed_and_the_repair_recorded() {
        let path = temp("torn");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "{\"a\":1}\n{\"decision\":\"rel").unwrap();
        let log = AuditLog::open(&path, 7).unwrap();
        assert_eq!(log.repaired_bytes(), 16);
        log.record(8, "peer", None, &Decision { measurement: None, tcb: None, version: None, outcome: Ok([1; 16]) })
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[1]["event"], "torn_record_removed");
        assert_eq!(lines[1]["bytes"], 16);
        assert_eq!(lines[2]["decision"], "released");
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn a_clean_or_empty_log_is_left_alone_and_a_torn_only_line_goes() {
        let path = temp("clean");
        assert_eq!(AuditLog::open(&path, 0).unwrap().repaired_bytes(), 0);
        std::fs::write(&path, "{\"a\":1}\n").unwrap();
        assert_eq!(AuditLog::open(&path, 0).unwrap().repaired_bytes(), 0);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":1}\n");
        std::fs::write(&path, "{\"a\"").unwrap();
        assert_eq!(AuditLog::open(&path, 0).unwrap().repaired_bytes(), 4);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("{\"") && text.contains("torn_record_removed"), "{text}");
    }

    #[test]
    fn a_file_whose_tail_is_no_record_is_refused_not_truncated() {
        let path = temp("foreign");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut text = String::from("{}\n");
        text.push_str(&"x".repeat(MAX_RECORD_LEN as usize + 1));
        std::fs::write(&path, &text).unwrap();
        assert!(AuditLog::open(&path, 0).is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    }

    #[test]
    fn concurrent_appends_never_interleave() {
        // That a kill never tears a record is shown by broker/tests/audit_kill.rs, which kills a real broker.
        let path = temp("concurrent");
        let log = std::sync::Arc::new(AuditLog::open(&path, 0).unwrap());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        log.append(&json!({ "t": t, "i": i, "pad": "p".repeat(300) })).unwrap();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().filter(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()).count(), 400);
    }
}
