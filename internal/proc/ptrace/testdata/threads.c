/* threads.c: the process the ptrace tests attach to (built with gcc at test time).
 *
 * usage: threads N MODE
 *   loop   N worker threads call value() in a loop and print its last result
 *          ("1\n") about every 5 ms; the main thread waits in pause().
 *   busy   as loop, but workers never sleep (they print every 1M calls).
 *   spawn  as loop, plus one thread creating short-lived threads without pause.
 *   signal as loop, plus one thread sending SIGUSR1 (handled) to the process
 *          without pause, so stops race with signal delivery.
 *   leaderexit  as loop, but the main thread calls pthread_exit once it
 *          reads a byte from stdin: the leader stays a zombie while the
 *          workers run on.
 *   exec   as loop, plus a thread that execs "sleep 60" once it reads a
 *          byte from stdin (a non-leader exec: the kernel kills the other
 *          threads and gives the execing thread the leader's ID).
 *   exit   exit at once (the test attaches to the zombie).
 * "ready\n" is printed once every worker runs. A sleep that returns anything
 * but success or EINTR (a syscall restart broken by the tracer) prints
 * "bad errno N" and exits with status 5; so does value() returning anything
 * outside 1..9 (N = 1000 + the value).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <errno.h>
#include <signal.h>
#include <unistd.h>

/* The function the test redirects: noipa keeps every call a real call. */
__attribute__((noinline, noipa)) int value(void) { return 1; }

/* SetPC's target: a thread moved here prints "moved" forever. It is only
 * ever jumped to, so it makes no assumption about its stack. */
__attribute__((used, noinline, noreturn)) void marker(void) {
	for (;;) {
		(void)!write(1, "moved\n", 6);
		struct timespec ts = {0, 5 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

static void bad(int e) {
	char buf[32];
	int n = snprintf(buf, sizeof buf, "bad errno %d\n", e);
	(void)!write(1, buf, n);
	_exit(5);
}

static int busy;

static void *worker(void *arg) {
	(void)arg;
	for (;;) {
		int v = 0;
		for (int i = 0; i < (busy ? 1000000 : 20000); i++) {
			v = value();
			/* Tests patch value() to return 1..9: anything else means a
			 * torn or misplaced patch. */
			if (v < 1 || v > 9)
				bad(1000 + v);
		}
		char buf[16];
		int n = snprintf(buf, sizeof buf, "%d\n", v);
		if (write(1, buf, n) != n)
			exit(3); /* the test closed the pipe */
		struct timespec ts = {0, 5 * 1000 * 1000};
		if (!busy && nanosleep(&ts, NULL) != 0 && errno != EINTR)
			bad(errno);
	}
	return NULL;
}

static void *execer(void *arg) {
	(void)arg;
	char b;
	if (read(0, &b, 1) == 1)
		execl("/bin/sleep", "sleep", "60", (char *)NULL);
	bad(errno);
	return NULL;
}

static volatile long handled;
static void on_usr1(int sig) { (void)sig; handled++; }

static void *signaller(void *arg) {
	(void)arg;
	for (;;)
		kill(getpid(), SIGUSR1);
	return NULL;
}

static void *brief(void *arg) {
	(void)arg;
	volatile int v = value();
	(void)v;
	return NULL;
}

static void *spawner(void *arg) {
	(void)arg;
	for (;;) {
		pthread_t t;
		if (pthread_create(&t, NULL, brief, NULL) == 0)
			pthread_detach(t);
	}
	return NULL;
}

int main(int argc, char **argv) {
	int n = argc > 1 ? atoi(argv[1]) : 4;
	const char *mode = argc > 2 ? argv[2] : "loop";
	if (strcmp(mode, "exit") == 0)
		return 0;
	busy = strcmp(mode, "busy") == 0;
	for (int i = 0; i < n; i++) {
		pthread_t t;
		if (pthread_create(&t, NULL, worker, NULL) != 0)
			return 2;
	}
	if (strcmp(mode, "signal") == 0) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_usr1;
		sigaction(SIGUSR1, &sa, NULL); /* no SA_RESTART: sleeps see EINTR */
		pthread_t t;
		if (pthread_create(&t, NULL, signaller, NULL) != 0)
			return 2;
	}
	if (strcmp(mode, "exec") == 0) {
		pthread_t t;
		if (pthread_create(&t, NULL, execer, NULL) != 0)
			return 2;
	}
	if (strcmp(mode, "spawn") == 0) {
		pthread_t t;
		if (pthread_create(&t, NULL, spawner, NULL) != 0)
			return 2;
	}
	if (write(1, "ready\n", 6) != 6)
		return 3;
	if (strcmp(mode, "leaderexit") == 0) {
		char b;
		if (read(0, &b, 1) != 1)
			return 4;
		pthread_exit(NULL);
	}
	for (;;)
		if (pause() != -1 || errno != EINTR)
			bad(errno);
}
