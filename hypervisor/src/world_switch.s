# world_switch(vmcb_pa: RDI, registers: RSI, extended: RDX): one VMRUN (AMD64 APM vol. 2, 15.5).
#
# VMRUN loads RAX, RSP, RIP and the rest of the guest's save area from the VMCB, but not the other general
# registers, nor FS, GS, TR, LDTR and the syscall MSRs (VMLOAD/VMSAVE move those), nor the x87/SSE/AVX state.
# Those are loaded from and saved to `registers` (layout: svm::GuestRegisters) and `extended` (XSAVE, XCR0 = 7)
# here. At #VMEXIT the CPU restores the host's RAX, RSP and RIP from the host save area.

.text
.globl world_switch
world_switch:
    pushq %rbx
    pushq %rbp
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    pushq %rdi                      # 16(%rsp) after the next two pushes: the VMCB
    pushq %rsi                      # 8(%rsp): the registers
    pushq %rdx                      # 0(%rsp): the extended state

    movl $7, %eax
    xorl %edx, %edx
    movq 0(%rsp), %rcx
    xrstor64 (%rcx)

    movq 8(%rsp), %rsi
    movq 0x00(%rsi), %rbx
    movq 0x08(%rsi), %rcx
    movq 0x10(%rsi), %rdx
    movq 0x20(%rsi), %rdi
    movq 0x28(%rsi), %rbp
    movq 0x30(%rsi), %r8
    movq 0x38(%rsi), %r9
    movq 0x40(%rsi), %r10
    movq 0x48(%rsi), %r11
    movq 0x50(%rsi), %r12
    movq 0x58(%rsi), %r13
    movq 0x60(%rsi), %r14
    movq 0x68(%rsi), %r15
    movq 0x18(%rsi), %rsi
    movq 16(%rsp), %rax
    vmload %rax
    vmrun %rax
    vmsave %rax

    pushq %rsi                      # the guest's RSI; the saved pointers move up by 8
    movq 16(%rsp), %rsi
    movq %rbx, 0x00(%rsi)
    movq %rcx, 0x08(%rsi)
    movq %rdx, 0x10(%rsi)
    movq %rdi, 0x20(%rsi)
    movq %rbp, 0x28(%rsi)
    movq %r8, 0x30(%rsi)
    movq %r9, 0x38(%rsi)
    movq %r10, 0x40(%rsi)
    movq %r11, 0x48(%rsi)
    movq %r12, 0x50(%rsi)
    movq %r13, 0x58(%rsi)
    movq %r14, 0x60(%rsi)
    movq %r15, 0x68(%rsi)
    popq %rax
    movq %rax, 0x18(%rsi)

    movl $7, %eax
    xorl %edx, %edx
    movq 0(%rsp), %rcx
    xsave64 (%rcx)

    addq $24, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbp
    popq %rbx
    ret
