//! The release decision for one `Attest`: every check in a fixed order, so each attack gets its own reason code.
//!
//! 1. the evidence's TEE is the one the session announced;
//! 2. the nonce was issued to this connection, is unused and unexpired (and is now used up);
//! 3. the evidence policy ([`crate::policy::Policy::check`], shared with `ampoule-client`): a verifier for that TEE
//!    accepts the evidence, the report data binds the nonce and the guest's public key, debugging is off (unless
//!    `allow_debug`), the measurement is in the allowlist for this TEE;
//! 4. the requested key is the one the allowlist binds to that measurement;
//! 5. the key is sealed to the guest's public key (HPKE), with its id and expiry as AAD.

use getrandom::SysRng;
use protocol::binding::report_data;
use protocol::message::{KeyId, Message, NONCE_LEN, PublicKey};
use protocol::refusal::RefusalCode;
use protocol::seal::{KEY_RELEASE_INFO, key_release_aad, seal};
use protocol::tee::Tee;

use crate::Broker;

/// The fields of an `Attest` message.
pub struct AttestRequest<'a> {
    /// The TEE the evidence claims.
    pub tee: Tee,
    /// The nonce it answers.
    pub nonce: &'a [u8; NONCE_LEN],
    /// The key it asks for.
    pub key_id: &'a KeyId,
    /// The guest's ephemeral public key.
    pub guest_public_key: &'a PublicKey,
    /// The evidence.
    pub evidence: &'a [u8],
}

/// What was decided, for the reply and the audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The measurement, once the evidence was verified.
    pub measurement: Option<Vec<u8>>,
    /// The TCB level the verified evidence reports.
    pub tcb: Option<String>,
    /// The released key's version (a registry key).
    pub version: Option<u32>,
    /// The released key id, or why nothing was released.
    pub outcome: Result<KeyId, RefusalCode>,
}

impl Broker {
    /// Decides on one request of connection `connection`, which announced `announced`, at `now_ms`. Returns the
    /// reply to send and the decision to audit.
    pub fn decide(
        &self,
        connection: u64,
        announced: Tee,
        request: &AttestRequest<'_>,
        now_ms: u64,
    ) -> (Message, Decision) {
        let mut facts = None;
        let outcome = self.check_and_seal(connection, announced, request, now_ms, &mut facts);
        let (measurement, tcb) = facts.unzip();
        match outcome {
            Ok((key_id, version, message)) => (message, Decision { measurement, tcb, version, outcome: Ok(key_id) }),
            Err(code) => (Message::Refused { code }, Decision { measurement, tcb, version: None, outcome: Err(code) }),
        }
    }

    fn check_and_seal(
        &self,
        connection: u64,
        announced: Tee,
        request: &AttestRequest<'_>,
        now_ms: u64,
        facts: &mut Option<(Vec<u8>, String)>,
    ) -> Result<(KeyId, Option<u32>, Message), RefusalCode> {
        if request.tee != announced {
            return Err(RefusalCode::WrongTee);
        }
        self.nonces.take(request.nonce, connection, now_ms)?;
        let verified = self.policy.verify(request.tee, request.evidence)?;
        // Recorded for the audit even when a later check refuses.
        *facts = Some((verified.measurement.clone(), verified.tcb.clone()));
        let bound = report_data(request.nonce, request.guest_public_key);
        let released = self.keys.release(&self.policy, &verified, &bound, request.key_id)?;
        let (key_id, key) = (released.key_id, &released.key);
        // Both in range (Config::check), so this cannot overflow; checked all the same.
        let expires_at = (now_ms / 1000).checked_add(self.config.release_lifetime_secs).ok_or(RefusalCode::Internal)?;
        let aad = key_release_aad(&key_id, expires_at);
        let mut rng = protocol::seal::rand_core::UnwrapErr(SysRng);
        let (encapped_key, sealed_key) = seal(request.guest_public_key, &key[..], KEY_RELEASE_INFO, &aad, &mut rng)
            .map_err(|_| RefusalCode::MalformedMessage)?;
        let message = Message::KeyRelease { key_id, expires_at, encapped_key, sealed_key };
        Ok((key_id, released.version, message))
    }
}
