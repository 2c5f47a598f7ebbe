//! virtio-net over PCI, modern (Virtio 1.1, 4.1 and 5.1), polled: queue 0 receives, queue 1 transmits. Features:
//! VIRTIO_F_VERSION_1 (required), VIRTIO_NET_F_MAC (used if offered) and VIRTIO_F_ACCESS_PLATFORM (accepted if
//! offered, as confidential VMMs do: the rings and buffers are in shared pages at their physical addresses, so the
//! device's restricted access is already respected); nothing else is accepted.

use ovmf::layout::PCI_MMIO;

use crate::paging;
use crate::pci;
use crate::platform::{self, Tee};
use crate::virtqueue::{BUFFER_SIZE, QUEUE_SIZE, Virtqueue};
use crate::{snp, tdx};

const VIRTIO_VENDOR: u16 = 0x1af4;
/// Transitional (0x1000) and modern-only (0x1041) network devices.
const VIRTIO_NET_DEVICES: [u16; 2] = [0x1000, 0x1041];
/// PCI capability id of vendor-specific capabilities, which virtio uses (4.1.4).
const CAP_VENDOR: u8 = 0x09;
const CFG_COMMON: u8 = 1;
const CFG_NOTIFY: u8 = 2;
const CFG_DEVICE: u8 = 4;
/// Common configuration registers (4.1.4.3).
const DEVICE_FEATURE_SELECT: u64 = 0x00;
const DEVICE_FEATURE: u64 = 0x04;
const DRIVER_FEATURE_SELECT: u64 = 0x08;
const DRIVER_FEATURE: u64 = 0x0c;
const DEVICE_STATUS: u64 = 0x14;
const QUEUE_SELECT: u64 = 0x16;
const QUEUE_SIZE_REG: u64 = 0x18;
const QUEUE_ENABLE: u64 = 0x1c;
const QUEUE_NOTIFY_OFF: u64 = 0x1e;
const QUEUE_DESC: u64 = 0x20;
const QUEUE_DRIVER: u64 = 0x28;
const QUEUE_DEVICE: u64 = 0x30;
/// Device status bits (2.1).
const ACKNOWLEDGE: u8 = 1;
const DRIVER: u8 = 2;
const DRIVER_OK: u8 = 4;
const FEATURES_OK: u8 = 8;
const FAILED: u8 = 128;
/// Feature bits.
const VIRTIO_NET_F_MAC: u64 = 1 << 5;
const VIRTIO_F_VERSION_1: u64 = 1 << 32;
const VIRTIO_F_ACCESS_PLATFORM: u64 = 1 << 33;
/// struct virtio_net_hdr with VERSION_1 (5.1.6): 12 bytes, all zero on transmit (no offloads).
pub const NET_HEADER_LEN: usize = 12;
const RX_QUEUE: u16 = 0;
const TX_QUEUE: u16 = 1;
/// A locally administered address, used if the device offers none.
const FALLBACK_MAC: [u8; 6] = [0x02, 0x41, 0x4d, 0x50, 0x00, 0x01];

/// A device register's width: the integers the virtio layout uses.
trait Register: Copy {
    fn from_u64(value: u64) -> Self;
    fn into_u64(self) -> u64;
}

macro_rules! register {
    ($($t:ty),*) => {$(
        impl Register for $t {
            fn from_u64(value: u64) -> Self {
                value as $t
            }
            fn into_u64(self) -> u64 {
                self.into()
            }
        }
    )*};
}
register!(u8, u16, u32, u64);

/// A window of device registers inside the (mapped, uncached) PCI window. Under SNP each access is an MMIO exit
/// through the GHCB instead (`snp::ghcb`), under TDX a #VE.RequestMMIO call (`tdx::ve`): a plain access would raise
/// #VC or #VE, which would need an instruction decoder to serve.
#[derive(Clone, Copy)]
struct Registers {
    base: u64,
    len: u64,
}

impl Registers {
    fn check(&self, offset: u64, size: u64) -> u64 {
        assert!(offset + size <= self.len, "register access beyond its capability");
        self.base + offset
    }

