//! The kernel's page tables, built in RAM as the first thing Rust does, replacing the stub's boot identity map
//! (which maps the low 4 GiB read-write-execute with 2 MiB pages).
//!
//! Identity-mapped (virtual = physical), and nothing is both writable and executable:
//!
//! | range                    | pages | access              |
//! |--------------------------|-------|---------------------|
//! | kernel `.text`           | 4 KiB | read, execute       |
//! | kernel `.rodata`         | 4 KiB | read                |
//! | kernel `.data`, `.bss`   | 4 KiB | read, write         |
//! | each stack               | 4 KiB | read, write; guard page below it unmapped |
//! | heap                     | 2 MiB | read, write         |
//! | the image (ROM)          | 4 KiB | read                |
//! | shared pages (`SHARED`)  | 4 KiB | read, write; never private |
//! | SNP secrets, CPUID pages | 4 KiB | read (SNP only)     |
//! | the TD HOB               | 4 KiB | read (TDX only)     |
//!
//! Everything else is unmapped: the null page, the boot scratch area, all other RAM and MMIO.
//!
//! Under SEV-SNP every private mapping, and every table entry, carries the C-bit ([`Encryption`]); the shared pages
//! and device registers never do. Under TDX it is the other way round: the shared pages and device registers carry
//! the shared bit, private memory and the tables nothing.

use core::ops::Range;
use core::sync::atomic::{AtomicU64, Ordering};

use ovmf::layout::{HEAP, IMAGE, PAGE_SIZE, PCI_MMIO, SHARED, SNP_CPUID, SNP_SECRETS, TD_HOB};
use spin::Mutex;
use x86_64::PhysAddr;
use x86_64::registers::control::{Cr3, Cr3Flags};
use x86_64::structures::paging::{PageTable, PageTableFlags as Flags, PhysFrame};

use crate::sections;

const HUGE_PAGE_SIZE: u64 = 2 << 20;
/// Enough tables for the ranges above (PML4, 2 PDPTs, 2 PDs, 4 PTs for the kernel, 1 PT for the image) and for
/// device registers (a PD and a PT or two).
const POOL_TABLES: usize = 16;

#[repr(C, align(4096))]
struct TablePool([PageTable; POOL_TABLES]);

/// The tables live here for the whole run, with the count of tables used. `init` builds them; `map_mmio` adds
/// device mappings later. All zeros, so the pool is in .bss rather than copied from the image at boot.
static POOL: Mutex<(TablePool, usize)> = Mutex::new((TablePool([const { PageTable::new() }; POOL_TABLES]), 0));

/// The address bits of private mappings (the C-bit under SNP, else 0), set once by `init`.
static PRIVATE: AtomicU64 = AtomicU64::new(0);
/// The address bits of shared mappings (the shared bit under TDX, else 0), set once by `init`.
static SHARED_BITS: AtomicU64 = AtomicU64::new(0);

/// How private memory is marked in page-table entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encryption {
    /// No memory encryption (plain).
    None,
    /// SEV-SNP: the C-bit at this position (from the CPUID page) marks private memory.
    CBit(u8),
    /// TDX: the shared bit at this position (GPAW - 1, from TDG.VP.INFO) marks shared memory.
    SharedBit(u8),
}

impl Encryption {
    /// The address bits of private mappings.
    fn private_mask(self) -> u64 {
        match self {
            Encryption::CBit(position) => 1 << position,
            Encryption::None | Encryption::SharedBit(_) => 0,
        }
    }

    /// The address bits of shared mappings.
    fn shared_mask(self) -> u64 {
        match self {
            Encryption::SharedBit(position) => 1 << position,
            Encryption::None | Encryption::CBit(_) => 0,
        }
    }
}

/// The address bits that mark a shared page (the TDX shared bit; 0 elsewhere): what the VMM must be given with a
/// shared GPA.
pub fn shared_mask() -> u64 {
    SHARED_BITS.load(Ordering::Relaxed)
}

/// Which page size a range is mapped with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PageSize {
    Small,
    Huge,
}

/// What the kernel maps, with which access, in which page size (all private).
fn mappings() -> [(Range<u64>, Flags, PageSize); 10] {
    let code = Flags::PRESENT;
    let read_only = Flags::PRESENT | Flags::NO_EXECUTE;
    let read_write = Flags::PRESENT | Flags::WRITABLE | Flags::NO_EXECUTE;
    let stack = |s: sections::Stack| (s.bottom..s.top, read_write, PageSize::Small);
    let [double_fault, nmi, machine_check, exception, vmm_communication] = sections::exception_stacks();
    [
        (sections::text(), code, PageSize::Small),
        (sections::rodata(), read_only, PageSize::Small),
        (sections::data_and_bss(), read_write, PageSize::Small),
        stack(sections::boot_stack()),
        stack(double_fault),
        stack(nmi),
        stack(machine_check),
        stack(exception),
        stack(vmm_communication),
        (HEAP.base..HEAP.end(), read_write, PageSize::Huge),
    ]
}

