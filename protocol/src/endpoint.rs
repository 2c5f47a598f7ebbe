//! Where the guest finds the broker: a fixed address inside QEMU's user network that run-qemu forwards
//! (`guestfwd`) to the broker's port on the host's loopback. The guest can reach nothing else (`restrict=on`); clients
//! reach the guest's service port through a loopback forward (`hostfwd`).

/// The broker's address as the guest sees it.
pub const BROKER_GUEST_ADDRESS: [u8; 4] = [10, 0, 2, 100];
/// The broker's port as the guest sees it.
pub const BROKER_GUEST_PORT: u16 = 7000;
/// The port the guest serves clients on (run-qemu forwards a loopback port of the host to it with `hostfwd`).
pub const SERVICE_GUEST_PORT: u16 = 8000;
