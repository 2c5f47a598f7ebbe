# reset32.s: 32-bit protected mode, flat segments, no paging yet.
#
# 1. Zero the boot scratch RAM, save the reset TSC there, take a temporary stack from it, load a 32-bit IDT whose
#    only gate is #VC (under SEV-SNP every CPUID raises #VC, and no IDT exists yet: DESIGN.md §9).
# 2. Check every CPUID bit in AMPOULE_REQUIRED_CPUID (ovmf::cpu_features): compiled Rust may use any of them.
#    Then, if CPUID offers SEV, read SEV_STATUS; under SNP take the C-bit from the CPUID page.
# 3. Build the boot page tables: an identity map of the low 4 GiB with 2 MiB pages, every entry with the C-bit
#    under SNP (private memory). The kernel's first act in Rust is to replace them with its own W^X tables
#    (kernel/src/paging.rs). Until paging is on, every access is private under SNP.
# 4. Copy the kernel's load image from the ROM payload to RAM_IMAGE and zero .bss.
# 5. Enable x87/SSE/AVX state (CR0, CR4, XCR0 = 0x7), PAE, long mode, NX and paging, and far-jump to 64-bit code.

.set BOOT_CS32, 0x08
.set BOOT_DS, 0x10
.set BOOT_CS64, 0x18

.set CR0_MP, 1 << 1
.set CR0_EM, 1 << 2
.set CR0_NE, 1 << 5
.set CR0_WP, 1 << 16
.set CR0_NW, 1 << 29
.set CR0_CD, 1 << 30
.set CR0_PG, 1 << 31
.set CR4_PAE, 1 << 5
.set CR4_OSFXSR, 1 << 9
.set CR4_OSXMMEXCPT, 1 << 10
.set CR4_OSXSAVE, 1 << 18
.set MSR_EFER, 0xc0000080
.set EFER_LME, 1 << 8
.set EFER_NXE, 1 << 11
# XCR0: x87 | SSE | AVX state (DESIGN.md §9: not every bit CPUID offers).
.set XCR0_X87_SSE_AVX, 0x7
# Page-table entry bits (Intel SDM vol. 3A, 4.5).
.set PTE_PRESENT, 1 << 0
.set PTE_WRITABLE, 1 << 1
.set PTE_HUGE, 1 << 7
# Boot-info block offsets (ovmf::layout::boot_scratch::BootInfo, tested there).
.set INFO_RESET_TSC, 0
.set INFO_MAX_BASIC_LEAF, 8
.set INFO_MAX_EXTENDED_LEAF, 12
.set INFO_SEV_STATUS, 16
.set INFO_C_BIT, 24
# SEV (AMD64 APM vol. 3, CPUID Fn8000_001F; vol. 2, 15.34.10 SEV_STATUS).
.set LEAF_SEV_FEATURES, 0x8000001f
.set SEV_FEATURE_SEV, 1 << 1
.set MSR_SEV_STATUS, 0xc0010131
.set SEV_STATUS_SNP, 1 << 2
# #VC (vector 29); its error code is the exit code (GHCB specification §4.1): CPUID = 0x72.
.set VECTOR_VC, 29
.set SVM_EXIT_CPUID, 0x72
.set GATE32_INTERRUPT, 0x8e00
# The SNP CPUID page (ovmf::snp::cpuid_page): COUNT at 0, 0x30-byte entries from 16 with EAX_IN at 0, ECX_IN at 4
# and EAX, EBX, ECX, EDX at 24..40.
.set CPUID_PAGE_MAX_COUNT, 64
.set CPUID_ENTRIES, 16
.set CPUID_ENTRY_LEN, 0x30
# GHCB MSR protocol termination (ovmf::snp::ghcb_msr): 0x100 | set << 12 | code << 16; set 1 = Ampoule's reasons.
.set MSR_SEV_ES_GHCB, 0xc0010130
.set TERMINATE_UNHANDLED_VC, 0x100 | (1 << 12) | (1 << 16)
.set TERMINATE_BAD_CPUID_PAGE, 0x100 | (1 << 12) | (2 << 16)
# Serial line status register: transmitter holding register empty.
.set UART_LSR, 5
.set UART_LSR_THRE, 1 << 5