/// Builds the kernel's page tables and switches CR3 to them. Runs once, first thing in `main`.
pub fn init(encryption: Encryption) {
    let mut guard = POOL.try_lock().expect("paging::init runs once, on the boot CPU");
    let (pool, used) = &mut *guard;
    assert!(pool.0[0].iter().all(|e| e.is_unused()), "paging::init runs once");
    let private = encryption.private_mask();
    let shared = encryption.shared_mask();
    PRIVATE.store(private, Ordering::Relaxed);
    SHARED_BITS.store(shared, Ordering::Relaxed);
    // Table 0 is the PML4.
    let mut builder = Builder { tables: &mut pool.0, used: 1 };
    for (range, flags, size) in mappings() {
        builder.map(range, flags, size, private);
    }
    let read_only = Flags::PRESENT | Flags::NO_EXECUTE;
    builder.map(IMAGE.base..IMAGE.end(), read_only, PageSize::Small, private);
    // The shared pages are what the VMM and devices see: never private.
    builder.map(SHARED.base..SHARED.end(), read_only | Flags::WRITABLE, PageSize::Small, shared);
    match encryption {
        Encryption::CBit(_) => {
            builder.map(SNP_SECRETS.base..SNP_SECRETS.end(), read_only, PageSize::Small, private);
            builder.map(SNP_CPUID.base..SNP_CPUID.end(), read_only, PageSize::Small, private);
        }
        Encryption::SharedBit(_) => builder.map(TD_HOB.base..TD_HOB.end(), read_only, PageSize::Small, private),
        Encryption::None => {}
    }
    let pml4 = PhysFrame::from_start_address(PhysAddr::new(table_address(&builder.tables[0])))
        .expect("the pool is page-aligned");
    *used = builder.used;
    // CR3 holds the PML4's address without the C-bit, as the stub's did: page-table walks are private under SNP.
    // SAFETY: the new tables map the running code (.text), the stack in use (boot stack) and all data the kernel
    // touches, with the same (identity) addresses as the boot map, so execution continues unchanged.
    unsafe { Cr3::write(pml4, Cr3Flags::empty()) };
}

/// Maps device registers at `range` (inside `layout::PCI_MMIO`) read-write, no-execute, uncached.
pub fn map_mmio(range: Range<u64>) {
    assert!(PCI_MMIO.contains(range.start) && range.end <= PCI_MMIO.end(), "MMIO outside the PCI window");
    let mut guard = POOL.lock();
    let (pool, used) = &mut *guard;
    assert!(*used >= 1, "paging::init runs before map_mmio");
    let mut builder = Builder { tables: &mut pool.0, used: *used };
    let flags = Flags::PRESENT | Flags::WRITABLE | Flags::NO_EXECUTE | Flags::NO_CACHE | Flags::WRITE_THROUGH;
    let start = range.start & !(PAGE_SIZE - 1);
    let end = range.end.div_ceil(PAGE_SIZE) * PAGE_SIZE;
    for addr in (start..end).step_by(PAGE_SIZE as usize) {
        if translate(addr).is_none() {
            // Device registers are never private.
            builder.map_page(addr, flags, PageSize::Small, shared_mask());
        }
    }
    *used = builder.used;
    // New entries only (never a changed one), but paging-structure caches may hold the old "not present" path.
    x86_64::instructions::tlb::flush_all();
}

fn table_address(table: &PageTable) -> u64 {
    table as *const PageTable as u64
}

struct Builder<'a> {
    tables: &'a mut [PageTable; POOL_TABLES],
    used: usize,
}

/// The physical address an entry points to, without the C-bit or the shared bit.
fn entry_target(entry: &x86_64::structures::paging::page_table::PageTableEntry) -> u64 {
    entry.addr().as_u64() & !(PRIVATE.load(Ordering::Relaxed) | shared_mask())
}

