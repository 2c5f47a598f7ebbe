//! The TDX attester's platform calls ([`loader::TdxCalls`]): TDG.MR.REPORT into private memory, and the GetQuote
//! TDVMCALL over a buffer in the shared pages, which is only ever copied (DESIGN.md §4).

use loader::TdxCalls;
use ovmf::layout::PAGE_SIZE;
use ovmf::tdx::tdcall::{TDX_SUCCESS, leaf};
use ovmf::tdx::tdvmcall::{TDG_VP_VMCALL_SUCCESS, TdVmCall};
use protocol::tdx::TDREPORT_LEN;
use spin::Mutex;

use super::tdcall::{tdcall, tdvmcall};
use crate::{paging, shared, time};

/// The GetQuote buffer: 16 KiB, room for a quote with its PCK certificate chain (about 5 KiB) and more.
const BUFFER_PAGES: u64 = 4;
/// The wait between two polls of the buffer.
const POLL_INTERVAL_MS: u64 = 10;

/// TDG.MR.REPORT's operands: the TDREPORT_STRUCT (1024-byte aligned) and the report data (64-byte aligned), in
/// private memory.
#[repr(C, align(1024))]
struct ReportOperands {
    report: [u8; TDREPORT_LEN],
    report_data: ReportData,
}

#[repr(C, align(64))]
struct ReportData([u8; 64]);

static OPERANDS: Mutex<ReportOperands> =
    Mutex::new(ReportOperands { report: [0; TDREPORT_LEN], report_data: ReportData([0; 64]) });

/// The TD's calls for quotes: the shared buffer is taken once, for the life of the boot.
pub struct TdQuoteCalls {
    buffer: u64,
}

impl TdQuoteCalls {
    /// Takes the shared GetQuote buffer.
    pub fn new() -> Self {
        TdQuoteCalls { buffer: shared::pages(BUFFER_PAGES) }
    }
}

impl TdxCalls for TdQuoteCalls {
    fn report(&mut self, report_data: &[u8; 64]) -> Result<[u8; TDREPORT_LEN], u64> {
        let mut operands = OPERANDS.lock();
        operands.report_data.0 = *report_data;
        let report_gpa = operands.report.as_ptr() as u64;
        let data_gpa = operands.report_data.0.as_ptr() as u64;
        // SAFETY: the operands are private memory (.bss, identity-mapped, so the address is the GPA), aligned as
        // TDG.MR.REPORT demands, and held locked; the module writes only the 1 KiB report.
        let status = unsafe { tdcall(leaf::TDG_MR_REPORT, report_gpa, data_gpa, 0) }.rax;
        if status != TDX_SUCCESS {
            return Err(status);
        }
        Ok(operands.report)
    }

    fn buffer_len(&self) -> usize {
        (BUFFER_PAGES * PAGE_SIZE) as usize
    }

    fn write_buffer(&mut self, bytes: &[u8]) {
        let len = bytes.len().min(self.buffer_len());
        // SAFETY: the buffer is this value's own shared pages, mapped read-write, buffer_len bytes long.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), self.buffer as *mut u8, len) };
    }

    fn get_quote(&mut self) -> Result<(), u64> {
        let gpa = self.buffer | paging::shared_mask();
        let answer = tdvmcall(TdVmCall::get_quote(gpa, self.buffer_len() as u64));
        if answer.status != TDG_VP_VMCALL_SUCCESS {
            return Err(answer.status);
        }
        Ok(())
    }

    fn read_buffer(&mut self, into: &mut [u8]) {
        let len = into.len().min(self.buffer_len());
        // SAFETY: as in write_buffer; the VMM may write the buffer meanwhile, which only changes the bytes copied.
        unsafe { core::ptr::copy_nonoverlapping(self.buffer as *const u8, into.as_mut_ptr(), len) };
    }

    fn wait(&mut self) {
        let until = time::now_ms() + POLL_INTERVAL_MS;
        while time::now_ms() < until {
            core::hint::spin_loop();
        }
    }
}