    fn read<T: Register>(&self, offset: u64) -> T {
        let size = core::mem::size_of::<T>();
        let at = self.check(offset, size as u64);
        match platform::current() {
            Tee::Snp => return T::from_u64(snp::ghcb::mmio_read(at, size)),
            Tee::Tdx => return T::from_u64(tdx::ve::mmio_read(at, size)),
            Tee::Plain | Tee::SevWithoutSnp => {}
        }
        // SAFETY: inside a BAR this driver assigned and mapped uncached; aligned by the virtio register layout.
        unsafe { (at as *const T).read_volatile() }
    }

    fn write<T: Register>(&self, offset: u64, value: T) {
        let size = core::mem::size_of::<T>();
        let at = self.check(offset, size as u64);
        match platform::current() {
            Tee::Snp => return snp::ghcb::mmio_write(at, size, value.into_u64()),
            Tee::Tdx => return tdx::ve::mmio_write(at, size, value.into_u64()),
            Tee::Plain | Tee::SevWithoutSnp => {}
        }
        // SAFETY: as in `read`.
        unsafe { (at as *mut T).write_volatile(value) };
    }
}

/// A running virtio-net device.
pub struct VirtioNet {
    notify: Registers,
    notify_multiplier: u32,
    notify_offsets: [u16; 2],
    rx: Virtqueue,
    tx: Virtqueue,
    /// Bit i set: transmit buffer i is with the device.
    tx_busy: u16,
    mac: [u8; 6],
}

/// Why the device could not be brought up.
pub type ProbeError = &'static str;

impl VirtioNet {
    /// Finds, resets and starts the first virtio-net device on bus 0; `Ok(None)` if there is none.
    pub fn probe() -> Result<Option<VirtioNet>, ProbeError> {
        let Some(function) = pci::find(VIRTIO_VENDOR, &VIRTIO_NET_DEVICES) else { return Ok(None) };
        let (mut common, mut notify, mut device) = (None, None, None);
        let mut notify_multiplier = 0;
        let mut bars: [Option<core::ops::Range<u64>>; 6] = Default::default();
        for (id, at) in function.capabilities() {
            if id != CAP_VENDOR {
                continue;
            }
            let (cfg_type, bar) = (function.read8(at + 3), function.read8(at + 4));
            if bar > 5 || !matches!(cfg_type, CFG_COMMON | CFG_NOTIFY | CFG_DEVICE) {
                continue;
            }
            let range = match &bars[usize::from(bar)] {
                Some(range) => range.clone(),
                None => {
                    let range = function.assign_memory_bar(bar).ok_or("a virtio BAR could not be placed")?;
                    paging::map_mmio(range.clone());
                    bars[usize::from(bar)] = Some(range.clone());
                    range
                }
            };
            let (offset, length) = (u64::from(function.read32(at + 8)), u64::from(function.read32(at + 12)));
            if range.start + offset + length > range.end || range.end > PCI_MMIO.end() {
                return Err("a virtio capability reaches beyond its BAR");
            }
            let registers = Registers { base: range.start + offset, len: length };
            match cfg_type {
                CFG_COMMON => common = Some(registers),
                CFG_NOTIFY => {
                    notify = Some(registers);
                    notify_multiplier = function.read32(at + 16);
                }
                _ => device = Some(registers),
            }
        }
        let (common, notify) = (common.ok_or("no common configuration")?, notify.ok_or("no notify region")?);
        Self::start(common, notify, notify_multiplier, device).map(Some)
    }

