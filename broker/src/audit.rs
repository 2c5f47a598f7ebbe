//! The audit log: one JSON line per decision (time, peer, TEE, measurement, decision, reason, key id; never key
//! material), written and flushed before the reply is sent. If it cannot be written, nothing is released.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use protocol::tee::Tee;
use serde_json::json;

use crate::decision::Decision;

/// An append-only JSON-lines file.
pub struct AuditLog {
    file: Mutex<File>,
}

impl AuditLog {
    /// Opens (creating if needed) the log at `path` for appending.
    pub fn open(path: &Path) -> std::io::Result<AuditLog> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(AuditLog { file: Mutex::new(file) })
    }

    /// Appends one decision and flushes it to the file.
    pub fn record(&self, time_ms: u64, peer: &str, tee: Option<Tee>, decision: &Decision) -> std::io::Result<()> {
        let line = json!({
            "time_ms": time_ms,
            "peer": peer,
            "tee": tee.map(Tee::as_str),
            "measurement": decision.measurement.as_ref().map(hex::encode),
            "decision": if decision.outcome.is_ok() { "released" } else { "refused" },
            "reason": decision.outcome.err().map(|c| c.as_str()),
            "key_id": decision.outcome.ok().map(hex::encode),
        });
        // Append under the lock (lines never interleave); make it durable outside it, so concurrent decisions
        // share the filesystem's journal commits instead of queueing one sync each. Either way, the caller
        // replies only after its own line is on disk.
        let handle = {
            let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
            writeln!(file, "{line}")?;
            file.flush()?;
            file.try_clone()?
        };
        handle.sync_data()
    }
}