.section .reset.text32, "ax"
.code32
.globl protected_mode_start
protected_mode_start:
    movw $BOOT_DS, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs

    # 1. Boot scratch: zero its tables and boot info, keep the reset TSC, use its top as a stack.
    #    Doubleword string operations: every size here is a whole number of pages (asserted in the linker script).
    movl %edi, %ebx                         # TSC high, before EDI is reused
    movl $BOOT_SCRATCH_BASE, %edi
    movl $BOOT_SCRATCH_USED_DWORDS, %ecx
    xorl %eax, %eax
    rep stosl
    movl %esi, BOOT_INFO + INFO_RESET_TSC
    movl %ebx, BOOT_INFO + INFO_RESET_TSC + 4
    movl $BOOT_SCRATCH_STACK_TOP, %esp
    # The #VC gate, built here because its offset is only known at link time (the rest of the IDT stays zero).
    movl $vc_handler32, %eax
    movw %ax, BOOT_IDT32 + VECTOR_VC * 8
    movw $BOOT_CS32, BOOT_IDT32 + VECTOR_VC * 8 + 2
    movw $GATE32_INTERRUPT, BOOT_IDT32 + VECTOR_VC * 8 + 4
    shrl $16, %eax
    movw %ax, BOOT_IDT32 + VECTOR_VC * 8 + 6
    lidtl idt32_descriptor

    # 2. CPU features, then SEV: EBP = the C-bit as a mask of the entries' high doublewords (0 without SNP).
    call check_cpu_features
    call detect_snp

    # 3. Boot page tables: PML4[0] -> PDPT, PDPT[0..4] -> four page directories of 2 MiB pages.
    movl $(BOOT_PDPT + PTE_PRESENT + PTE_WRITABLE), BOOT_PML4
    movl %ebp, BOOT_PML4 + 4
    xorl %ecx, %ecx
1:  movl %ecx, %eax
    shll $12, %eax
    addl $(BOOT_PD + PTE_PRESENT + PTE_WRITABLE), %eax
    movl %eax, BOOT_PDPT(, %ecx, 8)
    movl %ebp, BOOT_PDPT + 4(, %ecx, 8)
    incl %ecx
    cmpl $4, %ecx
    jb 1b
    xorl %ecx, %ecx
2:  movl %ecx, %eax
    shll $21, %eax
    orl $(PTE_PRESENT + PTE_WRITABLE + PTE_HUGE), %eax
    movl %eax, BOOT_PD(, %ecx, 8)
    movl %ebp, BOOT_PD + 4(, %ecx, 8)
    incl %ecx
    cmpl $BOOT_PD_ENTRIES, %ecx
    jb 2b

    # 4. Extended state. CR0.CD/NW are set at reset: clear them so caches work.
    movl %cr0, %eax
    andl $~(CR0_EM | CR0_CD | CR0_NW), %eax
    orl $(CR0_MP | CR0_NE | CR0_WP), %eax
    movl %eax, %cr0
    movl %cr4, %eax
    orl $(CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT | CR4_OSXSAVE), %eax
    movl %eax, %cr4
    xorl %ecx, %ecx
    xorl %edx, %edx
    movl $XCR0_X87_SSE_AVX, %eax
    xsetbv

    # 5. Kernel load image: ROM payload -> RAM, then zero .bss, 128 bytes a step in AVX registers (every size is a
    #    whole number of pages: asserted in the linker script). Not `rep movs`: an emulator runs each of its
    #    iterations as one instruction, 4 bytes each, where this loop moves 128. The stacks are not zeroed: every
    #    stack slot is written before it is read.
    movl $PAYLOAD_BASE, %esi
    movl $RAM_IMAGE_BASE, %edi
    movl $__ram_load_blocks, %ecx
3:  vmovdqu (%esi), %ymm0
    vmovdqu 32(%esi), %ymm1
    vmovdqu 64(%esi), %ymm2
    vmovdqu 96(%esi), %ymm3
    vmovdqu %ymm0, (%edi)
    vmovdqu %ymm1, 32(%edi)
    vmovdqu %ymm2, 64(%edi)
    vmovdqu %ymm3, 96(%edi)
    addl $128, %esi
    addl $128, %edi
    decl %ecx
    jnz 3b
    vpxor %ymm0, %ymm0, %ymm0
    movl $__bss_start, %edi
    movl $__bss_blocks, %ecx
4:  vmovdqu %ymm0, (%edi)
    vmovdqu %ymm0, 32(%edi)
    vmovdqu %ymm0, 64(%edi)
    vmovdqu %ymm0, 96(%edi)
    addl $128, %edi
    decl %ecx
    jnz 4b
    vzeroall

    # 6. Long mode.
    movl $BOOT_PML4, %eax
    movl %eax, %cr3
    # EFER is written only if it changes: a TD starts with LME and NXE set, and writing EFER there raises #VE.
    movl $MSR_EFER, %ecx
    rdmsr
    movl %eax, %ebx
    orl $(EFER_LME | EFER_NXE), %eax
    cmpl %eax, %ebx
    je 6f
    wrmsr
6:
    movl %cr0, %eax
    orl $CR0_PG, %eax
    movl %eax, %cr0
    ljmpl $BOOT_CS64, $long_mode_start

# check_cpu_features: returns if every entry of AMPOULE_REQUIRED_CPUID is present; otherwise prints a record naming
# the first missing one and ends the run with EXIT_CPU_UNSUPPORTED. Entries are 32 bytes: leaf, subleaf, register
# (0 = EAX .. 3 = EDX), bit, NUL-padded name (layout tested in ovmf::cpu_features).
check_cpu_features:
    # ECX is set for every CPUID here: the #VC handler matches (EAX, ECX) exactly, and the CPUID page holds ECX_IN
    # = 0 for leaves without subleaves.
    xorl %eax, %eax
    xorl %ecx, %ecx
    cpuid
    movl %eax, BOOT_INFO + INFO_MAX_BASIC_LEAF
    movl $0x80000000, %eax
    xorl %ecx, %ecx
    cpuid
    movl %eax, BOOT_INFO + INFO_MAX_EXTENDED_LEAF
    movl $AMPOULE_REQUIRED_CPUID, %esi
    movl AMPOULE_REQUIRED_CPUID_COUNT, %edi
1:  testl %edi, %edi
    jz 9f
    movl 0(%esi), %eax
    # A leaf above the CPU's highest one returns unrelated data: count it as missing.
    movl BOOT_INFO + INFO_MAX_BASIC_LEAF, %edx
    testl $0x80000000, %eax
    jz 2f
    movl BOOT_INFO + INFO_MAX_EXTENDED_LEAF, %edx
2:  cmpl %edx, %eax
    ja cpu_feature_missing
    movl 4(%esi), %ecx
    cpuid
    movl 8(%esi), %ebp
    cmpl $1, %ebp
    jne 3f
    movl %ebx, %eax
3:  cmpl $2, %ebp
    jne 4f
    movl %ecx, %eax
4:  cmpl $3, %ebp
    jne 5f
    movl %edx, %eax
5:  movl 12(%esi), %ecx
    btl %ecx, %eax
    jnc cpu_feature_missing
    addl $32, %esi
    decl %edi
    jmp 1b
9:  ret

# ESI points at the missing entry.
cpu_feature_missing:
    movl $msg_cpu_prefix, %ebx
    call serial_puts
    leal 16(%esi), %ebx
    call serial_puts
    movl $msg_cpu_suffix, %ebx
    call serial_puts
    movw $DEBUG_EXIT_PORT, %dx
    movl $EXIT_CPU_UNSUPPORTED, %eax
    outl %eax, %dx
    # Without a debug-exit device: stop here.
1:  cli
    hlt
    jmp 1b

