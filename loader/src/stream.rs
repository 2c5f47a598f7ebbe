//! The dance over any `std` byte stream (a `TcpStream`, a socket pair): for host programs and tests. The guest
//! has its own transport over smoltcp and never enables the `std` feature.

extern crate std;

use alloc::vec::Vec;
use std::io::{Read, Write};

use protocol::frame::{frame, read_frame};

use crate::Transport;

/// Frames over a stream.
pub struct StreamTransport<S>(pub S);

impl<S: Read + Write> Transport for StreamTransport<S> {
    type Error = std::io::Error;

    fn send(&mut self, body: &[u8]) -> std::io::Result<()> {
        self.0.write_all(&frame(body).map_err(std::io::Error::other)?)
    }

    fn recv(&mut self, limit: usize) -> std::io::Result<Vec<u8>> {
        read_frame(limit, |buf| self.0.read_exact(buf)).map_err(|e| match e {
            protocol::frame::ReadFrameError::Io(e) => e,
            protocol::frame::ReadFrameError::Frame(e) => std::io::Error::other(e),
        })
    }
}
