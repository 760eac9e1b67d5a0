/* vb_lane (util/vb_offloop.h): tasks run off the loop thread, one at a time
 * in the order given; their dones run on the loop thread in the same order;
 * freeing a lane runs what was submitted and then the dones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>

#include "vb_loop.h"
#include "vb_offloop.h"

#define NTASKS 50

typedef struct record {
    pthread_mutex_t lock;
    int ran[NTASKS], nran;      /* task ids in the order they ran */
    int done[NTASKS], ndone;    /* ... and finished on the loop */
    int overlap, running;       /* two tasks at once would set overlap */
    int off_loop, on_loop;      /* where run and done were called */
    pthread_t loop_thread;
    vb_loop *loop;
} record;

typedef struct task {
    record *r;
    int id;
} task;

static record rec;
static task tasks[NTASKS];

static void run(void *arg)
{
    task *t = arg;
    record *r = t->r;
    pthread_mutex_lock(&r->lock);
    r->overlap |= r->running++ > 0;
    r->off_loop += !pthread_equal(pthread_self(), r->loop_thread);
    r->ran[r->nran++] = t->id;
    r->running--;
    pthread_mutex_unlock(&r->lock);
}

static void done(void *arg)
{
    task *t = arg;
    record *r = t->r;
    r->on_loop += pthread_equal(pthread_self(), r->loop_thread);
    r->done[r->ndone++] = t->id;
    if (r->ndone == NTASKS && r->loop)
        vb_loop_stop(r->loop);
}

static void reset(vb_loop *loop)
{
    memset(&rec, 0, sizeof rec);
    pthread_mutex_init(&rec.lock, NULL);
    rec.loop_thread = pthread_self();
    rec.loop = loop;
    for (int i = 0; i < NTASKS; i++)
        tasks[i] = (task){ &rec, i };
}

static void assert_in_order(void)
{
    assert_int_equal(rec.nran, NTASKS);
    assert_int_equal(rec.ndone, NTASKS);
    for (int i = 0; i < NTASKS; i++) {
        assert_int_equal(rec.ran[i], i);
        assert_int_equal(rec.done[i], i);
    }
    assert_int_equal(rec.overlap, 0);
    assert_int_equal(rec.off_loop, NTASKS);
    assert_int_equal(rec.on_loop, NTASKS);
}

static void test_tasks_run_off_the_loop_in_order(void **state)
{
    (void)state;
    vb_error err;
    vb_loop *loop = vb_loop_new(&err);
    assert_non_null(loop);
    reset(loop);
    vb_lane *lane = vb_lane_new(loop, VB_DOM_SYSTEM, &err);
    assert_non_null(lane);
    for (int i = 0; i < NTASKS; i++)
        assert_int_equal(vb_lane_submit(lane, run, done, &tasks[i], &err), 0);
    assert_int_equal(vb_loop_run(loop), 0); /* until the last done stops it */
    assert_in_order();
    vb_lane_free(lane, loop);
    vb_loop_free(loop);
    pthread_mutex_destroy(&rec.lock);
}

static void test_free_runs_what_was_submitted(void **state)
{
    (void)state;
    vb_error err;
    vb_loop *loop = vb_loop_new(&err);
    assert_non_null(loop);
    reset(NULL); /* the loop never runs: free delivers the dones */
    vb_lane *lane = vb_lane_new(loop, VB_DOM_SYSTEM, &err);
    assert_non_null(lane);
    for (int i = 0; i < NTASKS; i++)
        assert_int_equal(vb_lane_submit(lane, run, done, &tasks[i], &err), 0);
    vb_lane_free(lane, loop);
    assert_in_order();
    vb_lane_free(NULL, loop); /* a no-op */
    vb_loop_free(loop);
    pthread_mutex_destroy(&rec.lock);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tasks_run_off_the_loop_in_order),
        cmocka_unit_test(test_free_runs_what_was_submitted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
