//! Shared by the run-broker tests (`snp_broker.rs`, `tdx_broker.rs`): a guest that replays recorded evidence, and
//! one key dance against a broker on the loopback.

use std::net::TcpStream;
use std::time::Duration;

use loader::{AttestError, Attester, LoaderError, StreamTransport, obtain_key};
use protocol::tee::Tee;

/// Hands the broker the same evidence for `tee` whatever it asks for: a replay.
pub struct Replay {
    /// The TEE the replayed evidence claims.
    pub tee: Tee,
    /// The recorded evidence.
    pub evidence: Vec<u8>,
}

impl Attester for Replay {
    fn tee(&self) -> Tee {
        self.tee
    }

    fn evidence(&mut self, _: &[u8; 64]) -> Result<Vec<u8>, AttestError> {
        Ok(self.evidence.clone())
    }

    fn launch_binding(&mut self) -> Result<[u8; 48], AttestError> {
        Err(AttestError::Platform)
    }
}

/// One key dance for `key_id` with the broker on `port`; `Ok(())` if a key was released (the key itself is
/// dropped unseen).
pub fn dance(port: u16, attester: &mut impl Attester, key_id: [u8; 16]) -> Result<(), LoaderError<std::io::Error>> {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut rng = protocol::seal::rand_core::UnwrapErr(getrandom::SysRng);
    obtain_key(&mut StreamTransport(stream), attester, &mut rng, key_id, |_| {}).map(drop)
}
