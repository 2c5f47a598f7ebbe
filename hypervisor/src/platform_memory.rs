//! The RMP enforced: the RMP's two tables (guest RAM, the image range) and the nested page tables kept in step
//! with them, page by page.
//!
//! - Private alias (SNP: `gpa | C_BIT`; TDX: `gpa`): mapped while the page is assigned and validated (accepted).
//! - Shared alias (SNP: `gpa`; TDX: `gpa | shared_bit(GPAW)`): mapped while the page is hypervisor-owned.
//!
//! Under TDX the same table is the secure EPT: "assigned" is a private page (added, or pending), "validated" is
//! accepted.
//!
//! Until the guest turns paging on, every access of an SNP guest is private whatever its address (APM vol. 2,
//! 15.34.5), but the guest's addresses carry no C-bit yet. So the platform starts in a *paging-off view*: assigned
//! pages are reached through their plain address, and the private alias is left unmapped; the guest's first
//! access through a C-bit with CR0.PG set ends that view for good (`leave_paging_off_view`).

use ovmf::layout::{GUEST_RAM_SIZE, IMAGE, PAGE_SIZE};
use ovmf::snp::page_state::PageStateEntry;
use simulated_platform::page_state;
use simulated_platform::rmp::{Rmp, RmpEntry};

use crate::guest_memory::{AliasBit, GuestMemory};
use crate::nested_paging::{NestedTables, PoolExhausted};

/// Why a state change did not happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateChangeError {
    /// The range is not (wholly) guest memory the table covers: nothing changed.
    NotGuestMemory,
    /// The nested tables' pool ran out.
    TablesFull,
}

/// The guest's memory, its RMP and the nested tables that enforce it.
pub struct PlatformMemory {
    /// The guest's memory.
    pub memory: GuestMemory,
    ram: Rmp<'static>,
    image: Rmp<'static>,
    tables: NestedTables,
    paging_off_view: bool,
    /// The nested tables changed since the last VMRUN: the guest's TLB must be flushed.
    pub flush_tlb: bool,
}

impl PlatformMemory {
    /// All pages hypervisor-owned, nothing mapped yet (`sync_all` maps them).
    pub fn new(
        memory: GuestMemory,
        ram: &'static mut [RmpEntry],
        image: &'static mut [RmpEntry],
        tables: NestedTables,
    ) -> PlatformMemory {
        // TDX has no paging-off view: its private pages have plain addresses.
        let paging_off_view = memory.alias() == AliasBit::Private;
        PlatformMemory {
            memory,
            ram: Rmp::new(0, ram),
            image: Rmp::new(IMAGE.base, image),
            tables,
            paging_off_view,
            flush_tlb: true,
        }
    }

    /// N_CR3.
    pub fn nested_root(&self) -> u64 {
        self.tables.root()
    }

    /// The RMP covering `gpa` (without the C-bit).
    pub fn rmp(&mut self, gpa: u64) -> Option<&mut Rmp<'static>> {
        if self.ram.covers(gpa) {
            Some(&mut self.ram)
        } else if self.image.covers(gpa) {
            Some(&mut self.image)
        } else {
            None
        }
    }

    /// The RMP entry of `gpa`.
    pub fn entry(&mut self, gpa: u64) -> Option<RmpEntry> {
        self.rmp(gpa).and_then(|rmp| rmp.entry(gpa))
    }

    /// Whether the guest still runs in the paging-off view.
    pub fn in_paging_off_view(&self) -> bool {
        self.paging_off_view
    }

    /// Maps or unmaps both aliases of the page at `gpa` as its RMP entry says.
    pub fn sync(&mut self, gpa: u64) -> Result<(), PoolExhausted> {
        let gpa = gpa & !(PAGE_SIZE - 1);
        let (Some(entry), Some(host)) = (self.entry(gpa), self.memory.backing(gpa)) else { return Ok(()) };
        let usable_private = entry.assigned && entry.validated;
        let (private, shared) = if self.paging_off_view {
            (false, usable_private || !entry.assigned)
        } else {
            (usable_private, !entry.assigned)
        };
        let (private_gpa, shared_gpa) = match self.memory.alias() {
            AliasBit::Private => (gpa | self.memory.alias_mask(), gpa),
            AliasBit::Shared => (gpa, gpa | self.memory.alias_mask()),
        };
        if private {
            self.tables.map(private_gpa, host)?
        } else {
            self.tables.unmap(private_gpa)?
        }
        if shared {
            self.tables.map(shared_gpa, host)?
        } else {
            self.tables.unmap(shared_gpa)?
        }
        self.flush_tlb = true;
        Ok(())
    }

    /// Syncs every page of guest memory.
    pub fn sync_all(&mut self) -> Result<(), PoolExhausted> {
        for gpa in (0..GUEST_RAM_SIZE).chain(IMAGE.base..IMAGE.end()).step_by(PAGE_SIZE as usize) {
            self.sync(gpa)?;
        }
        Ok(())
    }

    /// The guest turned paging on and used its C-bit: from now on private pages are reached only privately.
    pub fn leave_paging_off_view(&mut self) -> Result<(), PoolExhausted> {
        self.paging_off_view = false;
        self.sync_all()
    }

    /// Maps the plain address of a private, validated page for the hardware's implicitly private accesses (guest
    /// page-table walks, instruction fetches), which arrive without the C-bit. A page that is not private and
    /// validated is refused as a private access would be.
    pub fn allow_implicitly_private(&mut self, gpa: u64) -> Result<(), PoolExhausted> {
        let usable = self.entry(gpa).is_some_and(|e| e.assigned && e.validated);
        if let (true, Some(host)) = (usable, self.memory.backing(gpa)) {
            self.tables.map(gpa, host)?;
            self.flush_tlb = true;
        }
        Ok(())
    }

    /// Changes the state of the range `entry` names (RMPUPDATE, by `simulated_platform::page_state::apply`;
    /// `small_pages` backs a 2 MiB private range with small RMP entries) and maps its pages accordingly: the one
    /// way the host's page-state changes and a TD's MapGPA reach the table.
    pub fn change_state(&mut self, entry: &PageStateEntry, small_pages: bool) -> Result<(), StateChangeError> {
        let rmp = self.rmp(entry.gfn << 12).ok_or(StateChangeError::NotGuestMemory)?;
        let (first, frames) =
            page_state::apply(rmp, entry, small_pages).map_err(|_| StateChangeError::NotGuestMemory)?;
        for frame in 0..frames {
            self.sync(first + frame * PAGE_SIZE).map_err(|_| StateChangeError::TablesFull)?;
        }
        Ok(())
    }

    /// Pages validated now.
    pub fn validated_pages(&self) -> usize {
        self.ram.validated_pages() + self.image.validated_pages()
    }

    /// Tables the nested map uses.
    pub fn tables_used(&self) -> usize {
        self.tables.tables_used()
    }
}
