//! The network: smoltcp over virtio-net, a static IPv4 address matching QEMU user networking (guest 10.0.2.15/24,
//! gateway 10.0.2.2), a TCP client whose every wait is bounded, and listening sockets for the service.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;

use protocol::frame::{ReadFrameError, frame, read_frame};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, HardwareAddress,
    IpAddress, IpCidr, Ipv4Address,
};

use crate::virtio_net::VirtioNet;
use crate::virtqueue::BUFFER_SIZE;
use crate::{rng, time};

/// The guest's address under QEMU user networking.
const GUEST_ADDRESS: Ipv4Address = Ipv4Address::new(10, 0, 2, 15);
const GATEWAY: Ipv4Address = Ipv4Address::new(10, 0, 2, 2);
const PREFIX_LEN: u8 = 24;
const SOCKET_BUFFER: usize = 16 * 1024;

/// Why a network operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetError {
    /// The peer refused or reset the connection, or closed it early.
    Closed,
    /// The deadline passed.
    Timeout,
    /// A frame was too long or empty.
    Frame,
}

impl NetError {
    /// A stable name for records.
    pub const fn as_str(self) -> &'static str {
        match self {
            NetError::Closed => "connection-closed",
            NetError::Timeout => "timeout",
            NetError::Frame => "bad-frame",
        }
    }
}

struct NetDevice {
    nic: VirtioNet,
    rx_frame: Box<[u8; BUFFER_SIZE]>,
    /// An ARP reply from the gateway has arrived (smoltcp has then put it in its neighbor cache).
    gateway_answered: bool,
}

/// Whether `frame` is an ARP reply from the gateway to us.
fn is_gateway_arp_reply(frame: &[u8]) -> bool {
    let Ok(ethernet) = EthernetFrame::new_checked(frame) else { return false };
    if ethernet.ethertype() != EthernetProtocol::Arp {
        return false;
    }
    let Ok(packet) = ArpPacket::new_checked(ethernet.payload()) else { return false };
    matches!(
        ArpRepr::parse(&packet),
        Ok(ArpRepr::EthernetIpv4 { operation: ArpOperation::Reply, source_protocol_addr, target_protocol_addr, .. })
            if source_protocol_addr == GATEWAY && target_protocol_addr == GUEST_ADDRESS
    )
}

/// A received frame (already copied out of device memory).
struct RxFrame<'a>(&'a [u8]);

/// A transmit slot.
struct TxSlot<'a>(&'a mut VirtioNet);

impl RxToken for RxFrame<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}

impl TxToken for TxSlot<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut result = None;
        self.0.transmit(len, |buffer| result = Some(f(buffer)));
        result.expect("a slot is handed out only when a transmit buffer is free")
    }
}

impl Device for NetDevice {
    type RxToken<'a> = RxFrame<'a>;
    type TxToken<'a> = TxSlot<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(RxFrame<'_>, TxSlot<'_>)> {
        let NetDevice { nic, rx_frame, gateway_answered } = self;
        if !nic.can_transmit() {
            return None;
        }
        let len = nic.receive(rx_frame)?;
        *gateway_answered |= is_gateway_arp_reply(&rx_frame[..len]);
        Some((RxFrame(&rx_frame[..len]), TxSlot(nic)))
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxSlot<'_>> {
        self.nic.can_transmit().then_some(TxSlot(&mut self.nic))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = 1514;
        caps.max_burst_size = Some(1);
        caps
    }
}

/// The interface and its sockets.
pub struct Network {
    device: NetDevice,
    iface: Interface,
    sockets: SocketSet<'static>,
}

fn now() -> Instant {
    Instant::from_millis(time::now_ms() as i64)
}

