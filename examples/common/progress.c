/* progress.c — the wall clock and the progress lines the demos print while
 * they train: "step K/N  loss L  R UNIT/s", with L the mean training loss
 * since the previous line and R the throughput over the same span. */
#include <stdio.h>
#include <time.h>

#include "demo.h"

double demo_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void demo_progress_start(DemoProgress *p, const char *unit, long steps)
{
    p->unit = unit;
    p->steps = steps;
    p->start = p->last_time = demo_now();
    p->loss_sum = 0;
    p->loss_count = p->items = 0;
}

void demo_progress_step(DemoProgress *p, long step, float loss, long items,
                        long every)
{
    p->loss_sum += loss;
    p->loss_count++;
    p->items += items;
    if (step % every != 0 && step != p->steps)
        return;
    double t = demo_now(), span = t - p->last_time;
    printf("step %5ld/%ld  loss %.4f  %8.0f %s/s  %6.1f s\n", step, p->steps,
           p->loss_sum / (double)p->loss_count,
           span > 0 ? (double)p->items / span : 0.0, p->unit, t - p->start);
    fflush(stdout);
    p->last_time = t;
    p->loss_sum = 0;
    p->loss_count = p->items = 0;
}

double demo_progress_seconds(const DemoProgress *p)
{
    return demo_now() - p->start;
}
