/*
 * child.c: the target process of winproc's tests (rebuild with build.sh).
 *
 *   child.exe N [churn]
 *
 * Prints "value=<address of value()>" and then, every 2 ms, "r=<v>" where
 * v is what all N worker threads last got from value(), or "r=mixed" while
 * they disagree. The workers call value() in a tight loop through a
 * volatile pointer, so patching value()'s code changes the output. With
 * "churn" the main thread also starts and ends short-lived threads all the
 * time (Stop must cope with threads exiting while it runs). The process
 * exits when its stdin closes, so it never outlives the test.
 */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline, aligned(16))) int value(void) { return 1; }

static int (*volatile target)(void) = value;
static volatile LONG results[64];

static DWORD WINAPI worker(LPVOID arg)
{
    int i = (int)(INT_PTR)arg;
    for (;;)
        results[i] = target();
    return 0;
}

static DWORD WINAPI brief(LPVOID arg)
{
    (void)arg;
    return target();
}

static DWORD WINAPI watchdog(LPVOID arg)
{
    (void)arg;
    while (getchar() != EOF)
        ;
    ExitProcess(0);
    return 0;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 4;
    int churn = argc > 2 && argv[2][0] == 'c';
    if (n < 1 || n > 64)
        return 2;
    printf("value=%p\n", (void *)value);
    fflush(stdout);
    CloseHandle(CreateThread(NULL, 0, watchdog, NULL, 0, NULL));
    for (int i = 0; i < n; i++)
        CloseHandle(CreateThread(NULL, 0, worker, (LPVOID)(INT_PTR)i, 0, NULL));
    for (;;) {
        if (churn) {
            for (int i = 0; i < 8; i++) {
                HANDLE h = CreateThread(NULL, 0, brief, NULL, 0, NULL);
                if (h)
                    CloseHandle(h);
            }
        }
        LONG v = results[0];
        int same = 1;
        for (int i = 1; i < n; i++)
            same &= results[i] == v;
        if (same)
            printf("r=%ld\n", v);
        else
            printf("r=mixed\n");
        fflush(stdout);
        Sleep(2);
    }
}
