//! The simulated platform's firmware (for an SNP guest the PSP, for a TD the TDX module's reporting and a
//! quote-generation service), served to the hypervisor over COM2 (`-serial tcp:127.0.0.1:PORT`) with
//! `simulated_firmware::SimulatedPsp`: the one implementation of the firmware's guest-message service, tested
//! against the guest's request code and the broker. The hypervisor tells it what the launch produced (measurement,
//! policy, HOST_DATA, VMPCK0) and passes it the guest's messages; it answers with reports signed by the platform's
//! VCEK, whose chain (ARK -> ASK -> VCEK, in AMD's shape) it writes as files for the broker. For a TD it answers
//! with TDREPORTs and with quotes its quoting enclave signs under the simulated Intel PKI, whose root CA and
//! collateral it writes as files for the broker.
//!
//! Decided here rather than in the hypervisor: the VCEK's private key and its curve arithmetic stay out of the
//! bare-metal image (as a real PSP keeps them out of the host), and the PSP that answers the simulated guest is the
//! same code that the host tests already check.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use p384::ecdsa::SigningKey;
use protocol::tdx::TDREPORT_LEN;
use simulated_firmware::certificates::{TestChain, VcekSubject};
use simulated_firmware::dcap::collateral::{Collateral, CollateralSpec};
use simulated_firmware::dcap::pki::SimulatedIntelPki;
use simulated_firmware::dcap::{Dates, SIMULATED_PLATFORM};
use simulated_firmware::{QuoteService, SimulatedPsp, SimulatedTdx};
use simulated_platform::firmware_channel::{self, HEADER_LEN, Kind, Launched, TdLaunched};

/// The platform's VCEK: a fixed test key (nothing about the simulated platform is secret).
const VCEK_SCALAR: [u8; 48] = [0x5e; 48];
/// The seed of the chain's RSA keys.
const CHAIN_SEED: u64 = 0x5e5e;
/// What the simulated PSP reports and its VCEK names: REPORTED_TCB (boot loader 3, TEE 0, SNP 8, microcode 115,
/// Milan's layout) and CHIP_ID.
pub const REPORTED_TCB: [u8; 8] = [3, 0, 0, 0, 0, 0, 8, 115];
/// The TCB's SVNs as the broker's `min_tcb` names them.
pub const TCB_SVNS: [u8; 4] = [3, 0, 8, 115];
const CHIP_ID: [u8; 64] = [0xc1; 64];

/// The certificate files of the platform's chain.
#[derive(Clone, Debug)]
pub struct ChainFiles {
    /// The ARK.
    pub ark: PathBuf,
    /// The ASK.
    pub ask: PathBuf,
    /// The VCEK.
    pub vcek: PathBuf,
}

