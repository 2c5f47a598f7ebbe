//! The key dance from the guest's side (the logic is `loader`'s): connect to the broker, attest, receive the key. Every failure ends the run with a record naming it and `ExitCode::KeyNotReleased`.

use core::fmt;

use loader::{Attester, LoaderError, ReleasedKey, Step, obtain_key};
use ovmf::exit::ExitCode;
use protocol::endpoint::{BROKER_GUEST_ADDRESS, BROKER_GUEST_PORT};
use protocol::message::KeyId;
use smoltcp::wire::Ipv4Address;

use crate::attester::GuestAttester;
use crate::exit::exit;
use crate::net::Network;
use crate::rng::HardwareRng;
use crate::time;

/// The whole dance may take this long before it is abandoned.
const DANCE_TIMEOUT_MS: u64 = 20_000;

/// Formats bytes as lower-case hex in records (ids and measurements only: never secrets).
pub struct HexBytes<'a>(pub &'a [u8]);

impl fmt::Display for HexBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// Ends the run with a loader error record.
pub fn fail(msg: &str, reason: &str) -> ! {
    log::error!(target: "loader", reason = reason; "{msg}");
    exit(ExitCode::KeyNotReleased)
}

/// Runs the dance over `network` for `key_id` (the one the image's sealed model names) with `attester`'s
/// evidence; returns the key or ends the run.
pub fn obtain(network: &mut Network, attester: &mut GuestAttester, key_id: KeyId) -> ReleasedKey {
    let started = time::rdtsc();
    let ms = || time::cycles_to_ms(time::rdtsc().wrapping_sub(started));
    let [a, b, c, d] = BROKER_GUEST_ADDRESS;
    let mut connection = match network.connect(Ipv4Address::new(a, b, c, d), BROKER_GUEST_PORT, DANCE_TIMEOUT_MS) {
        Ok(connection) => connection,
        Err(e) => fail("broker unreachable", e.as_str()),
    };
    log::info!(target: "loader", ms = ms(); "connected");
    let tee = attester.tee().as_str();
    let result = obtain_key(&mut connection, attester, &mut HardwareRng, key_id, |step| {
        if step == Step::Attested {
            log::info!(target: "loader", tee = tee, ms = ms(); "attested");
        }
    });
    match result {
        Ok(key) => {
            log::info!(target: "loader", key_id:% = HexBytes(&key.key_id), expires_at = key.expires_at, ms = ms();
                "key released");
            key
        }
        Err(LoaderError::Refused(code)) => fail("key refused", code.as_str()),
        Err(LoaderError::Transport(e)) => fail("key dance failed", e.as_str()),
        Err(LoaderError::Protocol(what)) => fail("key dance failed", what),
        Err(LoaderError::Attest(_)) => fail("key dance failed", "no-evidence"),
        Err(LoaderError::Seal(_)) => fail("key dance failed", "sealed-key-did-not-open"),
    }
}
