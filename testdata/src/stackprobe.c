/* stackprobe: prints the initial process stack as the kernel (or a model of
 * it) laid it out: argc, the argv and envp strings, where argv lies modulo
 * 16 (the stack pointer's alignment at the entry point), and the auxiliary
 * vector's entries of the types listed below, each with its value or
 * "absent" (strings for the entries that point to one). wiper's extraction
 * tests run the original (the kernel's stack) and an extracted copy (the
 * stack wiper builds in) with the same command line, and compare. */
#include <elf.h>
#include <stdint.h>
#include <stdio.h>

static const struct {
    unsigned type;
    const char *name;
    int string;
} types[] = {
    {AT_PHDR, "AT_PHDR", 0},         {AT_PHENT, "AT_PHENT", 0},
    {AT_PHNUM, "AT_PHNUM", 0},       {AT_PAGESZ, "AT_PAGESZ", 0},
    {AT_BASE, "AT_BASE", 0},         {AT_FLAGS, "AT_FLAGS", 0},
    {AT_ENTRY, "AT_ENTRY", 0},       {AT_UID, "AT_UID", 0},
    {AT_EUID, "AT_EUID", 0},         {AT_GID, "AT_GID", 0},
    {AT_EGID, "AT_EGID", 0},         {AT_PLATFORM, "AT_PLATFORM", 1},
    {AT_HWCAP, "AT_HWCAP", 0},       {AT_CLKTCK, "AT_CLKTCK", 0},
    {AT_SECURE, "AT_SECURE", 0},     {AT_RANDOM, "AT_RANDOM", 0},
    {AT_HWCAP2, "AT_HWCAP2", 0},     {AT_EXECFN, "AT_EXECFN", 1},
    {AT_SYSINFO, "AT_SYSINFO", 0},   {AT_SYSINFO_EHDR, "AT_SYSINFO_EHDR", 0},
    {51 /* AT_MINSIGSTKSZ */, "AT_MINSIGSTKSZ", 0},
};

/* Prints the entry of type types[t] in the auxiliary vector at auxv. */
__attribute__((noinline))
void print_entry(const Elf32_auxv_t *auxv, unsigned t)
{
    const Elf32_auxv_t *a = auxv;
    while (a->a_type != AT_NULL && a->a_type != types[t].type)
        a++;
    if (a->a_type == AT_NULL)
        printf("%s absent\n", types[t].name);
    else if (types[t].string)
        printf("%s %s\n", types[t].name, (const char *)a->a_un.a_val);
    else
        printf("%s %#x\n", types[t].name, (unsigned)a->a_un.a_val);
}

int main(int argc, char **argv, char **envp)
{
    printf("argc %d\n", argc);
    printf("argv mod 16: %u\n", (unsigned)((uintptr_t)argv % 16));
    for (int i = 0; i < argc; i++)
        printf("argv[%d] %s\n", i, argv[i]);
    if (argv[argc] != 0)
        printf("argv[%d] not null\n", argc);
    char **e = envp;
    while (*e)
        printf("env %s\n", *e++);
    if (envp != argv + argc + 1)
        printf("envp not after argv\n");
    for (unsigned t = 0; t < sizeof types / sizeof types[0]; t++)
        print_entry((const Elf32_auxv_t *)(e + 1), t);
    return 0;
}
