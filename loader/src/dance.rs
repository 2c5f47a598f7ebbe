//! The key dance itself.

use alloc::vec::Vec;

use protocol::binding::report_data;
use protocol::frame::MAX_FRAME_LEN;
use protocol::message::{KeyId, Message, PROTOCOL_VERSION};
use protocol::refusal::RefusalCode;
use protocol::seal::{EphemeralKeyPair, KEY_RELEASE_INFO, SealError, key_release_aad};
use zeroize::Zeroizing;

use crate::attester::{AttestError, Attester};

/// Moves frame bodies to and from the broker. Implementations bound what they read by `limit`.
pub trait Transport {
    /// The transport's own error.
    type Error;
    /// Sends one frame body.
    fn send(&mut self, body: &[u8]) -> Result<(), Self::Error>;
    /// Receives one frame body of at most `limit` bytes.
    fn recv(&mut self, limit: usize) -> Result<Vec<u8>, Self::Error>;
}

/// A released model key.
pub struct ReleasedKey {
    /// Which key.
    pub key_id: KeyId,
    /// Until when the broker released it (Unix seconds).
    pub expires_at: u64,
    /// The key, erased when dropped.
    pub key: Zeroizing<[u8; 32]>,
}

/// Milestones, reported to the caller as they happen (the kernel turns them into records and timings).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The broker's challenge arrived.
    Challenged,
    /// Evidence was made and sent.
    Attested,
}

/// Why no key was obtained.
#[derive(Debug, PartialEq, Eq)]
pub enum LoaderError<E> {
    /// The transport failed.
    Transport(E),
    /// The broker refused, with its reason.
    Refused(RefusalCode),
    /// The broker sent something the protocol does not allow here.
    Protocol(&'static str),
    /// The platform made no evidence.
    Attest(AttestError),
    /// The sealed key did not open.
    Seal(SealError),
}

fn send<T: Transport>(transport: &mut T, message: &Message) -> Result<(), LoaderError<T::Error>> {
    let body = message.encode().map_err(|_| LoaderError::Protocol("message too long to encode"))?;
    transport.send(&body).map_err(LoaderError::Transport)
}

fn recv<T: Transport>(transport: &mut T) -> Result<Message, LoaderError<T::Error>> {
    let body = transport.recv(MAX_FRAME_LEN).map_err(LoaderError::Transport)?;
    Message::decode(&body).map_err(|_| LoaderError::Protocol("undecodable message"))
}

/// Runs the dance over `transport` with `attester`, asking for `key_id`; `rng` makes the ephemeral key pair.
pub fn obtain_key<T: Transport, A: Attester>(
    transport: &mut T,
    attester: &mut A,
    rng: &mut impl protocol::seal::CryptoRng,
    key_id: KeyId,
    mut progress: impl FnMut(Step),
) -> Result<ReleasedKey, LoaderError<T::Error>> {
    let tee = attester.tee();
    send(transport, &Message::Hello { version: PROTOCOL_VERSION, tee })?;
    let nonce = match recv(transport)? {
        Message::Challenge { nonce } => nonce,
        Message::Refused { code } => return Err(LoaderError::Refused(code)),
        _ => return Err(LoaderError::Protocol("expected a challenge")),
    };
    progress(Step::Challenged);

    let key_pair = EphemeralKeyPair::generate(rng);
    let guest_public_key = key_pair.public_key();
    let evidence = attester.evidence(&report_data(&nonce, &guest_public_key)).map_err(LoaderError::Attest)?;
    send(transport, &Message::Attest { tee, nonce, key_id, guest_public_key, evidence })?;
    progress(Step::Attested);

    match recv(transport)? {
        Message::KeyRelease { key_id: released, expires_at, encapped_key, sealed_key } => {
            if released != key_id {
                return Err(LoaderError::Protocol("released another key than requested"));
            }
            let aad = key_release_aad(&released, expires_at);
            let opened =
                key_pair.open(&encapped_key, &sealed_key, KEY_RELEASE_INFO, &aad).map_err(LoaderError::Seal)?;
            let mut key = Zeroizing::new([0u8; 32]);
            if opened.len() != key.len() {
                return Err(LoaderError::Protocol("released key is not 32 bytes"));
            }
            key.copy_from_slice(&opened);
            Ok(ReleasedKey { key_id: released, expires_at, key })
        }
        Message::Refused { code } => Err(LoaderError::Refused(code)),
        _ => Err(LoaderError::Protocol("expected a key release or a refusal")),
    }
}