/// Writes the platform's chain into `dir` (DER).
pub fn write_chain(dir: &Path) -> Result<ChainFiles> {
    std::fs::create_dir_all(dir)?;
    let vcek = SigningKey::from_slice(&VCEK_SCALAR).expect("a valid P-384 scalar");
    let chain = TestChain::new(CHAIN_SEED, &vcek, &VcekSubject { tcb: TCB_SVNS, chip_id: &CHIP_ID });
    let files = ChainFiles { ark: dir.join("ark.der"), ask: dir.join("ask.der"), vcek: dir.join("vcek.der") };
    for (path, der) in [(&files.ark, &chain.ark), (&files.ask, &chain.ask), (&files.vcek, &chain.vcek)] {
        std::fs::write(path, der).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(files)
}

/// The simulated Intel platform's files for the broker: its root CA and its collateral.
#[derive(Clone, Debug)]
pub struct TdxCollateralFiles {
    /// The root CA (DER): the broker's `root_ca`.
    pub root_ca: PathBuf,
    /// The collateral (JSON, as dcap-qvl reads it): the broker's `collateral`.
    pub collateral: PathBuf,
}

/// Writes the simulated Intel platform's root CA and collateral into `dir`; the collateral is issued an hour before
/// `now` (Unix seconds) and valid for 30 days, as Intel's PCS dates it.
pub fn write_tdx_collateral(dir: &Path, now: u64) -> Result<TdxCollateralFiles> {
    std::fs::create_dir_all(dir)?;
    let pki = SimulatedIntelPki::new(&SIMULATED_PLATFORM);
    let collateral = Collateral::new(&pki, &SIMULATED_PLATFORM, &CollateralSpec::current(Dates::current(now)));
    let files = TdxCollateralFiles { root_ca: dir.join("sgx-root-ca.der"), collateral: dir.join("collateral.json") };
    for (path, bytes) in
        [(&files.root_ca, pki.root.certificate.as_slice()), (&files.collateral, collateral.to_json().as_bytes())]
    {
        std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(files)
}

/// The PSP, listening for the hypervisor's connection.
pub struct PspService {
    /// The loopback port QEMU's COM2 connects to.
    pub port: u16,
    thread: Option<JoinHandle<Result<u64>>>,
}

impl PspService {
    /// Listens on a loopback port; serves the first connection until it closes or `deadline` passes.
    pub fn start(deadline: Duration) -> Result<PspService> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding a loopback port for the PSP")?;
        let port = listener.local_addr()?.port();
        let thread = std::thread::spawn(move || serve(listener, Instant::now() + deadline));
        Ok(PspService { port, thread: Some(thread) })
    }

    /// QEMU's argument for COM2, after the console's `-serial`.
    pub fn serial_args(&self) -> [String; 2] {
        ["-serial".into(), format!("tcp:127.0.0.1:{}", self.port)]
    }

    /// Waits for the connection to end; the number of guest messages answered.
    pub fn finish(mut self) -> Result<u64> {
        self.thread.take().expect("joined once").join().map_err(|_| anyhow::anyhow!("the PSP thread panicked"))?
    }
}

fn serve(listener: TcpListener, deadline: Instant) -> Result<u64> {
    listener.set_nonblocking(true)?;
    let mut stream = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e).context("QEMU never connected to the PSP"),
        }
    };
    stream.set_nonblocking(false)?;
    let vcek = SigningKey::from_slice(&VCEK_SCALAR).expect("a valid P-384 scalar");
    let mut psp: Option<SimulatedPsp> = None;
    let mut td: Option<SimulatedTdx> = None;
    let mut answered = 0;
    while let Some((kind, body)) = read_message(&mut stream, deadline)? {
        match kind {
            Kind::Launched => {
                let launched = Launched::parse(&body).context("a malformed LAUNCHED message")?;
                let mut fresh = SimulatedPsp::new(launched.vmpck0, launched.measurement, vcek.clone());
                fresh.policy = launched.policy;
                fresh.host_data = launched.host_data;
                fresh.reported_tcb = REPORTED_TCB;
                fresh.chip_id = CHIP_ID;
                psp = Some(fresh);
            }
            Kind::GuestRequest => {
                // No launch, or a message the firmware refuses: INVALID_PARAM (0x16), no response message.
                let answer = psp.as_mut().and_then(|psp| psp.answer(&body));
                reply(&mut stream, answer.as_deref())?;
                answered += u64::from(answer.is_some());
            }
            Kind::TdLaunched => {
                let launched = TdLaunched::parse(&body).context("a malformed TD_LAUNCHED message")?;
                let mut fresh = SimulatedTdx::new(launched.mrtd, QuoteService::AnswersAfter(0), 0);
                fresh.attributes = launched.attributes;
                fresh.xfam = launched.xfam;
                fresh.mr_config_id = launched.mr_config_id;
                td = Some(fresh);
            }
            Kind::TdReport => {
                let answer = match (&td, <[u8; 64]>::try_from(body.as_slice())) {
                    (Some(td), Ok(report_data)) => Some(td.report(&report_data).to_vec()),
                    _ => None,
                };
                reply(&mut stream, answer.as_deref())?;
            }
            Kind::TdQuote => {
                let answer = match (&td, <[u8; TDREPORT_LEN]>::try_from(body.as_slice())) {
                    (Some(td), Ok(report)) => Some(td.quote(&report)),
                    _ => None,
                };
                answered += u64::from(answer.is_some());
                reply(&mut stream, answer.as_deref())?;
            }
            Kind::Response => anyhow::bail!("the hypervisor sent a RESPONSE"),
        }
    }
    Ok(answered)
}

/// A RESPONSE: status 0 and `answer`, or INVALID_PARAM (0x16) and nothing.
fn reply(stream: &mut TcpStream, answer: Option<&[u8]>) -> Result<()> {
    let mut body = match answer {
        Some(bytes) => 0u32.to_le_bytes().iter().chain(bytes).copied().collect::<Vec<u8>>(),
        None => 0x16u32.to_le_bytes().to_vec(),
    };
    let mut framed = firmware_channel::header(Kind::Response, body.len()).to_vec();
    framed.append(&mut body);
    stream.write_all(&framed)?;
    Ok(())
}

/// One message, or `None` when the hypervisor (QEMU) closed the channel.
fn read_message(stream: &mut TcpStream, deadline: Instant) -> Result<Option<(Kind, Vec<u8>)>> {
    let remaining = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
    stream.set_read_timeout(Some(remaining))?;
    let mut header = [0u8; HEADER_LEN];
    match stream.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e).context("reading from the hypervisor"),
    }
    let (kind, length) =
        firmware_channel::parse_header(header).map_err(|e| anyhow::anyhow!("a malformed message header: {e:?}"))?;
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).context("reading a message body")?;
    Ok(Some((kind, body)))
}
