/*
 * rt.h - tiny runtime for wiper's -nostdlib -static i386 test programs.
 *
 * Provides _start (rt/start.S), raw int 0x80 system calls, printing and
 * parsing of decimal numbers, and the memset/memcpy/memmove/memcmp symbols
 * that gcc may emit calls to even with -nostdlib.
 */
#ifndef WIPER_RT_H
#define WIPER_RT_H

/*
 * Marks a function that a later wiper test specializes: gcc must neither
 * inline it, clone it (.constprop/.isra) nor use interprocedural facts
 * about it, so main really calls the one copy with the source's signature.
 */
#define WIPER_TARGET __attribute__((noipa))

/* Linux i386 system call numbers (int 0x80, number in eax). */
#define SYS_EXIT 1
#define SYS_READ 3
#define SYS_WRITE 4

typedef unsigned int rt_size_t;

/* Raw system calls. */
void rt_exit(int status) __attribute__((noreturn));
int rt_write(int fd, const void *buf, int len);
int rt_read(int fd, void *buf, int len);

/* Output to stdout. */
void print_str(const char *s);
void print_int(int v);
void print_nl(void);

/* Input. */
int parse_int(const char *s); /* decimal with optional '-', or 0x hex */
int read_int(void);           /* next decimal from stdin, 0 at EOF */

/* Strings and memory. */
int rt_strlen(const char *s);
void *rt_memset(void *d, int c, rt_size_t n);
void *rt_memcpy(void *d, const void *s, rt_size_t n);
void *memset(void *d, int c, rt_size_t n);
void *memcpy(void *d, const void *s, rt_size_t n);
void *memmove(void *d, const void *s, rt_size_t n);
int memcmp(const void *a, const void *b, rt_size_t n);

#endif
