//! The nested page tables: the guest-physical -> host-physical map the hardware walks after the guest's own
//! tables (AMD64 APM vol. 2, 15.25). They are how the RMP is enforced here: a page is mapped at its private
//! (C-bit) alias only while the RMP says it is assigned and validated, and at its shared alias only while it is
//! hypervisor-owned; every other access faults to the hypervisor, which turns it into what SNP hardware does.
//!
//! The walk has as many levels as the host's paging (APM vol. 2, 15.25.3): five when the hypervisor runs with
//! CR4.LA57 (boot.s sets it where the CPU has it), else four. 4 KiB leaves, tables from a fixed pool. Entries need
//! U = 1 and RW = 1 (DESIGN.md §10).

/// Present, writable, user: every nested entry.
const ENTRY_FLAGS: u64 = 0x7;
const PRESENT: u64 = 1;
const ADDRESS_MASK: u64 = 0x000f_ffff_ffff_f000;
const ENTRIES: usize = 512;
/// CR4.LA57: the host pages with five levels.
const CR4_LA57: u64 = 1 << 12;
/// The shifts of the table indices above a leaf table, from the root: five levels, four levels.
const FIVE_LEVELS: &[u32] = &[48, 39, 30, 21];
const FOUR_LEVELS: &[u32] = &[39, 30, 21];

/// One table.
#[repr(C, align(4096))]
pub struct Table([u64; ENTRIES]);

impl Table {
    /// A table with no entries.
    pub const EMPTY: Table = Table([0; ENTRIES]);
}

/// How many tables the pool holds: enough for both aliases of the guest's RAM and image (see `memory_map`).
pub const POOL_TABLES: usize = 320;

/// The nested tables, built from a pool the caller gives.
pub struct NestedTables {
    pool: &'static mut [Table; POOL_TABLES],
    used: usize,
    levels: &'static [u32],
}

/// The pool ran out: a layout larger than `POOL_TABLES` allows.
#[derive(Debug)]
pub struct PoolExhausted;

impl NestedTables {
    /// Empty tables; the first pool entry is the root.
    pub fn new(pool: &'static mut [Table; POOL_TABLES]) -> NestedTables {
        pool[0].0.fill(0);
        let cr4: u64;
        // SAFETY: reading CR4 has no side effect; the hypervisor runs at CPL 0.
        unsafe { core::arch::asm!("mov {}, cr4", out(reg) cr4, options(nomem, nostack, preserves_flags)) };
        let levels = if cr4 & CR4_LA57 != 0 { FIVE_LEVELS } else { FOUR_LEVELS };
        NestedTables { pool, used: 1, levels }
    }

    /// The highest guest-physical address bit the walk translates plus one: 57 with five levels, 48 with four.
    pub fn address_bits(&self) -> u32 {
        self.levels[0] + 9
    }

    /// N_CR3: the root's physical address (identity-mapped).
    pub fn root(&self) -> u64 {
        &self.pool[0] as *const Table as u64
    }

    fn index_of(&self, address: u64) -> usize {
        (address - self.root()) as usize / core::mem::size_of::<Table>()
    }

    /// The leaf entry for `gpa`, creating the tables above it.
    fn leaf(&mut self, gpa: u64) -> Result<&mut u64, PoolExhausted> {
        let mut table = 0;
        for &level in self.levels {
            let slot = ((gpa >> level) & 0x1ff) as usize;
            let entry = self.pool[table].0[slot];
            table = if entry & PRESENT != 0 {
                self.index_of(entry & ADDRESS_MASK)
            } else {
                let next = self.used;
                if next == POOL_TABLES {
                    return Err(PoolExhausted);
                }
                self.used += 1;
                self.pool[next].0.fill(0);
                let address = &self.pool[next] as *const Table as u64;
                self.pool[table].0[slot] = address | ENTRY_FLAGS;
                next
            };
        }
        Ok(&mut self.pool[table].0[((gpa >> 12) & 0x1ff) as usize])
    }

    /// Maps the 4 KiB page at `gpa` to host page `hpa`.
    pub fn map(&mut self, gpa: u64, hpa: u64) -> Result<(), PoolExhausted> {
        *self.leaf(gpa)? = (hpa & ADDRESS_MASK) | ENTRY_FLAGS;
        Ok(())
    }

    /// Removes the mapping of the page at `gpa` (the caller flushes the guest's TLB before it runs again).
    pub fn unmap(&mut self, gpa: u64) -> Result<(), PoolExhausted> {
        *self.leaf(gpa)? = 0;
        Ok(())
    }

    /// Tables in use.
    pub fn tables_used(&self) -> usize {
        self.used
    }
}