impl Builder<'_> {
    /// Maps `range` with `flags`; `encryption` is the address bits that mark the pages private or shared.
    fn map(&mut self, range: Range<u64>, flags: Flags, size: PageSize, encryption: u64) {
        let step = if size == PageSize::Huge { HUGE_PAGE_SIZE } else { PAGE_SIZE };
        assert!(
            range.start.is_multiple_of(step) && range.end.is_multiple_of(step),
            "mapping not aligned to its page size"
        );
        for addr in range.step_by(step as usize) {
            self.map_page(addr, flags, size, encryption);
        }
    }

    fn map_page(&mut self, addr: u64, flags: Flags, size: PageSize, encryption: u64) {
        let index = |level: u32| ((addr >> (12 + 9 * level)) & 0x1ff) as usize;
        let pdpt = self.next_table(0, index(3));
        let pd = self.next_table(pdpt, index(2));
        if size == PageSize::Huge {
            let entry = &mut self.tables[pd][index(1)];
            assert!(entry.is_unused(), "page mapped twice");
            entry.set_addr(PhysAddr::new(addr | encryption), flags | Flags::HUGE_PAGE);
            return;
        }
        let pt = self.next_table(pd, index(1));
        let entry = &mut self.tables[pt][index(0)];
        assert!(entry.is_unused(), "page mapped twice");
        entry.set_addr(PhysAddr::new(addr | encryption), flags);
    }

    /// The pool index of the table that entry `index` of table `parent` points to, allocating it if needed.
    /// Intermediate entries allow everything; the leaf entry decides the access.
    fn next_table(&mut self, parent: usize, index: usize) -> usize {
        let base = table_address(&self.tables[0]);
        let entry = &self.tables[parent][index];
        if !entry.is_unused() {
            assert!(!entry.flags().contains(Flags::HUGE_PAGE), "a huge page is in the way");
            return ((entry_target(entry) - base) / PAGE_SIZE) as usize;
        }
        let child = self.used;
        assert!(child < POOL_TABLES, "page-table pool exhausted");
        self.used += 1;
        let address = table_address(&self.tables[child]);
        // The tables are private memory: their entries carry the C-bit.
        let private = PRIVATE.load(Ordering::Relaxed);
        self.tables[parent][index].set_addr(PhysAddr::new(address | private), Flags::PRESENT | Flags::WRITABLE);
        child
    }
}

/// The access of the page holding `addr` in the live tables (from CR3), or `None` if it is not mapped.
/// Flags are combined across levels as the CPU does: writable only if every level is, no-execute if any level is.
pub fn translate(addr: u64) -> Option<Flags> {
    let mut table_addr = Cr3::read().0.start_address().as_u64();
    let mut writable = true;
    let mut no_execute = false;
    for level in (0..4u32).rev() {
        // SAFETY: page tables are identity-mapped in the pool, which the kernel's own tables map read-write.
        let table = unsafe { &*(table_addr as *const PageTable) };
        let entry = &table[((addr >> (12 + 9 * level)) & 0x1ff) as usize];
        let flags = entry.flags();
        if !flags.contains(Flags::PRESENT) {
            return None;
        }
        writable &= flags.contains(Flags::WRITABLE);
        no_execute |= flags.contains(Flags::NO_EXECUTE);
        if level == 0 || flags.contains(Flags::HUGE_PAGE) {
            let mut access = Flags::PRESENT;
            access.set(Flags::WRITABLE, writable);
            access.set(Flags::NO_EXECUTE, no_execute);
            return Some(access);
        }
        table_addr = entry_target(entry);
    }
    None
}

/// Counts the mapped pages (4 KiB and 2 MiB leaves) and the writable-and-executable ones, across the live tables.
pub fn audit() -> PagingAudit {
    let mut audit = PagingAudit::default();
    walk(Cr3::read().0.start_address().as_u64(), 3, true, false, &mut audit);
    audit
}

/// What [`audit`] found.
#[derive(Clone, Copy, Debug, Default)]
pub struct PagingAudit {
    /// Mapped 4 KiB pages.
    pub small_pages: u64,
    /// Mapped 2 MiB pages.
    pub huge_pages: u64,
    /// Pages that are both writable and executable; must be 0.
    pub writable_and_executable: u64,
}

fn walk(table_addr: u64, level: u32, writable: bool, no_execute: bool, audit: &mut PagingAudit) {
    // SAFETY: as in `translate`.
    let table = unsafe { &*(table_addr as *const PageTable) };
    for entry in table.iter().filter(|e| e.flags().contains(Flags::PRESENT)) {
        let flags = entry.flags();
        let writable = writable && flags.contains(Flags::WRITABLE);
        let no_execute = no_execute || flags.contains(Flags::NO_EXECUTE);
        if level == 0 || flags.contains(Flags::HUGE_PAGE) {
            *if level == 0 { &mut audit.small_pages } else { &mut audit.huge_pages } += 1;
            audit.writable_and_executable += u64::from(writable && !no_execute);
        } else {
            walk(entry_target(entry), level - 1, writable, no_execute, audit);
        }
    }
}
