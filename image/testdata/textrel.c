// textrel.c: a small ELF fixture for the image package. Besides a few
// ordinary functions (a leaf, a caller, aliases, a local one) it puts a table
// of function addresses inside .text, so a position-independent build has
// R_*_RELATIVE relocations in an executable section (a text relocation):
// VerifyLoaded must undo them to match the file. Built by build.sh.
#include <stddef.h>

__attribute__((noinline)) int fx_leaf(int a, int b) { return a * 3 + b; }

__attribute__((noinline)) int fx_caller(int a) { return fx_leaf(a, 7) + 1; }

static __attribute__((noinline)) int fx_local(int a) { return a ^ 0x55; }

// fx_alias_b and fx_alias_long_name name fx_alias_a's code: the global,
// shortest, alphabetically first (fx_alias_a) wins.
__attribute__((noinline)) int fx_alias_a(int a) { return a - 11; }
extern int fx_alias_b(int) __attribute__((alias("fx_alias_a")));
extern int fx_alias_long_name(int) __attribute__((weak, alias("fx_alias_a")));

int fx_global_data = 42;

__asm__(".text\n"
        ".globl fx_table\n"
        ".type fx_table, @object\n"
        ".p2align 3\n"
        "fx_table:\n"
        ".quad fx_leaf\n"
        ".quad fx_caller\n"
        ".quad fx_alias_a\n"
        ".size fx_table, 24\n");

extern int (*const fx_table[3])(int);

int fx_dispatch(int i, int a) { return fx_table[i % 3](a) + fx_local(a) + fx_global_data; }

#ifdef WITH_MAIN
#include <unistd.h>
// The live test starts this program, waits for its byte on stdout (by then
// the dynamic loader has applied every relocation) and reads its memory.
int main(void) {
    char c;
    (void)write(1, "R", 1);
    (void)read(0, &c, 1);
    return fx_dispatch(c, 1) == 12345;
}
#endif
