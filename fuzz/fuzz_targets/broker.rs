//! Fuzzes the broker's request handling: a whole connection's byte stream through `serve_connection`, and the
//! release decision for an `Attest` whose nonce was really issued (so the verifier, binding and policy checks are
//! reached). Nothing may be released to fuzzed evidence: the simulated signature key is public, but a random
//! input that also matches the allowlist, the binding and the key is out of reach, and releasing anyway would
//! be a bug.
#![no_main]

use std::io::{Cursor, Read, Write};
use std::sync::OnceLock;

use broker::Broker;
use broker::config::{AllowEntry, Config};
use broker::decision::AttestRequest;
use broker::keys::KeyStore;
use libfuzzer_sys::fuzz_target;
use protocol::message::Message;
use protocol::tee::Tee;

/// A stream whose reads come from the input and whose writes are kept.
struct Stream<'a> {
    input: Cursor<&'a [u8]>,
    output: Vec<u8>,
}

impl Read for Stream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for Stream<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn broker() -> &'static Broker {
    static BROKER: OnceLock<Broker> = OnceLock::new();
    BROKER.get_or_init(|| {
        let dir = if std::path::Path::new("/dev/shm").is_dir() { "/dev/shm".into() } else { std::env::temp_dir() };
        let audit_log = dir.join(format!("ampoule-fuzz-audit-{}.jsonl", std::process::id()));
        let config = Config {
            allow_simulated: true,
            message_timeout_ms: 1000,
            session_timeout_ms: 1000,
            max_connections: 1,
            allow: vec![AllowEntry {
                tee: "plain".into(),
                measurement: "a1".repeat(48),
                key_id: "0a".repeat(16),
                model_digest: None,
            }],
            ..Config::with_defaults(audit_log)
        };
        let mut keys = KeyStore::default();
        keys.insert([0x0a; 16], zeroize::Zeroizing::new([0x5a; 32]));
        Broker::new(config, keys, broker::system_clock())
            .unwrap()
            .with_log(broker::log::LogSink::file(std::path::Path::new("/dev/null")).unwrap())
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, data)) = data.split_first() else { return };
    let broker = broker();
    if selector % 2 == 0 {
        let mut stream = Stream { input: Cursor::new(data), output: Vec::new() };
        broker.serve_connection(&mut stream, "fuzz");
        // Whatever was answered, it was never a key release (no valid evidence can be in a fuzzed stream).
        let mut at = 0;
        while let Some(header) = stream.output.get(at..at + 4) {
            let len = u32::from_be_bytes(header.try_into().unwrap()) as usize;
            let body = &stream.output[at + 4..at + 4 + len];
            assert!(!matches!(Message::decode(body), Ok(Message::KeyRelease { .. })));
            at += 4 + len;
        }
    } else if data.len() >= 16 + 32 {
        let nonce = broker.issue_challenge(u64::MAX).unwrap();
        let (key_id, rest) = data.split_at(16);
        let (guest_public_key, evidence) = rest.split_at(32);
        let request = AttestRequest {
            tee: Tee::Plain,
            nonce: &nonce,
            key_id: key_id.try_into().unwrap(),
            guest_public_key: guest_public_key.try_into().unwrap(),
            evidence,
        };
        let (reply, decision) = broker.decide(u64::MAX, Tee::Plain, &request, 1_800_000_000_000);
        assert!(decision.outcome.is_err(), "fuzzed evidence got a key");
        assert!(matches!(reply, Message::Refused { .. }));
    }
});
