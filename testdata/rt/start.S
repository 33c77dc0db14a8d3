/*
 * _start for wiper's -nostdlib -static i386 test programs.
 *
 * On entry the kernel leaves [esp] = argc, [esp+4] = argv[0], ...
 * We call main(argc, argv) with a 16-byte aligned stack (the i386 System V
 * ABI as gcc assumes it) and exit with main's return value.
 */
	.text
	.globl	_start
	.type	_start, @function
_start:
	xorl	%ebp, %ebp		/* outermost frame */
	movl	(%esp), %eax		/* argc */
	leal	4(%esp), %ecx		/* argv */
	andl	$-16, %esp
	subl	$8, %esp
	pushl	%ecx
	pushl	%eax
	call	main
	movl	%eax, %ebx		/* exit status */
	movl	$1, %eax		/* SYS_EXIT */
	int	$0x80
	hlt
	.size	_start, .-_start

	.section .note.GNU-stack,"",@progbits
