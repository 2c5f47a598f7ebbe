//! What /proc says about processes: children by command name, liveness, resident memory.

/// The pids of `parent`'s children whose command (`comm`, at most 15 bytes) is `comm`.
pub fn children(parent: u32, comm: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // `pid (comm) state ppid ...`: comm may hold spaces and parentheses, so split at its last `) `.
        let Some((head, tail)) = stat.rsplit_once(") ") else { continue };
        let name = head.split_once(" (").map_or("", |(_, n)| n);
        let ppid = tail.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(parent) && name == comm {
            found.push(pid);
        }
    }
    found
}

/// Whether `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit_once(") ").is_some_and(|(_, tail)| !tail.starts_with('Z')))
}

/// `pid`'s resident memory (VmRSS), in bytes.
pub fn resident_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().strip_suffix("kB")?.trim();
    kib.parse::<u64>().ok().map(|k| k * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_resident_and_a_child_is_found_by_name() {
        assert!(alive(std::process::id()));
        assert!(resident_bytes(std::process::id()).is_some_and(|b| b > 0));
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        let found = children(std::process::id(), "sleep");
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(found, vec![child.id()]);
        assert!(!alive(child.id()));
    }
}
