//! An `Infer` between [`super::Service::begin`] and [`super::Service::finish`]: its input opened, its output to
//! come from a batch, and where the reply goes. Input and output are erased when it drops, answered or not (a
//! connection that closes while its request waits for the batch drops it).

use alloc::vec::Vec;

use protocol::service::{ServiceErrorCode, ServiceReply};
use zeroize::Zeroizing;

use super::Outcome;

/// What `begin` made of one request body.
pub enum Begun {
    /// Answered in full: the reply body and the outcome.
    Answered(Vec<u8>, Outcome),
    /// An `Infer`, opened, to be run in a batch and then finished.
    Infer(PendingInfer),
}

/// An opened `Infer` waiting for its batch.
pub struct PendingInfer {
    pub(super) values: Zeroizing<Vec<f32>>,
    pub(super) reply_to: ReplyTo,
    /// Set by `run_batch`.
    pub(super) output: Option<Result<Zeroizing<Vec<f32>>, ServiceErrorCode>>,
}

/// Where an `Infer`'s reply goes.
pub(super) enum ReplyTo {
    /// Sealed (HPKE) to the reply key the input named, with the request's encapsulated key as AAD.
    Sealed { reply_key: [u8; 32], encapped_key: [u8; 32] },
    /// The connection's session's next reply record.
    Session,
}

/// What `begin` found a request to be, before encoding.
pub(super) enum Answer {
    /// A reply, complete.
    Reply(ServiceReply),
    /// An `Infer`'s values and where its reply goes.
    Infer(Zeroizing<Vec<f32>>, ReplyTo),
}
