# boot.s: from QEMU's multiboot hand-off (32-bit protected mode, paging off, EAX = 0x2BADB002, EBX = the
# multiboot information) to 64-bit Rust. The hypervisor must itself run in long mode: QEMU takes the nested page
# tables' format from the host's paging mode at VMRUN (DESIGN.md §10).
#
# 1. A stack, the boot page tables: an identity map of the low 4 GiB with 1 GiB pages (guest RAM, the hypervisor,
#    the modules and the devices' MMIO all lie below 4 GiB).
# 2. x87/SSE/AVX state (CR0.MP, CR4.OSFXSR/OSXMMEXCPT/OSXSAVE, XCR0 = 7): compiled Rust uses SSE, and the
#    world switch saves the guest's AVX state with XSAVE.
# 3. PAE, 5-level paging (CR4.LA57, a PML5 above the PML4) where the CPU has it, EFER.LME, paging; a far jump to
#    64-bit code; `hypervisor_main(multiboot_info)`. With LA57 the nested tables have 5 levels too, which a TD with
#    GPAW 52 needs: its shared bit (51) is beyond the 48 bits 4-level tables translate.

.set MULTIBOOT_MAGIC, 0x1badb002
# Flags: modules page-aligned (0), memory information (1), load addresses in the header (16).
.set MULTIBOOT_FLAGS, (1 << 0) | (1 << 1) | (1 << 16)
.set CR0_MP, 1 << 1
.set CR0_EM, 1 << 2
.set CR0_PG, 1 << 31
.set CR4_PAE, 1 << 5
.set CR4_OSFXSR, 1 << 9
.set CR4_OSXMMEXCPT, 1 << 10
.set CR4_OSXSAVE, 1 << 18
.set CR4_LA57, 1 << 12
# CPUID.(EAX=7,ECX=0):ECX[16]: 5-level paging.
.set CPUID_7_ECX_LA57, 1 << 16
.set MSR_EFER, 0xc0000080
.set EFER_LME, 1 << 8
.set PTE_PRESENT_WRITABLE, 0x3
.set PTE_HUGE, 1 << 7
.set CODE64, 0x08
.set DATA, 0x10

.section .multiboot, "a"
.balign 4
multiboot_header:
    .long MULTIBOOT_MAGIC
    .long MULTIBOOT_FLAGS
    .long -(MULTIBOOT_MAGIC + MULTIBOOT_FLAGS)
    .long multiboot_header              # header_addr
    .long __load_start                  # load_addr
    .long __load_end                    # load_end_addr
    .long __bss_end                     # bss_end_addr
    .long multiboot_entry               # entry_addr

.section .text.boot32, "ax"
.code32
.globl multiboot_entry
multiboot_entry:
    cli
    cld
    movl $boot_stack_top, %esp
    movl %ebx, %edi                     # the multiboot information, kept for hypervisor_main

    # 1. PML4[0] -> PDPT; PDPT[0..4] = 1 GiB pages at 0, 1, 2, 3 GiB.
    movl $boot_pdpt, %eax
    orl $PTE_PRESENT_WRITABLE, %eax
    movl %eax, boot_pml4
    xorl %ecx, %ecx
1:  movl %ecx, %eax
    shll $30, %eax
    orl $(PTE_PRESENT_WRITABLE | PTE_HUGE), %eax
    movl %eax, boot_pdpt(, %ecx, 8)
    incl %ecx
    cmpl $4, %ecx
    jb 1b

    # 2. Extended state.
    movl %cr0, %eax
    andl $~CR0_EM, %eax
    orl $CR0_MP, %eax
    movl %eax, %cr0
    movl %cr4, %eax
    orl $(CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT | CR4_OSXSAVE), %eax
    movl %eax, %cr4
    xorl %ecx, %ecx
    xorl %edx, %edx
    movl $7, %eax
    xsetbv

    # 3. Long mode, with 5 levels where the CPU has them.
    movl $7, %eax
    xorl %ecx, %ecx
    cpuid
    movl $boot_pml4, %eax
    testl $CPUID_7_ECX_LA57, %ecx
    jz 1f
    orl $PTE_PRESENT_WRITABLE, %eax
    movl %eax, boot_pml5
    movl %cr4, %eax
    orl $CR4_LA57, %eax
    movl %eax, %cr4
    movl $boot_pml5, %eax
1:  movl %eax, %cr3
    movl $MSR_EFER, %ecx
    rdmsr
    orl $EFER_LME, %eax
    wrmsr
    movl %cr0, %eax
    orl $CR0_PG, %eax
    movl %eax, %cr0
    lgdtl gdt_descriptor
    ljmpl $CODE64, $long_mode

.code64
long_mode:
    movw $DATA, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    xorw %ax, %ax
    movw %ax, %fs
    movw %ax, %gs
    movq $boot_stack_top, %rsp
    # EDI still holds the multiboot information's address (zero-extended by the 32-bit move).
    call hypervisor_main
2:  cli
    hlt
    jmp 2b

.section .rodata
.balign 8
gdt:
    .quad 0
    .quad 0x00af9b000000ffff            # 0x08: 64-bit code
    .quad 0x00cf93000000ffff            # 0x10: data
gdt_end:
gdt_descriptor:
    .word gdt_end - gdt - 1
    .long gdt

.section .bss.pages, "aw", @nobits
.balign 4096
boot_pml5:
    .skip 4096
boot_pml4:
    .skip 4096
boot_pdpt:
    .skip 4096
boot_stack:
    .skip 256 * 1024
boot_stack_top:
