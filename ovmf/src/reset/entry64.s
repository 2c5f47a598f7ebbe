# entry64.s: the first 64-bit instructions, in the kernel's RAM copy (.text.ampoule_entry).
#
# The boot GDT's data selector is still loaded; the kernel installs its own GDT first thing.

.section .text.ampoule_entry, "ax"
.code64
.globl long_mode_start
long_mode_start:
    xorl %eax, %eax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    movw %ax, %ss
    movq $__boot_stack_top, %rsp
    xorl %ebp, %ebp
    # ampoule_main(boot_info: *const BootInfo) -> !
    movq $BOOT_INFO, %rdi
    call ampoule_main
1:  cli
    hlt
    jmp 1b
