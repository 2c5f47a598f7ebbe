//! Time from the TSC. Its frequency is calibrated once against the PIT (8254 channel 2, 10 ms one-shot), so the
//! network stack's timers and the records' milliseconds have a unit. Under a TEE the PIT is the host's: it only
//! paces timeouts, never anything security-relevant.

use core::sync::atomic::{AtomicU64, Ordering};

use x86_64::instructions::port::Port;

/// The TSC's frequency, once calibrated.
static TSC_HZ: AtomicU64 = AtomicU64::new(0);

/// The PIT's input clock (Intel 8254 datasheet).
const PIT_HZ: u64 = 1_193_182;
/// The calibration interval: 1/100 s.
const CALIBRATION_DIVISOR: u64 = 100;
/// If the PIT never signals, assume this frequency rather than hang (logged).
const FALLBACK_HZ: u64 = 2_000_000_000;
const PORT_PIT_CHANNEL2: u16 = 0x42;
const PORT_PIT_COMMAND: u16 = 0x43;
const PORT_SPEAKER: u16 = 0x61;
/// Channel 2, low then high byte, mode 0 (interrupt on terminal count), binary.
const PIT_CHANNEL2_ONE_SHOT: u8 = 0b1011_0000;
const SPEAKER_GATE2: u8 = 1 << 0;
const SPEAKER_ENABLE: u8 = 1 << 1;
const SPEAKER_OUT2: u8 = 1 << 5;

/// The time-stamp counter.
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC reads a counter; the reset stub checked CPUID for TSC support, and CR4.TSD is clear.
    unsafe { core::arch::x86_64::_rdtsc() }
}

fn outb(port: u16, value: u8) {
    // SAFETY: the PIT and the speaker-control port are legacy timer ports with no memory side effects.
    unsafe { Port::<u8>::new(port).write(value) };
}

fn inb(port: u16) -> u8 {
    // SAFETY: as in `outb`.
    unsafe { Port::<u8>::new(port).read() }
}

/// Measures the TSC frequency against a 10 ms PIT one-shot. Returns the frequency used.
pub fn calibrate() -> u64 {
    let count = PIT_HZ / CALIBRATION_DIVISOR;
    let speaker = inb(PORT_SPEAKER) & !(SPEAKER_GATE2 | SPEAKER_ENABLE);
    outb(PORT_SPEAKER, speaker);
    outb(PORT_PIT_COMMAND, PIT_CHANNEL2_ONE_SHOT);
    outb(PORT_PIT_CHANNEL2, count as u8);
    outb(PORT_PIT_CHANNEL2, (count >> 8) as u8);
    outb(PORT_SPEAKER, speaker | SPEAKER_GATE2);
    let start = rdtsc();
    let mut signalled = false;
    for _ in 0..50_000_000u32 {
        if inb(PORT_SPEAKER) & SPEAKER_OUT2 != 0 {
            signalled = true;
            break;
        }
    }
    let hz = if signalled {
        rdtsc().wrapping_sub(start) * CALIBRATION_DIVISOR
    } else {
        log::warn!(target: "time", assumed_hz = FALLBACK_HZ; "PIT calibration failed");
        FALLBACK_HZ
    };
    TSC_HZ.store(hz.max(1), Ordering::SeqCst);
    // burn's clock (our web-time) reads the same TSC.
    web_time::set_tsc_hz(hz.max(1));
    hz
}

/// Milliseconds corresponding to `cycles`.
pub fn cycles_to_ms(cycles: u64) -> u64 {
    let hz = TSC_HZ.load(Ordering::Relaxed).max(1);
    (u128::from(cycles) * 1000 / u128::from(hz)) as u64
}

/// Microseconds corresponding to `cycles`.
pub fn cycles_to_us(cycles: u64) -> u64 {
    let hz = TSC_HZ.load(Ordering::Relaxed).max(1);
    (u128::from(cycles) * 1_000_000 / u128::from(hz)) as u64
}

/// Milliseconds since the TSC started (reset, under QEMU).
pub fn now_ms() -> u64 {
    cycles_to_ms(rdtsc())
}
