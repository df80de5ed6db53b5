/* main.c — the hello example: a C program using a model that nnc compiled
 * during the build (CMakeLists.txt, nnc_add_model).
 *
 * It creates one instance, initialises the parameters from a seed (or
 * loads them from the safetensors file named on the command line), runs
 * the forward pass on two rows, prints the class probabilities and checks
 * that each row sums to 1.  Exit status 0 when it does. */
#include <math.h>
#include <stdio.h>

#include "hello.h" /* generated next to hello.o; brings nnc.h */

int main(int argc, char **argv)
{
    hello *m = hello_new(); /* the model's only allocation */
    if (!m) {
        fprintf(stderr, "hello: out of memory\n");
        return 1;
    }
    if (argc > 1 && hello_load(m, argv[1]) != 0) {
        fprintf(stderr, "hello: %s\n", nnc_last_error());
        hello_free(m);
        return 1;
    }
    if (argc <= 1)
        hello_init(m, 42);

    const float x[2][4] = {{1.0f, 0.5f, -0.5f, 2.0f},
                           {-1.0f, 0.0f, 0.25f, 0.5f}};
    float probs[2][3];
    if (hello_forward(m, &x[0][0], &probs[0][0]) != 0) {
        fprintf(stderr, "hello: %s\n", nnc_last_error());
        hello_free(m);
        return 1;
    }
    int status = 0;
    for (int r = 0; r < 2; r++) {
        float sum = 0;
        printf("row %d:", r);
        for (int k = 0; k < 3; k++) {
            printf(" %.4f", probs[r][k]);
            sum += probs[r][k];
        }
        printf("\n");
        if (fabsf(sum - 1.0f) > 1e-5f)
            status = 1;
    }
    printf("%s\n", status ? "hello: rows do not sum to 1" : "hello: ok");
    hello_free(m);
    return status;
}
