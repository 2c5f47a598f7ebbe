//! The key dance from the guest's side (the logic is `loader`'s): network up, connect to the broker, attest,
//! receive the key. Every failure ends the run with a record naming it and `ExitCode::KeyNotReleased`.

use core::fmt;

use loader::{LoaderError, ReleasedKey, SimulatedAttester, Step, obtain_key};
use ovmf::exit::ExitCode;
use protocol::endpoint::{BROKER_GUEST_ADDRESS, BROKER_GUEST_PORT, KEY_ID_FW_CFG};
use protocol::message::KeyId;
use smoltcp::wire::Ipv4Address;

use crate::exit::exit;
use crate::net::Network;
use crate::rng::HardwareRng;
use crate::virtio_net::VirtioNet;
use crate::{fw_cfg, time};

/// The whole dance may take this long before it is abandoned.
const DANCE_TIMEOUT_MS: u64 = 20_000;

/// Formats bytes as lower-case hex in records (ids and measurements only: never secrets).
pub struct HexBytes<'a>(pub &'a [u8]);

impl fmt::Display for HexBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

fn parse_key_id(text: &[u8]) -> Option<KeyId> {
    let text = text.strip_suffix(b"\n").unwrap_or(text);
    if text.len() != 32 {
        return None;
    }
    let mut id = [0u8; 16];
    for (i, pair) in text.chunks(2).enumerate() {
        let digit = |c: u8| (c as char).to_digit(16);
        id[i] = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
    }
    Some(id)
}

fn fail(msg: &str, reason: &str) -> ! {
    log::error!(target: "loader", reason = reason; "{msg}");
    exit(ExitCode::KeyNotReleased)
}

/// The key id run-qemu configured, or `None` when no key dance is configured (a boot-only run).
pub fn configured_key_id() -> Option<KeyId> {
    let mut text = [0u8; 40];
    let len = fw_cfg::read_file(KEY_ID_FW_CFG, &mut text)?;
    match parse_key_id(&text[..len]) {
        Some(id) => Some(id),
        None => fail("configured key id is malformed", "bad-key-id"),
    }
}

/// Runs the dance for `key_id` as a guest measuring `measurement`; returns the key or ends the run.
pub fn obtain(measurement: [u8; 48], key_id: KeyId) -> ReleasedKey {
    let started = time::rdtsc();
    let ms = || time::cycles_to_ms(time::rdtsc().wrapping_sub(started));
    let nic = match VirtioNet::probe() {
        Ok(Some(nic)) => nic,
        Ok(None) => fail("no network device", "no-virtio-net"),
        Err(e) => fail("network device failed", e),
    };
    let mut network = Network::up(nic);
    let [a, b, c, d] = BROKER_GUEST_ADDRESS;
    let mut connection = match network.connect(Ipv4Address::new(a, b, c, d), BROKER_GUEST_PORT, DANCE_TIMEOUT_MS) {
        Ok(connection) => connection,
        Err(e) => fail("broker unreachable", e.as_str()),
    };
    log::info!(target: "loader", ms = ms(); "connected");
    let mut attester = SimulatedAttester::new(measurement);
    let result = obtain_key(&mut connection, &mut attester, &mut HardwareRng, key_id, |step| {
        if step == Step::Attested {
            log::info!(target: "loader", tee = "plain", ms = ms(); "attested");
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