# detect_snp: if CPUID Fn8000_001F offers SEV, saves SEV_STATUS in the boot info (the MSR exists then, and reading it
# never raises #VC). Under SNP it checks the C-bit position from Fn8000_001F EBX[5:0] (answered from the CPUID page
# by the #VC handler, never by the hypervisor) lies in 32..=51, saves it, and returns EBP = 1 << (C-bit - 32);
# otherwise EBP = 0. Clobbers EAX, EBX, ECX, EDX.
detect_snp:
    xorl %ebp, %ebp
    cmpl $LEAF_SEV_FEATURES, BOOT_INFO + INFO_MAX_EXTENDED_LEAF
    jb 9f
    movl $LEAF_SEV_FEATURES, %eax
    xorl %ecx, %ecx
    cpuid
    testl $SEV_FEATURE_SEV, %eax
    jz 9f
    andl $0x3f, %ebx
    movl $MSR_SEV_STATUS, %ecx
    rdmsr
    movl %eax, BOOT_INFO + INFO_SEV_STATUS
    movl %edx, BOOT_INFO + INFO_SEV_STATUS + 4
    # SEV or SEV-ES without SNP: no C-bit here; the kernel refuses to run (platform::detect).
    testl $SEV_STATUS_SNP, %eax
    jz 9f
    cmpl $32, %ebx
    jb bad_cpuid_page
    cmpl $51, %ebx
    ja bad_cpuid_page
    movl %ebx, BOOT_INFO + INFO_C_BIT
    leal -32(%ebx), %ecx
    movl $1, %ebp
    shll %cl, %ebp
9:  ret

bad_cpuid_page:
    movl $TERMINATE_BAD_CPUID_PAGE, %eax
    jmp terminate

# vc_handler32: #VC before the kernel's IDT exists, so only under SEV-ES/SNP. CPUID is answered from the CPUID page
# (an absent leaf reads as zeros, as the hardware reports unknown leaves); anything else ends the guest through the
# GHCB MSR protocol, since no GHCB exists yet. Stack: error code (the exit code), EIP, CS, EFLAGS.
vc_handler32:
    cmpl $SVM_EXIT_CPUID, (%esp)
    jne unhandled_vc
    pushl %esi
    pushl %edi
    movl SNP_CPUID_BASE, %edi
    cmpl $CPUID_PAGE_MAX_COUNT, %edi
    ja bad_cpuid_page
    movl $(SNP_CPUID_BASE + CPUID_ENTRIES), %esi
1:  testl %edi, %edi
    jz 3f
    cmpl 0(%esi), %eax
    jne 2f
    cmpl 4(%esi), %ecx
    je 4f
2:  addl $CPUID_ENTRY_LEN, %esi
    decl %edi
    jmp 1b
3:  xorl %eax, %eax
    xorl %ebx, %ebx
    xorl %ecx, %ecx
    xorl %edx, %edx
    jmp 5f
4:  movl 24(%esi), %eax
    movl 28(%esi), %ebx
    movl 32(%esi), %ecx
    movl 36(%esi), %edx
5:  popl %edi
    popl %esi
    addl $4, %esp                           # the error code
    addl $2, (%esp)                         # past CPUID (0F A2)
    iretl

unhandled_vc:
    movl $TERMINATE_UNHANDLED_VC, %eax
# terminate: EAX = a GHCB MSR protocol termination request; the hypervisor ends the guest.
terminate:
    movl $MSR_SEV_ES_GHCB, %ecx
    xorl %edx, %edx
    wrmsr
    .byte 0xf3, 0x0f, 0x01, 0xd9             # VMGEXIT (REP VMMCALL)
1:  cli
    hlt
    jmp 1b

# serial_puts: writes the NUL-terminated string at EBX to COM1. Clobbers EAX, EBX, ECX, EDX, EBP.
serial_puts:
1:  movb (%ebx), %cl
    testb %cl, %cl
    jz 3f
    # Bounded wait for the transmitter: an absent UART must not hang the stub.
    movw $(SERIAL_PORT + UART_LSR), %dx
    movl $100000, %ebp
2:  inb %dx, %al
    testb $UART_LSR_THRE, %al
    jnz 4f
    decl %ebp
    jnz 2b
4:  movw $SERIAL_PORT, %dx
    movb %cl, %al
    outb %al, %dx
    incl %ebx
    jmp 1b
3:  ret

.section .reset.rodata, "a"
.balign 8
idt32_descriptor:
    .word VECTOR_VC * 8 + 7
    .long BOOT_IDT32
msg_cpu_prefix:
    .asciz "level=error target=boot msg=\"cpu feature missing\" need=x86-64-v3 feature="
msg_cpu_suffix:
    .asciz "\n"
