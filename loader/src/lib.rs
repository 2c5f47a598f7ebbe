//! The guest side of the key dance (DESIGN.md §5), generic over how bytes travel ([`Transport`]) and how evidence
//! is made ([`Attester`]), so that host tests drive it against the real broker in process and the kernel drives it
//! over TCP with its platform's attester.
//!
//! 1. `Hello` -> `Challenge { nonce }`;
//! 2. a fresh X25519 key pair; evidence for `report_data = SHA-512(label || nonce || public key)`;
//! 3. `Attest` -> `KeyRelease` (the key, HPKE-sealed to that key pair) or `Refused { code }`;
//! 4. the key is opened; the key pair is dropped (and erased) on return.
//!
//! Then [`Service`] answers clients: health, evidence for their nonce, and sealed inferences.
#![no_std]

extern crate alloc;

mod attester;
pub mod batch;
pub mod connection;
mod dance;
pub mod model_load;
mod service;
pub mod snp_attester;
#[cfg(feature = "std")]
mod stream;
pub mod tdx_attester;

pub use attester::{AttestError, Attester, SimulatedAttester};
pub use dance::{LoaderError, ReleasedKey, Step, Transport, obtain_key};
pub use service::{Begun, Model, Outcome, PendingInfer, Service};
pub use snp_attester::{GuestRequest, GuestRequestError, SnpAttester};
#[cfg(feature = "std")]
pub use stream::StreamTransport;
pub use tdx_attester::{TdxAttester, TdxCalls};
