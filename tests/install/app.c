/* app.c -- a first program against an installed libbnn, built by the
 * install tests (tests/install/run.cmake) with the README's link lines:
 * packing and an XNOR product (the thread pool), and an Adam step (the
 * math library).  Prints "ok" and returns 0 when every result is right. */
#include <bnn.h>

#include <stdio.h>

#define N 3
#define M 2
#define K 70

int main(void)
{
    float a[N][K], w[M][K];
    uint64_t ap[N][BNN_WORDS(K)], wp[M][BNN_WORDS(K)];
    int32_t c[N][M];
    float param[2] = {1.0f, -1.0f}, grad[2] = {0.5f, -0.5f}, m[2] = {0}, v[2] = {0};
    bnn_opt_params opt = {0};
    bnn_status st;
    int i, j, kk;

    if (bnn_version_number() != BNN_VERSION_NUMBER) {
        fprintf(stderr, "header %d, library %d\n", BNN_VERSION_NUMBER, bnn_version_number());
        return 1;
    }
    /* a[i] is all +1 except its first i elements; w[0] all +1, w[1] all -1 */
    for (i = 0; i < N; i++)
        for (kk = 0; kk < K; kk++) a[i][kk] = kk < i ? -1.0f : 1.0f;
    for (j = 0; j < M; j++)
        for (kk = 0; kk < K; kk++) w[j][kk] = j ? -1.0f : 1.0f;
    if ((st = bnn_set_num_threads(2)) != BNN_OK
        || (st = bnn_pack_f32(N, K, &a[0][0], K, &ap[0][0], BNN_WORDS(K))) != BNN_OK
        || (st = bnn_pack_f32(M, K, &w[0][0], K, &wp[0][0], BNN_WORDS(K))) != BNN_OK
        || (st = bnn_gemm(N, M, K, &ap[0][0], BNN_WORDS(K), &wp[0][0], BNN_WORDS(K), NULL,
                          &c[0][0], M)) != BNN_OK) {
        fprintf(stderr, "libbnn: %s\n", bnn_status_string(st));
        return 1;
    }
    for (i = 0; i < N; i++)
        if (c[i][0] != K - 2 * i || c[i][1] != -(K - 2 * i)) {
            fprintf(stderr, "row %d: dots %d %d, expected %d %d\n", i, c[i][0], c[i][1],
                    K - 2 * i, -(K - 2 * i));
            return 1;
        }
    /* Adam's first step moves each parameter by lr against its gradient */
    opt.kind = BNN_OPT_ADAM;
    opt.t = 1;
    opt.lr = 0.25;
    opt.beta1 = 0.9;
    opt.beta2 = 0.999;
    opt.eps = 0.0;
    opt.lr_scale = 1.0;
    if ((st = bnn_opt_step(&opt, 2, param, grad, m, v)) != BNN_OK) {
        fprintf(stderr, "bnn_opt_step: %s\n", bnn_status_string(st));
        return 1;
    }
    if (param[0] < 0.7499f || param[0] > 0.7501f || param[1] > -0.7499f || param[1] < -0.7501f) {
        fprintf(stderr, "Adam step: %g %g, expected 0.75 -0.75\n", param[0], param[1]);
        return 1;
    }
    printf("ok: libbnn %s, %s kernels\n", bnn_version_string(), bnn_isa_name());
    return 0;
}
