# entry.s: the exception entry stubs. Every vector 0-31 has a stub that makes the stack uniform (pushes a zero error
# code where the CPU pushes none, then the vector number) and jumps to exception_common, which saves the general
# registers and the extended state (XSAVE: x87, SSE, AVX) before any Rust runs, calls exception_dispatch(frame), and
# restores everything on return. AT&T syntax.
#
# Stack at exception_common, from low to high addresses (interrupts::ExceptionFrame mirrors it):
#   r15 r14 r13 r12 r11 r10 r9 r8 rdi rsi rbp rbx rdx rcx rax | vector error_code | rip cs rflags rsp ss

# XSAVE area: 512 (legacy) + 64 (header) + 256 (AVX) = 832 bytes for XCR0 = 0x7 (Intel SDM vol. 1, 13.4 and 13.5);
# 1024 leaves room for the 64-byte alignment.
.set XSAVE_AREA_SIZE, 1024
.set XSAVE_HEADER_OFFSET, 512
.set XCR0_X87_SSE_AVX, 0x7

.macro EXCEPTION_STUB vector, cpu_pushes_error_code
.balign 16
exception_stub_\vector:
    .if \cpu_pushes_error_code == 0
    pushq $0
    .endif
    pushq $\vector
    jmp exception_common
.endm

.section .text.exception_entry, "ax"
.code64
# Intel SDM vol. 3A, table 6-1: the CPU pushes an error code for 8, 10-14, 17, 21, 29 and 30.
EXCEPTION_STUB 0, 0
EXCEPTION_STUB 1, 0
EXCEPTION_STUB 2, 0
EXCEPTION_STUB 3, 0
EXCEPTION_STUB 4, 0
EXCEPTION_STUB 5, 0
EXCEPTION_STUB 6, 0
EXCEPTION_STUB 7, 0
EXCEPTION_STUB 8, 1
EXCEPTION_STUB 9, 0
EXCEPTION_STUB 10, 1
EXCEPTION_STUB 11, 1
EXCEPTION_STUB 12, 1
EXCEPTION_STUB 13, 1
EXCEPTION_STUB 14, 1
EXCEPTION_STUB 15, 0
EXCEPTION_STUB 16, 0
EXCEPTION_STUB 17, 1
EXCEPTION_STUB 18, 0
EXCEPTION_STUB 19, 0
EXCEPTION_STUB 20, 0
EXCEPTION_STUB 21, 1
EXCEPTION_STUB 22, 0
EXCEPTION_STUB 23, 0
EXCEPTION_STUB 24, 0
EXCEPTION_STUB 25, 0
EXCEPTION_STUB 26, 0
EXCEPTION_STUB 27, 0
EXCEPTION_STUB 28, 0
EXCEPTION_STUB 29, 1
EXCEPTION_STUB 30, 1
EXCEPTION_STUB 31, 0

exception_common:
    pushq %rax
    pushq %rcx
    pushq %rdx
    pushq %rbx
    pushq %rbp
    pushq %rsi
    pushq %rdi
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    # RBX (callee-saved) keeps the frame address across the call.
    movq %rsp, %rbx
    cld
    subq $XSAVE_AREA_SIZE, %rsp
    andq $-64, %rsp
    # XSAVE writes XSTATE_BV but not the rest of the header, and XRSTOR faults on non-zero reserved bytes.
    xorl %eax, %eax
    movq %rax, XSAVE_HEADER_OFFSET + 0(%rsp)
    movq %rax, XSAVE_HEADER_OFFSET + 8(%rsp)
    movq %rax, XSAVE_HEADER_OFFSET + 16(%rsp)
    movq %rax, XSAVE_HEADER_OFFSET + 24(%rsp)
    movq %rax, XSAVE_HEADER_OFFSET + 32(%rsp)
    movq %rax, XSAVE_HEADER_OFFSET + 40(%rsp)
    movq %rax, XSAVE_HEADER_OFFSET + 48(%rsp)
    movq %rax, XSAVE_HEADER_OFFSET + 56(%rsp)
    movl $XCR0_X87_SSE_AVX, %eax
    xorl %edx, %edx
    xsave (%rsp)
    # exception_dispatch(frame: &mut ExceptionFrame); RSP is 64-byte aligned here, as the call ABI needs.
    movq %rbx, %rdi
    call exception_dispatch
    movl $XCR0_X87_SSE_AVX, %eax
    xorl %edx, %edx
    xrstor (%rsp)
    movq %rbx, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rdi
    popq %rsi
    popq %rbp
    popq %rbx
    popq %rdx
    popq %rcx
    popq %rax
    # Drop the vector and the error code.
    addq $16, %rsp
    iretq

.section .rodata.exception_stub_table, "a"
.balign 8
.globl exception_stub_table
exception_stub_table:
    .quad exception_stub_0, exception_stub_1, exception_stub_2, exception_stub_3
    .quad exception_stub_4, exception_stub_5, exception_stub_6, exception_stub_7
    .quad exception_stub_8, exception_stub_9, exception_stub_10, exception_stub_11
    .quad exception_stub_12, exception_stub_13, exception_stub_14, exception_stub_15
    .quad exception_stub_16, exception_stub_17, exception_stub_18, exception_stub_19
    .quad exception_stub_20, exception_stub_21, exception_stub_22, exception_stub_23
    .quad exception_stub_24, exception_stub_25, exception_stub_26, exception_stub_27
    .quad exception_stub_28, exception_stub_29, exception_stub_30, exception_stub_31
