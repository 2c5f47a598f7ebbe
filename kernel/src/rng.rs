//! Entropy: RDRAND, checked and retried; a generator that keeps failing ends the run (nothing secret can be made
//! without it). Implements `rand_core`'s traits for HPKE key generation.

use core::convert::Infallible;

use ovmf::exit::ExitCode;
use protocol::seal::rand_core::{TryCryptoRng, TryRng};

use crate::exit::exit;

/// Retries of one RDRAND before giving up (Intel's DRNG guide recommends 10).
const RETRIES: u32 = 10;

/// The CPU's random number generator.
pub struct HardwareRng;

#[target_feature(enable = "rdrand")]
fn rdrand64() -> Option<u64> {
    let mut value = 0u64;
    for _ in 0..RETRIES {
        if core::arch::x86_64::_rdrand64_step(&mut value) == 1 {
            return Some(value);
        }
    }
    None
}

/// 64 random bits, or the end of the run.
pub fn random_u64() -> u64 {
    // SAFETY: the reset stub checked CPUID for RDRAND (ovmf::cpu_features) before any Rust ran.
    match unsafe { rdrand64() } {
        Some(value) => value,
        None => {
            log::error!(target: "rng", retries = RETRIES; "RDRAND failed");
            exit(ExitCode::EntropyFailed)
        }
    }
}

impl TryRng for HardwareRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(random_u64() as u32)
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(random_u64())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(8) {
            chunk.copy_from_slice(&random_u64().to_le_bytes()[..chunk.len()]);
        }
        Ok(())
    }
}

impl TryCryptoRng for HardwareRng {}
