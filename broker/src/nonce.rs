//! Challenge nonces: random, single use, expiring, and bound to the connection they were issued on.

use std::collections::HashMap;
use std::sync::Mutex;

use protocol::message::NONCE_LEN;
use protocol::refusal::RefusalCode;

/// The most outstanding nonces; beyond it the oldest are dropped (bounded memory under load).
const MAX_OUTSTANDING: usize = 65_536;

struct Issued {
    connection: u64,
    issued_ms: u64,
}

/// Outstanding nonces.
pub struct NonceStore {
    lifetime_ms: u64,
    issued: Mutex<HashMap<[u8; NONCE_LEN], Issued>>,
}

impl NonceStore {
    /// A store whose nonces live `lifetime_ms`.
    pub fn new(lifetime_ms: u64) -> Self {
        Self { lifetime_ms, issued: Mutex::new(HashMap::new()) }
    }

    /// A fresh nonce for `connection` at time `now_ms`.
    pub fn issue(&self, connection: u64, now_ms: u64) -> std::io::Result<[u8; NONCE_LEN]> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(std::io::Error::other)?;
        let mut issued = self.issued.lock().unwrap_or_else(|e| e.into_inner());
        issued.retain(|_, i| now_ms.saturating_sub(i.issued_ms) <= self.lifetime_ms);
        if issued.len() >= MAX_OUTSTANDING
            && let Some(oldest) = issued.iter().min_by_key(|(_, i)| i.issued_ms).map(|(n, _)| *n)
        {
            issued.remove(&oldest);
        }
        issued.insert(nonce, Issued { connection, issued_ms: now_ms });
        Ok(nonce)
    }

    /// Consumes `nonce` for `connection` at `now_ms`. A nonce is removed on first presentation, whatever the
    /// outcome: a replay, even after a refusal, finds nothing.
    pub fn take(&self, nonce: &[u8; NONCE_LEN], connection: u64, now_ms: u64) -> Result<(), RefusalCode> {
        let issued =
            self.issued.lock().unwrap_or_else(|e| e.into_inner()).remove(nonce).ok_or(RefusalCode::NonceUnknown)?;
        if now_ms.saturating_sub(issued.issued_ms) > self.lifetime_ms {
            return Err(RefusalCode::NonceExpired);
        }
        if issued.connection != connection {
            return Err(RefusalCode::NonceOtherConnection);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_good_once_on_its_connection_within_its_lifetime() {
        let store = NonceStore::new(1000);
        let n = store.issue(1, 0).unwrap();
        assert_eq!(store.take(&n, 1, 500), Ok(()));
        assert_eq!(store.take(&n, 1, 500), Err(RefusalCode::NonceUnknown));
        let n = store.issue(1, 0).unwrap();
        assert_eq!(store.take(&n, 1, 1001), Err(RefusalCode::NonceExpired));
        let n = store.issue(1, 0).unwrap();
        assert_eq!(store.take(&n, 2, 10), Err(RefusalCode::NonceOtherConnection));
        assert_eq!(store.take(&n, 1, 10), Err(RefusalCode::NonceUnknown), "a misused nonce is gone");
        assert_eq!(store.take(&[0; 32], 1, 0), Err(RefusalCode::NonceUnknown));
    }

    #[test]
    fn nonces_are_distinct() {
        let store = NonceStore::new(1000);
        assert_ne!(store.issue(1, 0).unwrap(), store.issue(1, 0).unwrap());
    }
}
