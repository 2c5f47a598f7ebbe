//! What a hostile client does, one behaviour per connection, each bounded in time: malformed frames, slow writers,
//! silent readers, idle holders and bursts over the connection caps. Loopback only: every target is 127.0.0.1.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use protocol::frame::frame;
use protocol::message::{Message, PROTOCOL_VERSION};
use protocol::service::ServiceRequest;
use protocol::tee::Tee;

/// The longest any one behaviour lasts.
pub const MAX_BEHAVIOUR: Duration = Duration::from_secs(3);

/// A small random source for choices (not for keys): xorshift64*, seeded from the system.
pub struct Dice(u64);

impl Dice {
    /// Seeded from the system's randomness.
    pub fn new() -> Dice {
        let mut seed = [0u8; 8];
        let _ = getrandom::fill(&mut seed);
        Dice(u64::from_le_bytes(seed) | 1)
    }

    /// A number below `n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.below(256) as u8).collect()
    }
}

impl Default for Dice {
    fn default() -> Self {
        Dice::new()
    }
}

/// Who is attacked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The key broker.
    Broker(SocketAddr),
    /// The guest's service port.
    Guest(SocketAddr),
}

impl Target {
    fn addr(self) -> SocketAddr {
        match self {
            Target::Broker(a) | Target::Guest(a) => a,
        }
    }

    /// A valid first frame: `Hello` for the broker, `Health` for the guest.
    fn valid_opening(self) -> Vec<u8> {
        let body = match self {
            Target::Broker(_) => Message::Hello { version: PROTOCOL_VERSION, tee: Tee::Plain }.encode(),
            Target::Guest(_) => ServiceRequest::Health.encode(),
        };
        frame(&body.expect("a fixed message encodes")).expect("a small body frames")
    }

    /// A valid request that gets a reply, for the silent reader to repeat: `Hello` or `Evidence`.
    fn repeatable_request(self) -> Vec<u8> {
        match self {
            Target::Broker(_) => self.valid_opening(),
            Target::Guest(_) => {
                frame(&ServiceRequest::Evidence { client_nonce: [7; 32] }.encode().expect("encodes")).expect("frames")
            }
        }
    }
}

/// The hostile behaviours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Random bytes, then read whatever comes back.
    RandomBytes,
    /// A header announcing more than is sent, then a close.
    Truncated,
    /// A header announcing 4 GiB - 1.
    OversizedHeader,
    /// A valid first frame, then garbage.
    ValidOpeningThenGarbage,
    /// A frame one byte every 150 ms.
    SlowWriter,
    /// Requests as fast as the socket takes them, never reading a reply.
    SilentReader,
    /// Connects and sends nothing.
    IdleHolder,
    /// Many connections at once, over every cap, held a moment.
    Burst,
}

/// Every behaviour, for drawing at random and for reports.
pub const BEHAVIOURS: [Behaviour; 8] = [
    Behaviour::RandomBytes,
    Behaviour::Truncated,
    Behaviour::OversizedHeader,
    Behaviour::ValidOpeningThenGarbage,
    Behaviour::SlowWriter,
    Behaviour::SilentReader,
    Behaviour::IdleHolder,
    Behaviour::Burst,
];

impl Behaviour {
    /// A stable name for the report.
    pub const fn name(self) -> &'static str {
        match self {
            Behaviour::RandomBytes => "random-bytes",
            Behaviour::Truncated => "truncated",
            Behaviour::OversizedHeader => "oversized-header",
            Behaviour::ValidOpeningThenGarbage => "valid-opening-then-garbage",
            Behaviour::SlowWriter => "slow-writer",
            Behaviour::SilentReader => "silent-reader",
            Behaviour::IdleHolder => "idle-holder",
            Behaviour::Burst => "burst",
        }
    }

    /// Does it to `target` once; returns the connections it opened. Never longer than [`MAX_BEHAVIOUR`].
    pub fn run(self, target: Target, dice: &mut Dice) -> usize {
        let started = Instant::now();
        let within = |limit: Duration| started.elapsed() < limit.min(MAX_BEHAVIOUR);
        if self == Behaviour::Burst {
            let held: Vec<TcpStream> = (0..80).filter_map(|_| connect(target)).collect();
            std::thread::sleep(Duration::from_millis(500));
            return held.len();
        }
        let Some(mut stream) = connect(target) else { return 0 };
        match self {
            Behaviour::RandomBytes => {
                let len = 1 + dice.below(4096) as usize;
                let _ = stream.write_all(&dice.bytes(len));
                drain(&mut stream, Duration::from_secs(1));
            }
            Behaviour::Truncated => {
                let _ = stream.write_all(&[0, 0, 0x04, 0]);
                let len = 1 + dice.below(1000) as usize;
                let _ = stream.write_all(&dice.bytes(len));
            }
            Behaviour::OversizedHeader => {
                let _ = stream.write_all(&[0xff; 4]);
                drain(&mut stream, Duration::from_secs(1));
            }
            Behaviour::ValidOpeningThenGarbage => {
                let _ = stream.write_all(&target.valid_opening());
                let mut garbage = (16 + dice.below(200) as u32).to_be_bytes().to_vec();
                garbage.extend(dice.bytes(300));
                let _ = stream.write_all(&garbage);
                drain(&mut stream, Duration::from_secs(1));
            }
            Behaviour::SlowWriter => {
                let mut bytes = target.valid_opening();
                bytes[3] = bytes[3].wrapping_add(40);
                bytes.extend(dice.bytes(40));
                for byte in bytes {
                    if !within(MAX_BEHAVIOUR) || stream.write_all(&[byte]).is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(150));
                }
            }
            Behaviour::SilentReader => {
                let _ = stream.set_write_timeout(Some(Duration::from_millis(500)));
                let request = target.repeatable_request();
                while within(MAX_BEHAVIOUR) && stream.write_all(&request).is_ok() {}
            }
            Behaviour::IdleHolder => std::thread::sleep(Duration::from_millis(500 + dice.below(2500))),
            Behaviour::Burst => unreachable!("handled above"),
        }
        1
    }
}

fn connect(target: Target) -> Option<TcpStream> {
    let stream = TcpStream::connect_timeout(&target.addr(), Duration::from_millis(500)).ok()?;
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    Some(stream)
}

/// Reads and discards until the peer closes or `limit` passes.
fn drain(stream: &mut TcpStream, limit: Duration) {
    let _ = stream.set_read_timeout(Some(limit));
    let mut buf = [0u8; 4096];
    let started = Instant::now();
    while started.elapsed() < limit && matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
}
