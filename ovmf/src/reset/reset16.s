# reset16.s: the first instructions after reset, in 16-bit real mode.
#
# After reset CS.selector = 0xF000 and CS.base = 0xFFFF0000 (Intel SDM vol. 3A, 9.1.4), so the reset vector and
# everything reached before protected mode must lie in the top 64 KiB, addressed CS-relative.

# Selectors of the boot GDT below.
.set BOOT_CS32, 0x08
.set BOOT_DS, 0x10
.set BOOT_CS64, 0x18

.set CR0_PE, 1 << 0

.section .reset_vector, "ax"
.code16
.globl reset_vector
reset_vector:
    # 4 GiB - 16. Every vCPU of a plain VM or an SEV-SNP guest arrives here in 16-bit real mode; every vCPU of an
    # Intel TDX guest arrives in 32-bit flat protected mode (DESIGN.md §9). The first three instructions encode the
    # same in both modes: MOV from CR0 always moves 32 bits, and TEST AL / JNZ rel8 have no operand-size variants.
    # CR0.PE tells the modes apart; each path then jumps with its own encoding.
    movl %cr0, %eax                         # 0F 20 C0
    testb $CR0_PE, %al                      # A8 01
    jnz 1f                                  # 75 03
    jmp real_mode_start                     # E9 rel16 (16-bit mode only)
.code32
1:  jmp tdx_entry32                         # E9 rel32 (32-bit mode only)

.section .ap_entry, "ax"
.code16
.globl ap_entry
ap_entry:
    # 4 GiB - 0x20, named by the SEV-ES reset block: under SEV-ES/SNP the VMM starts every AP here in real mode
    # (CS.base = 0xFFFF0000, IP = 0xFFE0). Ampoule runs on one vCPU: APs stop here and touch nothing.
    cli
1:  hlt
    jmp 1b

.section .reset.text16, "ax"
.code16
real_mode_start:
    cli
    cld
    # The TSC at reset, kept in ESI (low) and EDI (high) until RAM is usable in protected mode.
    rdtsc
    movl %eax, %esi
    movl %edx, %edi
    # LGDT with a 32-bit operand size loads the full 32-bit base; the operand is addressed CS-relative.
    lgdtl %cs:(boot_gdt_descriptor - 0xffff0000)
    movl %cr0, %eax
    orl $CR0_PE, %eax
    movl %eax, %cr0
    # A far jump loads CS from the GDT: from here on the CPU runs 32-bit code with flat segments.
    ljmpl $BOOT_CS32, $protected_mode_start

.section .reset.rodata, "a"
.balign 8
# The boot GDT lives in ROM, which is read-only under plain QEMU: the accessed bits are preset so the CPU never
# needs to write them. Intel SDM vol. 3A, 3.4.5 (segment descriptors).
boot_gdt:
    .quad 0                         # null
    .quad 0x00cf9b000000ffff        # 0x08: 32-bit code, base 0, limit 4 GiB, present, execute/read, accessed
    .quad 0x00cf93000000ffff        # 0x10: data, base 0, limit 4 GiB, present, read/write, accessed
    .quad 0x00af9b000000ffff        # 0x18: 64-bit code (L = 1, D = 0), present, execute/read, accessed
boot_gdt_end:

.globl boot_gdt_descriptor
boot_gdt_descriptor:
    .word boot_gdt_end - boot_gdt - 1
    .long boot_gdt
