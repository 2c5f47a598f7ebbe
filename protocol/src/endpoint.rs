//! Where the guest finds the broker: a fixed address inside QEMU's user network that run-qemu forwards
//! (`guestfwd`) to the broker's port on the host's loopback. The guest can reach nothing else (`restrict=on`).

/// The broker's address as the guest sees it.
pub const BROKER_GUEST_ADDRESS: [u8; 4] = [10, 0, 2, 100];
/// The broker's port as the guest sees it.
pub const BROKER_GUEST_PORT: u16 = 7000;
/// The fw_cfg file in which run-qemu names the key the image asks for (until the sealed model carries it).
pub const KEY_ID_FW_CFG: &str = "opt/ampoule/key-id";