impl Network {
    /// Brings the interface up on `nic`.
    pub fn up(nic: VirtioNet) -> Network {
        let mut device = NetDevice { rx_frame: Box::new([0; BUFFER_SIZE]), nic, gateway_answered: false };
        let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(device.nic.mac())));
        config.random_seed = rng::random_u64();
        let mut iface = Interface::new(config, &mut device, now());
        iface.update_ip_addrs(|addrs| {
            let _ = addrs.push(IpCidr::new(IpAddress::Ipv4(GUEST_ADDRESS), PREFIX_LEN));
        });
        let _ = iface.routes_mut().add_default_ipv4_route(GATEWAY);
        Network { device, iface, sockets: SocketSet::new(Vec::new()) }
    }

    /// Asks the gateway for its hardware address (an ARP request of our own) and polls until it answers or
    /// `timeout_ms` passes; returns whether it answered. Clients' connections arrive from the gateway's address
    /// (QEMU's host forwards): without this, the first client's SYN-ACK waits for smoltcp's own ARP request, which
    /// its one-request-a-second limit holds back for up to a second after the broker's address was resolved.
    pub fn resolve_gateway(&mut self, timeout_ms: u64) -> bool {
        let mac = EthernetAddress(self.device.nic.mac());
        let ethernet =
            EthernetRepr { src_addr: mac, dst_addr: EthernetAddress::BROADCAST, ethertype: EthernetProtocol::Arp };
        let arp = ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Request,
            source_hardware_addr: mac,
            source_protocol_addr: GUEST_ADDRESS,
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: GATEWAY,
        };
        let deadline = time::now_ms() + timeout_ms;
        self.device.gateway_answered = false;
        let sent = self.device.nic.transmit(ethernet.buffer_len() + arp.buffer_len(), |buffer| {
            let mut frame = EthernetFrame::new_unchecked(buffer);
            ethernet.emit(&mut frame);
            arp.emit(&mut ArpPacket::new_unchecked(frame.payload_mut()));
        });
        while sent && !self.device.gateway_answered && time::now_ms() <= deadline {
            self.poll();
            core::hint::spin_loop();
        }
        self.device.gateway_answered
    }

    /// Moves packets between the device and the sockets.
    pub fn poll(&mut self) {
        self.iface.poll(now(), &mut self.device, &mut self.sockets);
    }

    fn add_socket(&mut self) -> SocketHandle {
        let mut socket = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; SOCKET_BUFFER]),
            tcp::SocketBuffer::new(vec![0; SOCKET_BUFFER]),
        );
        // Request/response: no Nagle coalescing, no delayed ACKs.
        socket.set_nagle_enabled(false);
        socket.set_ack_delay(None);
        self.sockets.add(socket)
    }

    /// Adds a socket listening on `port` (several may listen on one port: each takes one connection).
    pub fn listen(&mut self, port: u16) -> SocketHandle {
        let handle = self.add_socket();
        // A fresh socket is closed, and a port is never 0 here: listen cannot fail.
        let _ = self.tcp(handle).listen(port);
        handle
    }

    /// The TCP socket behind `handle`.
    pub fn tcp(&mut self, handle: SocketHandle) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket<'static>>(handle)
    }

    /// Connects to `address:port`, waiting at most `timeout_ms` for the handshake.
    pub fn connect(&mut self, address: Ipv4Address, port: u16, timeout_ms: u64) -> Result<TcpConnection<'_>, NetError> {
        let handle = self.add_socket();
        let local_port = 49152 + (rng::random_u64() % 16384) as u16;
        let socket = self.sockets.get_mut::<tcp::Socket<'_>>(handle);
        socket
            .connect(self.iface.context(), (IpAddress::Ipv4(address), port), local_port)
            .map_err(|_| NetError::Closed)?;
        let mut connection = TcpConnection { net: self, handle, deadline_ms: time::now_ms() + timeout_ms };
        connection.wait(|s| s.state() == tcp::State::Established)?;
        Ok(connection)
    }
}

/// One TCP connection; all waits end at its deadline.
pub struct TcpConnection<'a> {
    net: &'a mut Network,
    handle: SocketHandle,
    deadline_ms: u64,
}

impl TcpConnection<'_> {
    fn socket(&mut self) -> &mut tcp::Socket<'static> {
        self.net.sockets.get_mut::<tcp::Socket<'static>>(self.handle)
    }

    /// Polls until `ready` holds; fails when the connection closes or the deadline passes.
    fn wait(&mut self, mut ready: impl FnMut(&tcp::Socket<'static>) -> bool) -> Result<(), NetError> {
        loop {
            self.net.poll();
            let socket = self.socket();
            if ready(socket) {
                return Ok(());
            }
            if matches!(socket.state(), tcp::State::Closed | tcp::State::TimeWait) {
                return Err(NetError::Closed);
            }
            if time::now_ms() > self.deadline_ms {
                return Err(NetError::Timeout);
            }
            core::hint::spin_loop();
        }
    }

    fn write_all(&mut self, mut data: &[u8]) -> Result<(), NetError> {
        while !data.is_empty() {
            self.wait(|s| s.can_send())?;
            let sent = self.socket().send_slice(data).map_err(|_| NetError::Closed)?;
            data = &data[sent..];
        }
        self.net.poll();
        Ok(())
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), NetError> {
        let mut filled = 0;
        while filled < buf.len() {
            self.wait(|s| s.can_recv() || !s.may_recv())?;
            if !self.socket().can_recv() {
                return Err(NetError::Closed);
            }
            filled += self.socket().recv_slice(&mut buf[filled..]).map_err(|_| NetError::Closed)?;
        }
        Ok(())
    }
}

impl Drop for TcpConnection<'_> {
    fn drop(&mut self) {
        self.socket().abort();
        self.net.poll();
        self.net.sockets.remove(self.handle);
    }
}

impl loader::Transport for TcpConnection<'_> {
    type Error = NetError;

    fn send(&mut self, body: &[u8]) -> Result<(), NetError> {
        let bytes = frame(body).map_err(|_| NetError::Frame)?;
        self.write_all(&bytes)
    }

    fn recv(&mut self, limit: usize) -> Result<Vec<u8>, NetError> {
        read_frame(limit, |buf| self.read_exact(buf)).map_err(|e| match e {
            ReadFrameError::Io(e) => e,
            ReadFrameError::Frame(_) => NetError::Frame,
        })
    }
}