    fn start(
        common: Registers,
        notify: Registers,
        notify_multiplier: u32,
        device: Option<Registers>,
    ) -> Result<VirtioNet, ProbeError> {
        // Reset, then acknowledge (3.1.1).
        common.write::<u8>(DEVICE_STATUS, 0);
        for _ in 0..1_000_000 {
            if common.read::<u8>(DEVICE_STATUS) == 0 {
                break;
            }
        }
        common.write::<u8>(DEVICE_STATUS, ACKNOWLEDGE | DRIVER);
        let feature = |select: u32| {
            common.write::<u32>(DEVICE_FEATURE_SELECT, select);
            u64::from(common.read::<u32>(DEVICE_FEATURE))
        };
        let offered = feature(0) | feature(1) << 32;
        if offered & VIRTIO_F_VERSION_1 == 0 {
            common.write::<u8>(DEVICE_STATUS, FAILED);
            return Err("the device does not offer VIRTIO_F_VERSION_1");
        }
        let accepted = VIRTIO_F_VERSION_1 | (offered & (VIRTIO_NET_F_MAC | VIRTIO_F_ACCESS_PLATFORM));
        for select in 0..2u32 {
            common.write::<u32>(DRIVER_FEATURE_SELECT, select);
            common.write::<u32>(DRIVER_FEATURE, (accepted >> (32 * select)) as u32);
        }
        common.write::<u8>(DEVICE_STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK);
        if common.read::<u8>(DEVICE_STATUS) & FEATURES_OK == 0 {
            common.write::<u8>(DEVICE_STATUS, FAILED);
            return Err("the device refused the features");
        }
        let (rx, tx) = (Virtqueue::new(), Virtqueue::new());
        let mut notify_offsets = [0u16; 2];
        for (index, queue) in [(RX_QUEUE, &rx), (TX_QUEUE, &tx)] {
            common.write::<u16>(QUEUE_SELECT, index);
            let max = common.read::<u16>(QUEUE_SIZE_REG);
            if max < QUEUE_SIZE {
                return Err("the device's queues are too small");
            }
            common.write::<u16>(QUEUE_SIZE_REG, QUEUE_SIZE);
            let (desc, driver, device_ring) = queue.addresses();
            common.write::<u64>(QUEUE_DESC, desc);
            common.write::<u64>(QUEUE_DRIVER, driver);
            common.write::<u64>(QUEUE_DEVICE, device_ring);
            notify_offsets[usize::from(index)] = common.read::<u16>(QUEUE_NOTIFY_OFF);
            common.write::<u16>(QUEUE_ENABLE, 1);
        }
        common.write::<u8>(DEVICE_STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
        let mac = match device {
            Some(config) if accepted & VIRTIO_NET_F_MAC != 0 => core::array::from_fn(|i| config.read::<u8>(i as u64)),
            _ => FALLBACK_MAC,
        };
        let mut net = VirtioNet { notify, notify_multiplier, notify_offsets, rx, tx, tx_busy: 0, mac };
        for id in 0..QUEUE_SIZE {
            net.rx.offer_writable(id);
        }
        net.kick(RX_QUEUE);
        Ok(net)
    }

    /// The device's MAC address.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// Notifies the device of new buffers in `queue`, unless it said it needs no notification.
    fn kick(&self, queue: u16) {
        let ring = if queue == RX_QUEUE { &self.rx } else { &self.tx };
        if !ring.device_wants_notification() {
            return;
        }
        let offset = u64::from(self.notify_offsets[usize::from(queue)]) * u64::from(self.notify_multiplier);
        self.notify.write::<u16>(offset, queue);
    }

    /// Copies the next received frame (without the virtio header) into `frame`; returns its length.
    pub fn receive(&mut self, frame: &mut [u8; BUFFER_SIZE]) -> Option<usize> {
        let (id, len) = self.rx.take_used(frame)?;
        self.rx.offer_writable(id);
        self.kick(RX_QUEUE);
        // A frame shorter than the header is dropped; the copy is what gets parsed, never the shared buffer.
        let payload = len.checked_sub(NET_HEADER_LEN)?;
        frame.copy_within(NET_HEADER_LEN..len, 0);
        Some(payload)
    }

    fn reclaim_transmitted(&mut self) {
        while let Some((id, _)) = self.tx.take_used(&mut []) {
            self.tx_busy &= !(1 << id);
        }
    }

    /// Whether a transmit buffer is free.
    pub fn can_transmit(&mut self) -> bool {
        self.reclaim_transmitted();
        self.tx_busy != u16::MAX >> (16 - QUEUE_SIZE)
    }

    /// Sends a `len`-byte frame that `fill` writes. Returns false (and sends nothing) if no buffer is free.
    pub fn transmit(&mut self, len: usize, fill: impl FnOnce(&mut [u8])) -> bool {
        self.reclaim_transmitted();
        let Some(id) = (0..QUEUE_SIZE).find(|id| self.tx_busy & (1 << id) == 0) else { return false };
        let len = len.min(BUFFER_SIZE - NET_HEADER_LEN);
        self.tx.offer_readable(id, |buffer| {
            buffer[..NET_HEADER_LEN].fill(0);
            fill(&mut buffer[NET_HEADER_LEN..NET_HEADER_LEN + len]);
            NET_HEADER_LEN + len
        });
        self.tx_busy |= 1 << id;
        self.kick(TX_QUEUE);
        true
    }
}
