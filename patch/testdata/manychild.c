/*
 * manychild.c: the Windows target of the patch package's commit benchmark
 * (BenchmarkCommitWindows) and stress test (TestWindowsStress); build.sh
 * builds the committed manychild.exe.
 * Linked without a C runtime (kernel32 only) to stay small.
 *
 *   manychild.exe N
 *
 * N worker threads (1..64) call value() in a tight loop through a volatile
 * pointer, as the Linux child's "loop" mode does; f000 .. f999 are 1000
 * tiny functions (f123 returns 1123) that the benchmark redirects to
 * value2(), found by name in the COFF symbol table. "ready" is printed once
 * every worker runs. The process exits when its stdin closes, so it never
 * outlives the benchmark, and with status 5 if value() ever returns
 * something else than 1, or 2 while TestWindowsStress redirects it to
 * value2().
 */
#include <windows.h>

__attribute__((noinline, used)) int value(void) { return 1; }
__attribute__((noinline, used)) int value2(void) { return 2; }

/* F(123) defines f123 returning 1123 (the "1" glued in front keeps 012 from
 * being read as octal). */
#define F(i) __attribute__((noinline, used)) int f##i(void) { return 1##i; }
#define F10(p) F(p##0) F(p##1) F(p##2) F(p##3) F(p##4) F(p##5) F(p##6) F(p##7) F(p##8) F(p##9)
#define F100(p) F10(p##0) F10(p##1) F10(p##2) F10(p##3) F10(p##4) \
	F10(p##5) F10(p##6) F10(p##7) F10(p##8) F10(p##9)
F100(0) F100(1) F100(2) F100(3) F100(4) F100(5) F100(6) F100(7) F100(8) F100(9)

static int (*volatile target)(void) = value;
static volatile LONG started;

static DWORD WINAPI worker(LPVOID arg)
{
    (void)arg;
    InterlockedIncrement(&started);
    for (;;) {
        int r = target();
        if (r != 1 && r != 2) /* value, or value2 while redirected */
            ExitProcess(5);
    }
    return 0;
}

/* threads parses the last argument of the command line (1 when absent). */
static int threads(void)
{
    const char *line = GetCommandLineA(), *last = 0;
    for (const char *s = line + 1; *line && *s; s++)
        if (*s >= '0' && *s <= '9' && (s[-1] == ' ' || s[-1] == '\t'))
            last = s;
    int n = 0;
    for (const char *s = last; s && *s >= '0' && *s <= '9'; s++)
        n = n * 10 + (*s - '0');
    return last ? n : 1;
}

void start(void)
{
    int n = threads();
    if (n < 1 || n > 64)
        ExitProcess(2);
    for (int i = 0; i < n; i++)
        CloseHandle(CreateThread(NULL, 0, worker, NULL, 0, NULL));
    while (started < n)
        Sleep(1);
    DWORD done;
    WriteFile(GetStdHandle(STD_OUTPUT_HANDLE), "ready\n", 6, &done, NULL);
    char b;
    while (ReadFile(GetStdHandle(STD_INPUT_HANDLE), &b, 1, &done, NULL) && done == 1)
        ;
    ExitProcess(0);
}
