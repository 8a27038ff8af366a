/* Crash isolation: game-world server processes share a scoreboard in
 * MAP_SHARED memory, guarded by a SYNC_PSHARED | SYNC_MUTEX_ROBUST mutex.
 * One world crashes in the middle of an update, holding the lock. The others
 * do not hang: the next one to lock gets EOWNERDEAD, undoes the half-done
 * update from the intent log, calls sync_mutex_consistent, and play goes on.
 * (Unlocking without sync_mutex_consistent would make every later lock fail
 * with ENOTRECOVERABLE.) See sync_mutex_consistent(3).
 * cc crash_isolation.c $(pkg-config --cflags --libs libsync) */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sync.h>

#define WORLDS 3
#define MOVES 1000

struct scoreboard {
	sync_mutex_t lock;
	long players[WORLDS]; /* the total must always equal their sum */
	long total;
	struct { int pending, world; long old_players, old_total; } intent;
};

static struct scoreboard *sb;

static void lock_scoreboard(const char *who)
{
	if (sync_mutex_lock(&sb->lock) == EOWNERDEAD) {
		if (sb->intent.pending) { /* undo the dead world's update */
			sb->players[sb->intent.world] = sb->intent.old_players;
			sb->total = sb->intent.old_total;
			sb->intent.pending = 0;
		}
		printf("%s: a world died holding the lock; scoreboard repaired\n", who);
		fflush(stdout);
		sync_mutex_consistent(&sb->lock);
	}
}

/* One player joins world w: log the intent, update, clear the log. */
static void join(int w, int crash)
{
	lock_scoreboard("a world");
	sb->intent.world = w;
	sb->intent.old_players = sb->players[w];
	sb->intent.old_total = sb->total;
	sb->intent.pending = 1;
	sb->players[w]++;
	if (crash)
		raise(SIGKILL); /* a bug takes world w down mid-update */
	sb->total++;
	sb->intent.pending = 0;
	sync_mutex_unlock(&sb->lock);
}

static void world(int w)
{
	for (int i = 0; i < MOVES; i++)
		join(w, w == 0 && i == MOVES / 2);
}

int main(void)
{
	sb = mmap(NULL, sizeof *sb, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sb == MAP_FAILED || sync_mutex_init(&sb->lock, SYNC_PSHARED | SYNC_MUTEX_ROBUST) != 0)
		return 1;
	for (int w = 0; w < WORLDS; w++)
		if (fork() == 0) {
			world(w);
			_exit(0);
		}
	for (int w = 0; w < WORLDS; w++) {
		int status;
		wait(&status);
		if (WIFSIGNALED(status))
			printf("a world crashed (signal %d); the others played on\n", WTERMSIG(status));
	}
	lock_scoreboard("the lobby");
	long sum = 0;
	for (int w = 0; w < WORLDS; w++)
		sum += sb->players[w];
	printf("total %ld, sum of worlds %ld\n", sb->total, sum);
	sync_mutex_unlock(&sb->lock);
	return sb->total == sum ? 0 : 1;
}
