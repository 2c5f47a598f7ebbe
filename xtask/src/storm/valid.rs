//! The valid work interleaved with the storm: sealed inferences on an attested connection to the guest, and key
//! dances with the broker; each timed and counted.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use broker::policy::Policy;
use client::GuestClient;
use loader::{SimulatedAttester, StreamTransport, obtain_key};
use protocol::message::KeyId;

/// How long a valid request may take before it counts as failed.
pub const VALID_TIMEOUT: Duration = Duration::from_secs(10);

/// Outcomes and latencies of valid requests.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    /// Round trips of those that succeeded.
    pub latencies: Vec<Duration>,
    /// How many failed, with the last reason.
    pub failed: usize,
    /// Why the last failure failed.
    pub last_failure: Option<String>,
}

impl Tally {
    fn record(&mut self, started: Instant, result: anyhow::Result<()>) {
        match result {
            Ok(()) => self.latencies.push(started.elapsed()),
            Err(e) => {
                self.failed += 1;
                self.last_failure = Some(format!("{e:#}"));
            }
        }
    }

    /// Requests made.
    pub fn total(&self) -> usize {
        self.latencies.len() + self.failed
    }

    /// Succeeded over made, in percent.
    pub fn success_percent(&self) -> f64 {
        if self.total() == 0 { 0.0 } else { 100.0 * self.latencies.len() as f64 / self.total() as f64 }
    }

    /// The `q` quantile (0..=1) of the successful round trips, in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        let mut ms: Vec<f64> = self.latencies.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        if ms.is_empty() {
            return f64::NAN;
        }
        ms[((ms.len() - 1) as f64 * q).round() as usize]
    }

    /// One line: success rate and latencies.
    pub fn summary(&self) -> String {
        format!(
            "{} of {} succeeded ({:.2}%; p50 {:.1} ms, p99 {:.1} ms){}",
            self.latencies.len(),
            self.total(),
            self.success_percent(),
            self.quantile_ms(0.5),
            self.quantile_ms(0.99),
            self.last_failure.as_ref().map(|f| format!("; last failure: {f}")).unwrap_or_default()
        )
    }
}

/// What a valid guest client sends.
pub struct GuestWork<'a> {
    /// The guest's service address.
    pub guest: SocketAddr,
    /// The policy its evidence must pass.
    pub policy: &'a Policy,
    /// An input the model accepts.
    pub input: &'a [f32],
}

impl GuestWork<'_> {
    /// One attested connection (evidence checked) carrying `inferences` sealed inferences; each inference is one
    /// request in `tally`, and a connection that fails to attest counts as one failed request.
    pub fn session(&self, inferences: usize, tally: &mut Tally) {
        let started = Instant::now();
        let mut client = match GuestClient::connect(self.guest, self.policy, VALID_TIMEOUT) {
            Ok(client) => client,
            Err(e) => return tally.record(started, Err(e)),
        };
        for _ in 0..inferences {
            let started = Instant::now();
            let result = client
                .infer(self.input)
                .and_then(|r| r.map(drop).map_err(|code| anyhow::anyhow!("refused: {}", code.as_str())));
            let failed = result.is_err();
            tally.record(started, result);
            if failed {
                return;
            }
        }
    }
}

/// Who the valid key dances claim to be: a plain-mode launch of `measurement` bound to `host_data`, asking for
/// `key_id`.
#[derive(Clone, Copy, Debug)]
pub struct DancingLaunch {
    /// The image's plain-mode measurement.
    pub measurement: [u8; 48],
    /// The launch's binding (the sealed model's digest, first 32 bytes).
    pub host_data: [u8; 32],
    /// The key the sealed model names.
    pub key_id: KeyId,
}

/// One valid key dance with the broker at `broker` as `launch`.
pub fn key_dance(broker: SocketAddr, launch: &DancingLaunch, tally: &mut Tally) {
    let started = Instant::now();
    let result = (|| {
        let stream = TcpStream::connect_timeout(&broker, VALID_TIMEOUT)?;
        stream.set_read_timeout(Some(VALID_TIMEOUT))?;
        stream.set_write_timeout(Some(VALID_TIMEOUT))?;
        let mut transport = StreamTransport(stream);
        let mut rng = protocol::seal::rand_core::UnwrapErr(getrandom::SysRng);
        let mut attester = SimulatedAttester::new(launch.measurement).with_host_data(launch.host_data);
        obtain_key(&mut transport, &mut attester, &mut rng, launch.key_id, |_| {})
            .map(drop)
            .map_err(|e| anyhow::anyhow!("key dance: {e:?}"))
    })();
    tally.record(started, result);
}
