//! The way to the simulated PSP: COM2, which QEMU connects to the channel xtask serves
//! (`simulated_platform::firmware_channel`). Every wait is bounded: a PSP that does not answer fails the guest's
//! request, it never hangs the platform.

use simulated_platform::firmware_channel::{self, HEADER_LEN, Kind, Launched, MAX_BODY, TdLaunched};

use crate::port;

/// COM2.
const COM2: u16 = 0x2f8;
const LSR: u16 = 5;
const LSR_DATA_READY: u8 = 1 << 0;
const LSR_THR_EMPTY: u8 = 1 << 5;
/// Polls of the line status before a byte counts as lost (QEMU's UART answers at once when the channel is up).
const MAX_POLLS: u32 = 20_000_000;

/// Why the PSP gave no answer.
#[derive(Clone, Copy, Debug)]
pub struct ChannelDown;

fn send_byte(byte: u8) -> Result<(), ChannelDown> {
    for _ in 0..MAX_POLLS {
        if port::inb(COM2 + LSR) & LSR_THR_EMPTY != 0 {
            port::outb(COM2, byte);
            return Ok(());
        }
    }
    Err(ChannelDown)
}

fn receive_byte() -> Result<u8, ChannelDown> {
    for _ in 0..MAX_POLLS {
        let status = port::inb(COM2 + LSR);
        // No UART at all reads as all ones: no channel.
        if status == 0xff {
            return Err(ChannelDown);
        }
        if status & LSR_DATA_READY != 0 {
            return Ok(port::inb(COM2));
        }
    }
    Err(ChannelDown)
}

fn send(kind: Kind, body: &[u8]) -> Result<(), ChannelDown> {
    for &byte in firmware_channel::header(kind, body.len()).iter().chain(body) {
        send_byte(byte)?;
    }
    Ok(())
}

/// Tells the PSP what the launch produced.
pub fn launched(launched: &Launched) -> Result<(), ChannelDown> {
    send(Kind::Launched, &launched.to_bytes())
}

/// Passes a guest message to the PSP and returns its status and, on success, the response message's length in
/// `response`.
pub fn guest_request(request: &[u8], response: &mut [u8; MAX_BODY]) -> Result<(u32, usize), ChannelDown> {
    exchange(Kind::GuestRequest, request, response)
}

/// Tells the TDX module's reporting what the TD build produced.
pub fn td_launched(launched: &TdLaunched) -> Result<(), ChannelDown> {
    send(Kind::TdLaunched, &launched.to_bytes())
}

/// Sends a `kind` request and returns the answer's status and length in `response`.
pub fn exchange(kind: Kind, request: &[u8], response: &mut [u8; MAX_BODY]) -> Result<(u32, usize), ChannelDown> {
    send(kind, request)?;
    let mut header = [0u8; HEADER_LEN];
    for byte in &mut header {
        *byte = receive_byte()?;
    }
    let (kind, length) = firmware_channel::parse_header(header).map_err(|_| ChannelDown)?;
    if kind != Kind::Response || length < 4 {
        return Err(ChannelDown);
    }
    for byte in &mut response[..length] {
        *byte = receive_byte()?;
    }
    let status = u32::from_le_bytes([response[0], response[1], response[2], response[3]]);
    response.copy_within(4..length, 0);
    Ok((status, length - 4))
}
