# tdx32.s: where a TDX vCPU goes from the reset vector, in 32-bit flat protected mode with paging off.
#
# The TDX module starts every vCPU of a TD at the reset vector at once, with RSI = VCPU_INDEX (0 for the boot vCPU),
# RBX[5:0] = GPAW, RCX = R8 = the TD HOB's address and RDX = VCPUID (Intel TDX module base spec, "Initial TD vCPU
# state"; GHCI 1.5, "TD VCPU initial state"). Ampoule serves on one vCPU: every other one spins on PAUSE here before
# it touches memory, for good (HLT would raise #VE, and no IDT exists). The kernel learns GPAW from TDG.VP.INFO and
# reads the TD HOB at the address the TDVF metadata fixed, so nothing else is carried over from these registers.
#
# The boot vCPU reads the TSC as the 16-bit path does, loads the boot GDT and joins protected_mode_start in
# reset32.s with ESI:EDI = the reset TSC.

.set BOOT_CS32, 0x08

.section .reset.text32, "ax"
.code32
.globl tdx_entry32
tdx_entry32:
    cli
    cld
    testl %esi, %esi
    jnz park_application_vcpu
    rdtsc
    movl %eax, %esi
    movl %edx, %edi
    lgdtl boot_gdt_descriptor
    ljmpl $BOOT_CS32, $protected_mode_start

park_application_vcpu:
1:  pause
    jmp 1b
