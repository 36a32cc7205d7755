/*
 * test_cuda_device.c -- libbnn's CUDA entry points on a real GPU (built
 * with BNN_CUDA=ON; skipped, with the reason, where no device can be used):
 *  - bnn_cuda_pack_f32 == bnn_pack_f32 and bnn_cuda_gemm (each kernel) ==
 *    the shared oracle through every epilogue, on ragged shapes;
 *  - the training step's kernels (optimizer with its signs, batch norm,
 *    sign forward and STE backward, squared hinge gradient) == their CPU
 *    twins, bit for bit (NaN as NaN);
 *  - the argument errors are the CPU functions' statuses, nothing written
 *    (the training kernels' are checked before the skip: they are decided
 *    without touching the device);
 *  - a host pointer is BNN_ERR_DEVICE naming the argument; a kernel that
 *    faults (an operand shorter than its shape says) is BNN_ERR_DEVICE
 *    from bnn_cuda_synchronize, in a child process (a fault leaves the
 *    CUDA context unusable).
 */
#include "test_util.h"
#include "oracle.h"
#include "bnn_cuda.h"
#include "model_builder.h"

#include <cuda_runtime.h>
#if defined(__unix__)
#  include <sys/wait.h>
#  include <unistd.h>
#endif

static char *g_self;     /* argv[0]: the fault test runs it again with --fault */

/* --fault: an operand shorter than its shape says; the launch is accepted,
 * the fault must come back from bnn_cuda_synchronize as BNN_ERR_DEVICE. */
static int fault_child(void)
{
    uint64_t *small = NULL, *out = NULL;
    bnn_status st;
    if (cudaMalloc((void **)&small, 8) != cudaSuccess
        || cudaMalloc((void **)&out, (size_t)1 << 20) != cudaSuccess)
        return 2;
    st = bnn_cuda_gemm(1 << 16, 64, 1 << 14, small, 256, small, 256, NULL, out, 64,
                       BNN_CUDA_GEMM_SIMT, NULL);
    if (st == BNN_OK) st = bnn_cuda_synchronize(NULL);
    printf("fault child: %s (%s)\n", bnn_status_string(st), bnn_cuda_last_error());
    return st == BNN_ERR_DEVICE ? 0 : 1;
}

static void *dev_copy(const void *h, size_t bytes)
{
    void *d = NULL;
    if (cudaMalloc(&d, bytes ? bytes : 1) != cudaSuccess) return NULL;
    if (bytes) cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice);
    return d;
}

static int test_pack_device(void)
{
    static const int64_t ks[] = {1, 63, 64, 65, 200, 1000};
    bt_rng r = bt_stream(0xd9ac);
    size_t i;
    for (i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        const int64_t k = ks[i], rows = 37, kw = bt_words(k), lds = k + 1, ldd = kw + 1;
        float *src = (float *)bt_alloc((size_t)(rows * lds) * sizeof(float));
        uint64_t *got = (uint64_t *)bt_alloc((size_t)(rows * ldd) * 8);
        uint64_t *want = (uint64_t *)bt_alloc((size_t)(rows * ldd) * 8);
        float *dsrc;
        uint64_t *ddst;
        bt_rand_floats(&r, src, (size_t)(rows * lds));
        bt_fill_u64(got, (size_t)(rows * ldd), BT_CANARY_W);
        bt_fill_u64(want, (size_t)(rows * ldd), BT_CANARY_W);
        dsrc = (float *)dev_copy(src, (size_t)(rows * lds) * sizeof(float));
        ddst = (uint64_t *)dev_copy(got, (size_t)(rows * ldd) * 8);
        bt_ctx("device pack k=%" PRId64, k);
        CHECK(dsrc != NULL && ddst != NULL);
        CHECK_ST(bnn_cuda_pack_f32(rows, k, dsrc, lds, ddst, ldd, NULL), BNN_OK);
        CHECK_ST(bnn_cuda_synchronize(NULL), BNN_OK);
        cudaMemcpy(got, ddst, (size_t)(rows * ldd) * 8, cudaMemcpyDeviceToHost);
        bt_pack_f32(rows, k, src, lds, want, ldd);
        CHECK(memcmp(got, want, (size_t)(rows * ldd) * 8) == 0);
        cudaFree(dsrc);
        cudaFree(ddst);
        free(src);
        free(got);
        free(want);
    }
    printf("  device pack == bnn_pack_f32        ok\n");
    return 0;
}

static int gemm_case(int64_t n, int64_t m, int64_t k, int kernel, uint64_t tag)
{
    bt_rng r = bt_stream(tag);
    const int64_t kw = bt_words(k), lda = kw + 1, ldw = kw + 2;
    float *af = (float *)bt_alloc((size_t)(n * k + 1) * 4), *wf = (float *)bt_alloc((size_t)(m * k + 1) * 4);
    int8_t *as = (int8_t *)bt_alloc((size_t)(n * k + 1)), *ws = (int8_t *)bt_alloc((size_t)(m * k + 1));
    int32_t *dot = (int32_t *)bt_alloc((size_t)(n * m) * 4);
    uint64_t *a = (uint64_t *)bt_alloc((size_t)(n * lda) * 8), *w = (uint64_t *)bt_alloc((size_t)(m * ldw) * 8);
    uint64_t *da, *dw;
    bt_epi_data d, dd;
    int kind, v, rc = 0;
    int64_t i;
    bnn_status st;
    bt_rand_floats(&r, af, (size_t)(n * k));
    bt_rand_floats(&r, wf, (size_t)(m * k));
    for (i = 0; i < n; i++) bt_signs(af + i * k, k, as + i * k);
    for (i = 0; i < m; i++) bt_signs(wf + i * k, k, ws + i * k);
    bt_gemm_s8(n, m, k, as, ws, dot);
    memset(a, 0, (size_t)(n * lda) * 8);
    memset(w, 0, (size_t)(m * ldw) * 8);
    bt_pack_f32(n, k, af, k, a, lda);
    bt_pack_f32(m, k, wf, k, w, ldw);
    da = (uint64_t *)dev_copy(a, (size_t)(n * lda) * 8);
    dw = (uint64_t *)dev_copy(w, (size_t)(m * ldw) * 8);
    bt_epi_make_pm1(&d, m, k, tag ^ 0x77);
    dd.scale = (float *)dev_copy(d.scale, (size_t)m * 4);
    dd.offset = (float *)dev_copy(d.offset, (size_t)m * 4);
    dd.thresh = (int32_t *)dev_copy(d.thresh, (size_t)m * 4);
    dd.flip = (uint8_t *)dev_copy(d.flip, (size_t)m);
    for (kind = BNN_EPI_INT32; kind <= BNN_EPI_BITS && rc == 0; kind++) {
        const int variants = kind == BNN_EPI_INT32 ? 1 : kind == BNN_EPI_FLOAT ? 4 : 2;
        for (v = 0; v < variants && rc == 0; v++) {
            const bnn_epilogue e = bt_epi_for(kind, v, &d), de = bt_epi_for(kind, v, &dd);
            const int64_t ldc = (kind == BNN_EPI_BITS ? bt_words(m) : m) + 3;
            size_t bytes;
            void *c = bt_out_alloc(n, m, kind, ldc, &bytes), *dc = dev_copy(c, bytes);
            bt_ctx("device gemm kernel %d n=%" PRId64 " m=%" PRId64 " k=%" PRId64
                   " epilogue %d variant %d", kernel, n, m, k, kind, v);
            st = bnn_cuda_gemm(n, m, k, da, lda, dw, ldw, &de, dc, ldc, kernel, NULL);
            if (st == BNN_ERR_UNSUPPORTED && kernel == BNN_CUDA_GEMM_TENSOR) {
                printf("  (tensor-core kernel: %s)\n", bnn_cuda_last_error());
                cudaFree(dc);
                free(c);
                goto done;
            }
            CHECK_ST(st, BNN_OK);
            CHECK_ST(bnn_cuda_synchronize(NULL), BNN_OK);
            cudaMemcpy(c, dc, bytes, cudaMemcpyDeviceToHost);
            rc = bt_check_epi(n, m, dot, &e, c, ldc, NULL, NULL);
            cudaFree(dc);
            free(c);
        }
    }
done:
    cudaFree(da); cudaFree(dw);
    cudaFree(dd.scale); cudaFree(dd.offset); cudaFree(dd.thresh); cudaFree(dd.flip);
    bt_epi_free(&d);
    free(af); free(wf); free(as); free(ws); free(dot); free(a); free(w);
    return rc;
}

static int test_gemm_device(void)
{
    static const int64_t shapes[][3] = {
        {1, 1, 1}, {3, 5, 63}, {65, 63, 65}, {70, 130, 129}, {129, 65, 513}, {300, 257, 4099},
    };
    static const int kernels[] = {BNN_CUDA_GEMM_SIMT, BNN_CUDA_GEMM_TENSOR, BNN_CUDA_GEMM_AUTO};
    size_t i, j;
    for (j = 0; j < sizeof kernels / sizeof kernels[0]; j++)
        for (i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
            RUN(gemm_case(shapes[i][0], shapes[i][1], shapes[i][2], kernels[j], 0x9e77 + i));
    printf("  device gemm == oracle (simt, tensor, auto) ok\n");
    return 0;
}

/* Convolution (both paddings) and bit pooling: GPU == the CPU library. */
static int test_conv_pool_device(void)
{
    bnn_conv2d_params p;
    bnn_pool2d_params q;
    bt_rng r = bt_stream(0xc0d3);
    const int64_t n = 2, h = 9, w = 7, c = 130, o = 70, cw = 3, kh = 3, kw = 3;
    int64_t oh, ow, xs = n * h * w * cw, ws = o * kh * kw * cw, pv;
    uint64_t *x = (uint64_t *)bt_alloc((size_t)xs * 8), *wt = (uint64_t *)bt_alloc((size_t)ws * 8);
    uint64_t *dx, *dw;
    bt_rand_words(&r, x, (size_t)xs);
    bt_rand_words(&r, wt, (size_t)ws);
    for (pv = 0; pv < xs; pv++) if (pv % cw == cw - 1) x[pv] &= 3;     /* pad bits 0 */
    for (pv = 0; pv < ws; pv++) if (pv % cw == cw - 1) wt[pv] &= 3;
    dx = (uint64_t *)dev_copy(x, (size_t)xs * 8);
    dw = (uint64_t *)dev_copy(wt, (size_t)ws * 8);
    for (pv = 0; pv <= 1; pv++) {
        size_t wsb = 0;
        int32_t *want, *got;
        void *dout, *work;
        memset(&p, 0, sizeof p);
        p.n = n; p.h = h; p.w = w; p.c = c; p.o = o; p.kh = kh; p.kw = kw;
        p.stride_h = 2; p.stride_w = 1; p.dilation_h = 1; p.dilation_w = 2;
        p.pad_top = 1; p.pad_bottom = 2; p.pad_left = 2; p.pad_right = 0; p.pad_value = (int32_t)pv;
        CHECK_ST(bnn_conv2d_output_shape(&p, &oh, &ow), BNN_OK);
        CHECK_ST(bnn_conv2d_workspace_size(&p, 1, &wsb), BNN_OK);
        work = bt_alloc(wsb ? wsb : 8);
        want = (int32_t *)bt_alloc((size_t)(n * oh * ow * o) * 4);
        got = (int32_t *)bt_alloc((size_t)(n * oh * ow * o) * 4);
        CHECK_ST(bnn_conv2d(&p, x, wt, NULL, want, work, wsb), BNN_OK);
        dout = dev_copy(got, (size_t)(n * oh * ow * o) * 4);
        bt_ctx("device conv pad_value %d", (int)pv);
        CHECK_ST(bnn_cuda_conv2d(&p, dx, dw, NULL, dout, NULL), BNN_OK);
        CHECK_ST(bnn_cuda_synchronize(NULL), BNN_OK);
        cudaMemcpy(got, dout, (size_t)(n * oh * ow * o) * 4, cudaMemcpyDeviceToHost);
        CHECK(memcmp(got, want, (size_t)(n * oh * ow * o) * 4) == 0);
        cudaFree(dout);
        free(work); free(want); free(got);
    }
    memset(&q, 0, sizeof q);
    q.n = n; q.h = h; q.w = w; q.c = c; q.kh = 2; q.kw = 2; q.stride_h = 2; q.stride_w = 2;
    CHECK_ST(bnn_pool2d_output_shape(&q, &oh, &ow), BNN_OK);
    {
        uint64_t *want = (uint64_t *)bt_alloc((size_t)(n * oh * ow * cw) * 8);
        uint64_t *got = (uint64_t *)bt_alloc((size_t)(n * oh * ow * cw) * 8);
        void *dout = dev_copy(got, (size_t)(n * oh * ow * cw) * 8);
        bt_ctx("device maxpool bits");
        CHECK_ST(bnn_maxpool2d_bits(&q, x, NULL, want), BNN_OK);
        CHECK_ST(bnn_cuda_maxpool2d_bits(&q, dx, NULL, (uint64_t *)dout, NULL), BNN_OK);
        CHECK_ST(bnn_cuda_synchronize(NULL), BNN_OK);
        cudaMemcpy(got, dout, (size_t)(n * oh * ow * cw) * 8, cudaMemcpyDeviceToHost);
        CHECK(memcmp(got, want, (size_t)(n * oh * ow * cw) * 8) == 0);
        cudaFree(dout);
        free(want); free(got);
    }
    cudaFree(dx); cudaFree(dw); free(x); free(wt);
    printf("  device conv2d, maxpool == CPU      ok\n");
    return 0;
}

/* The training products: GPU == the CPU library, floats bit for bit. */
static int test_pm1_device(void)
{
    const int64_t I = 37, J = 300, K = 130, lds = 3;
    bt_rng r = bt_stream(0x9d1);
    float *a = (float *)bt_alloc((size_t)(I * J) * 4), *c = (float *)bt_alloc((size_t)(I * K) * 4);
    float *want = (float *)bt_alloc((size_t)(I * K) * 4);
    int8_t *q = (int8_t *)bt_alloc((size_t)(I * J));
    int32_t *ci = (int32_t *)bt_alloc((size_t)(I * K) * 4), *wanti = (int32_t *)bt_alloc((size_t)(I * K) * 4);
    uint64_t *s = (uint64_t *)bt_alloc((size_t)(J * lds) * 8);
    void *da, *dq, *ds, *dc, *dci;
    int64_t i;
    int trans;
    bt_rand_floats(&r, a, (size_t)(I * J));
    for (i = 0; i < I * J; i++) q[i] = (int8_t)bt_range(&r, -127, 127);
    bt_rand_words(&r, s, (size_t)(J * lds));
    for (i = 0; i < J; i++) s[i * lds + 2] &= 3;          /* pad bits 0 */
    da = dev_copy(a, (size_t)(I * J) * 4);
    dq = dev_copy(q, (size_t)(I * J));
    ds = dev_copy(s, (size_t)(J * lds) * 8);
    dc = dev_copy(c, (size_t)(I * K) * 4);
    dci = dev_copy(ci, (size_t)(I * K) * 4);
    for (trans = 0; trans <= 1; trans++) {
        const int64_t li = trans ? 1 : J, lj = trans ? I : 1;
        bt_ctx("device f32 pm1 transpose %d", trans);
        CHECK_ST(bnn_gemm_f32_pm1(I, K, J, a, li, lj, s, lds, want, K, 0), BNN_OK);
        CHECK_ST(bnn_cuda_gemm_f32_pm1(I, K, J, (const float *)da, li, lj, (const uint64_t *)ds,
                                       lds, (float *)dc, K, 0, NULL), BNN_OK);
        CHECK_ST(bnn_cuda_synchronize(NULL), BNN_OK);
        cudaMemcpy(c, dc, (size_t)(I * K) * 4, cudaMemcpyDeviceToHost);
        for (i = 0; i < I * K; i++)
            CHECK_MSG(bt_f2u(c[i]) == bt_f2u(want[i]) || (c[i] != c[i] && want[i] != want[i]),
                      "c[%" PRId64 "] %a want %a", i, (double)c[i], (double)want[i]);
    }
    bt_ctx("device i8 pm1");
    CHECK_ST(bnn_gemm_i8_pm1(I, K, J, q, J, s, lds, wanti, K), BNN_OK);
    CHECK_ST(bnn_cuda_gemm_i8_pm1(I, K, J, (const int8_t *)dq, J, (const uint64_t *)ds, lds,
                                  (int32_t *)dci, K, NULL), BNN_OK);
    CHECK_ST(bnn_cuda_synchronize(NULL), BNN_OK);
    cudaMemcpy(ci, dci, (size_t)(I * K) * 4, cudaMemcpyDeviceToHost);
    CHECK(memcmp(ci, wanti, (size_t)(I * K) * 4) == 0);
    cudaFree(da); cudaFree(dq); cudaFree(ds); cudaFree(dc); cudaFree(dci);
    free(a); free(c); free(want); free(q); free(ci); free(wanti); free(s);
    printf("  device f32/i8 x pm1 == CPU         ok\n");
    return 0;
}

/* The convolution's backward products: GPU == the CPU library, bit for bit. */
static int test_conv_grad_device(void)
{
    bnn_conv2d_params p;
    bt_rng r = bt_stream(0xc6d);
    int64_t oh, ow, M, nx, nw, i;
    size_t wsb = 0;
    int pv;
    memset(&p, 0, sizeof p);
    p.n = 2; p.h = 7; p.w = 6; p.c = 70; p.o = 9; p.kh = 3; p.kw = 3;
    p.stride_h = 2; p.stride_w = 1; p.dilation_h = 1; p.dilation_w = 2;
    p.pad_top = 1; p.pad_bottom = 1; p.pad_left = 2; p.pad_right = 0;
    for (pv = 0; pv <= 1; pv++) {
        uint64_t *x, *w;
        float *grad, *sc_o, *sc_m, *want, *got;
        int8_t *qt, *qm;
        void *work, *dx, *dw, *dg, *dqt, *dqm, *dso, *dsm, *dout;
        int kind;
        p.pad_value = pv;
        CHECK_ST(bnn_conv2d_output_shape(&p, &oh, &ow), BNN_OK);
        CHECK_ST(bnn_conv2d_grad_workspace_size(&p, 1, &wsb), BNN_OK);
        M = p.n * oh * ow;
        nx = p.n * p.h * p.w * p.c;
        nw = p.o * p.kh * p.kw * p.c;
        x = (uint64_t *)bt_alloc((size_t)(p.n * p.h * p.w * 2) * 8);
        w = (uint64_t *)bt_alloc((size_t)(p.o * p.kh * p.kw * 2) * 8);
        bt_rand_words(&r, x, (size_t)(p.n * p.h * p.w * 2));
        bt_rand_words(&r, w, (size_t)(p.o * p.kh * p.kw * 2));
        for (i = 1; i < p.n * p.h * p.w * 2; i += 2) x[i] &= 63;       /* pad bits 0 */
        for (i = 1; i < p.o * p.kh * p.kw * 2; i += 2) w[i] &= 63;
        grad = (float *)bt_alloc((size_t)(M * p.o) * 4);
        bt_rand_floats(&r, grad, (size_t)(M * p.o));
        qt = (int8_t *)bt_alloc((size_t)(M * p.o));
        qm = (int8_t *)bt_alloc((size_t)(M * p.o));
        for (i = 0; i < M * p.o; i++) { qt[i] = (int8_t)bt_range(&r, -127, 127); qm[i] = (int8_t)bt_range(&r, -127, 127); }
        sc_o = (float *)bt_alloc((size_t)p.o * 4);
        sc_m = (float *)bt_alloc((size_t)M * 4);
        for (i = 0; i < p.o; i++) sc_o[i] = (float)bt_unit(&r);
        for (i = 0; i < M; i++) sc_m[i] = (float)bt_unit(&r);
        want = (float *)bt_alloc((size_t)(nx > nw ? nx : nw) * 4);
        got = (float *)bt_alloc((size_t)(nx > nw ? nx : nw) * 4);
        work = bt_alloc(wsb ? wsb : 8);
        dx = dev_copy(x, (size_t)(p.n * p.h * p.w * 2) * 8);
        dw = dev_copy(w, (size_t)(p.o * p.kh * p.kw * 2) * 8);
        dg = dev_copy(grad, (size_t)(M * p.o) * 4);
        dqt = dev_copy(qt, (size_t)(M * p.o));
        dqm = dev_copy(qm, (size_t)(M * p.o));
        dso = dev_copy(sc_o, (size_t)p.o * 4);
        dsm = dev_copy(sc_m, (size_t)M * 4);
        dout = dev_copy(got, (size_t)(nx > nw ? nx : nw) * 4);
        for (kind = 0; kind < 4; kind++) {
            const int64_t total = kind < 2 ? nw : nx;
            bt_ctx("device conv grad kind %d pad_value %d", kind, pv);
            if (kind == 0) {
                CHECK_ST(bnn_conv2d_grad_weights_f32(&p, x, grad, want, 0, work, wsb), BNN_OK);
                CHECK_ST(bnn_cuda_conv2d_grad_weights_f32(&p, (const uint64_t *)dx, (const float *)dg, (float *)dout, 0, NULL), BNN_OK);
            } else if (kind == 1) {
                CHECK_ST(bnn_conv2d_grad_weights_i8(&p, x, qt, sc_o, want, 0, work, wsb), BNN_OK);
                CHECK_ST(bnn_cuda_conv2d_grad_weights_i8(&p, (const uint64_t *)dx, (const int8_t *)dqt, (const float *)dso, (float *)dout, 0, NULL), BNN_OK);
            } else if (kind == 2) {
                CHECK_ST(bnn_conv2d_grad_input_f32(&p, w, grad, want, work, wsb), BNN_OK);
                CHECK_ST(bnn_cuda_conv2d_grad_input_f32(&p, (const uint64_t *)dw, (const float *)dg, (float *)dout, NULL), BNN_OK);
            } else {
                CHECK_ST(bnn_conv2d_grad_input_i8(&p, w, qm, sc_m, want, work, wsb), BNN_OK);
                CHECK_ST(bnn_cuda_conv2d_grad_input_i8(&p, (const uint64_t *)dw, (const int8_t *)dqm, (const float *)dsm, (float *)dout, NULL), BNN_OK);
            }
            CHECK_ST(bnn_cuda_synchronize(NULL), BNN_OK);
            cudaMemcpy(got, dout, (size_t)total * 4, cudaMemcpyDeviceToHost);
            for (i = 0; i < total; i++)
                CHECK_MSG(bt_f2u(got[i]) == bt_f2u(want[i]) || (got[i] != got[i] && want[i] != want[i]),
                          "out[%" PRId64 "] %a want %a", i, (double)got[i], (double)want[i]);
        }
        cudaFree(dx); cudaFree(dw); cudaFree(dg); cudaFree(dqt); cudaFree(dqm); cudaFree(dso);
        cudaFree(dsm); cudaFree(dout);
        free(x); free(w); free(grad); free(qt); free(qm); free(sc_o); free(sc_m); free(want);
        free(got); free(work);
    }
    printf("  device conv2d grads == CPU         ok\n");
    return 0;
}

/* Stochastic rounding: GPU == the CPU library (scales and q). */
static int test_quantize_device(void)
{
    const int64_t rows = 37, k = 300;
    bt_rng r = bt_stream(0x9ad);
    float *a = (float *)bt_alloc((size_t)(rows * k) * 4), sc[300], scw[300];
    int8_t *q = (int8_t *)bt_alloc((size_t)(rows * k)), *qw = (int8_t *)bt_alloc((size_t)(rows * k));
    void *da, *dq, *ds;
    int by_column;
    bt_rand_floats(&r, a, (size_t)(rows * k));
    da = dev_copy(a, (size_t)(rows * k) * 4);
    dq = dev_copy(q, (size_t)(rows * k));
    ds = dev_copy(sc, sizeof sc);
    for (by_column = 0; by_column <= 1; by_column++) {
        const int64_t ldq = by_column ? rows : k, ns = by_column ? k : rows;
        bt_ctx("device quantize by_column %d", by_column);
        CHECK_ST(bnn_quantize_i8(rows, k, a, k, by_column, 77, 1234, qw, ldq, scw), BNN_OK);
        CHECK_ST(bnn_cuda_quantize_i8(rows, k, (const float *)da, k, by_column, 77, 1234,
                                      (int8_t *)dq, ldq, (float *)ds, NULL), BNN_OK);
        CHECK_ST(bnn_cuda_synchronize(NULL), BNN_OK);
        cudaMemcpy(q, dq, (size_t)(rows * k), cudaMemcpyDeviceToHost);
        cudaMemcpy(sc, ds, (size_t)ns * 4, cudaMemcpyDeviceToHost);
        CHECK(memcmp(q, qw, (size_t)(rows * k)) == 0);
        CHECK(memcmp(sc, scw, (size_t)ns * 4) == 0);
    }
    cudaFree(da); cudaFree(dq); cudaFree(ds);
    free(a); free(q); free(qw);
    printf("  device quantize_i8 == CPU          ok\n");
    return 0;
}

/* The model runner: GPU == bnn_model_run (scores bit for bit, classes). */
static int test_model_device(void)
{
    bt_rng r = bt_stream(0x3d7);
    int which;
    for (which = 0; which < 2; which++) {
        mb_model m;
        size_t bytes, wsb = 0, gwsb = 0;
        uint8_t *file, *x;
        bnn_model *bm = NULL;
        bnn_cuda_model *dm = NULL;
        bnn_model_info info;
        float *want, *got;
        int32_t *cw, *cg;
        void *ws, *dx, *dws, *ds, *dc;
        int64_t n = 37, i;
        if (which == 0) {
            mb_init(&m, 4, 4, 3, 10);
            mb_add_dense(&m, MB_INPUT_U8, 48, 70);
            mb_add_dense(&m, 0, 70, 130);
            mb_add_dense(&m, MB_SCORES, 130, 10);
        } else {
            mb_init(&m, 8, 7, 3, 10);
            mb_add_conv(&m, MB_INPUT_U8, 3, 70, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1);
            mb_add_pool(&m, 2, 2, 2, 2);
            mb_add_conv(&m, MB_PAD_ONE, 70, 20, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1);
            mb_add_flatten(&m);
            mb_add_dense(&m, MB_SCORES, (uint32_t)m.cur_c, 10);
        }
        mb_fill_random(&m, 0x51 + (uint64_t)which);
        file = mb_serialize(&m, &bytes);
        bt_ctx("device model %d", which);
        CHECK_ST(bnn_model_open_memory(file, bytes, &bm), BNN_OK);
        CHECK_ST(bnn_model_get_info(bm, &info), BNN_OK);
        x = (uint8_t *)bt_alloc((size_t)(n * info.in_h * info.in_w * info.in_c));
        for (i = 0; i < n * info.in_h * info.in_w * info.in_c; i++) x[i] = (uint8_t)bt_below(&r, 256);
        want = (float *)bt_alloc((size_t)(n * info.classes) * 4);
        got = (float *)bt_alloc((size_t)(n * info.classes) * 4);
        cw = (int32_t *)bt_alloc((size_t)n * 4);
        cg = (int32_t *)bt_alloc((size_t)n * 4);
        CHECK_ST(bnn_model_workspace_size(bm, n, 1, &wsb), BNN_OK);
        ws = bt_alloc(wsb);
        CHECK_ST(bnn_model_run(bm, n, x, want, cw, ws, wsb), BNN_OK);
        CHECK_ST(bnn_cuda_model_create(bm, &dm), BNN_OK);
        CHECK_ST(bnn_cuda_model_workspace_size(dm, n, &gwsb), BNN_OK);
        dx = dev_copy(x, (size_t)(n * info.in_h * info.in_w * info.in_c));
        CHECK_ST(bnn_cuda_malloc(&dws, gwsb), BNN_OK);
        CHECK_ST(bnn_cuda_malloc(&ds, (size_t)(n * info.classes) * 4), BNN_OK);
        CHECK_ST(bnn_cuda_malloc(&dc, (size_t)n * 4), BNN_OK);
        CHECK_ST(bnn_cuda_model_run(dm, n, (const uint8_t *)dx, (float *)ds, (int32_t *)dc, dws,
                                    gwsb, NULL), BNN_OK);
        CHECK_ST(bnn_cuda_model_run(dm, n, (const uint8_t *)dx, NULL, NULL, dws, gwsb - 1, NULL),
                 BNN_ERR_INVALID);
        CHECK_ST(bnn_cuda_synchronize(NULL), BNN_OK);
        cudaMemcpy(got, ds, (size_t)(n * info.classes) * 4, cudaMemcpyDeviceToHost);
        cudaMemcpy(cg, dc, (size_t)n * 4, cudaMemcpyDeviceToHost);
        CHECK(memcmp(got, want, (size_t)(n * info.classes) * 4) == 0);
        CHECK(memcmp(cg, cw, (size_t)n * 4) == 0);
        bnn_cuda_free(dx); bnn_cuda_free(dws); bnn_cuda_free(ds); bnn_cuda_free(dc);
        bnn_cuda_model_free(dm);
        bnn_model_free(bm);
        free(file); free(x); free(want); free(got); free(cw); free(cg); free(ws);
        mb_free(&m);
    }
    printf("  device model runner == CPU runtime ok\n");
    return 0;
}

static int test_errors_device(void)
{
    uint64_t host[4] = {0, 0, 0, 0};
    uint64_t *d = (uint64_t *)dev_copy(host, sizeof host);
    bnn_epilogue e;
    memset(&e, 0, sizeof e);
    bt_ctx("device errors");
    CHECK(d != NULL);
    /* the CPU statuses for the same arguments */
    CHECK_ST(bnn_cuda_gemm(-1, 1, 1, d, 1, d, 1, NULL, d, 1, 0, NULL), BNN_ERR_SHAPE);
    CHECK_ST(bnn_cuda_gemm(1, 1, 65, d, 1, d, 2, NULL, d, 1, 0, NULL), BNN_ERR_STRIDE);
    CHECK_ST(bnn_cuda_gemm(1, 1, 1, NULL, 1, d, 1, NULL, d, 1, 0, NULL), BNN_ERR_NULL);
    CHECK_ST(bnn_cuda_gemm(1, 1, 1, d, 1, d, 1, NULL, d, 1, 7, NULL), BNN_ERR_INVALID);
    e.kind = BNN_EPI_BITS;
    CHECK_ST(bnn_cuda_gemm(1, 1, 1, d, 1, d, 1, &e, d, 1, 0, NULL), BNN_ERR_NULL);
    CHECK_ST(bnn_cuda_pack_f32(1, 1, NULL, 1, d, 1, NULL), BNN_ERR_NULL);
    /* a host pointer: named, nothing launched */
    CHECK_ST(bnn_cuda_gemm(1, 1, 1, host, 1, d, 1, NULL, d, 1, 0, NULL), BNN_ERR_DEVICE);
    CHECK(strstr(bnn_cuda_last_error(), "a = ") != NULL);
    cudaFree(d);
#if defined(__unix__)
    {
        /* a fault inside the kernel, in a fresh process (a CUDA context
         * does not survive fork, and the fault poisons the context) */
        pid_t pid = fork();
        int status = 0;
        CHECK(pid >= 0);
        if (pid == 0) {
            char *args[] = {g_self, (char *)"--fault", NULL};
            execv(g_self, args);
            _exit(127);
        }
        CHECK(waitpid(pid, &status, 0) == pid);
        CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "a faulting kernel did not give BNN_ERR_DEVICE (child status %d)", status);
    }
#endif
    printf("  device errors                      ok\n");
    return 0;
}

/* Bitwise equal, or both NaN (the GPU's NaNs need not keep payloads). */
static int same_f32(float a, float b)
{
    return bt_f2u(a) == bt_f2u(b) || (a != a && b != b);
}

static int same_f32s(const float *a, const float *b, int64_t n)
{
    int64_t i;
    for (i = 0; i < n; i++)
        if (!same_f32(a[i], b[i])) {
            bt_ctx("element %" PRId64 ": %a, want %a", i, (double)a[i], (double)b[i]);
            return 0;
        }
    return 1;
}

/* The training step's kernels on the GPU == their CPU twins: the
 * optimizer (each kind, with its packed signs), batch norm (both kinds,
 * forward and backward), the sign's forward and backward, the squared
 * hinge gradient (== numpy's formula in C). */
static int test_train_device(void)
{
    const int64_t rows = 37, k = 300, n = rows * k, kw = bt_words(k);
    bt_rng r = bt_stream(0x7a1);
    float *h[8], *dv[8];
    uint64_t *bits = (uint64_t *)bt_alloc((size_t)(rows * kw) * 8 * 2);
    uint64_t *dbits = NULL;
    int32_t labels[37], *dlab = NULL;
    int i, kind;
    for (i = 0; i < 8; i++) h[i] = (float *)bt_alloc((size_t)n * 4);
    for (i = 0; i < 8; i++) CHECK(cudaMalloc((void **)&dv[i], (size_t)n * 4) == cudaSuccess);
    CHECK(cudaMalloc((void **)&dbits, (size_t)(rows * kw) * 8 * 2) == cudaSuccess);
    CHECK(cudaMalloc((void **)&dlab, sizeof labels) == cudaSuccess);
    /* optimizer: h0 param, h1 grad, h2 m, h3 v; h4..h6 the device's */
    for (kind = 0; kind <= 2; kind++) {
        bnn_opt_params p;
        int64_t j;
        memset(&p, 0, sizeof p);
        p.kind = kind; p.t = 3; p.lr = 1e-2; p.beta1 = 0.9; p.beta2 = 0.999; p.eps = 1e-8;
        p.lr_scale = 2.0; p.clip = kind == 1 ? 0.5 : 0.0;
        for (j = 0; j < n; j++) {
            h[0][j] = (float)(bt_unit(&r) * 2 - 1);
            h[1][j] = (float)((bt_unit(&r) * 2 - 1) * 1e-2);
            h[2][j] = (float)((bt_unit(&r) * 2 - 1) * 1e-3);
            h[3][j] = (float)(bt_unit(&r) * 1e-4);
        }
        h[1][5] = NAN; h[1][6] = INFINITY; h[3][7] = NAN;
        h[1][8] = 0.0f; h[3][8] = -0.0f;           /* fmax(-0, +0) is -0 */
        h[0][9] = -0.0f; h[1][9] = 0.0f; h[2][9] = 0.0f;   /* stays -0: sign bit 0 */
        for (i = 0; i < 4; i++) cudaMemcpy(dv[i], h[i], (size_t)n * 4, cudaMemcpyHostToDevice);
        bt_ctx("device opt_step_pack kind %d", kind);
        CHECK_ST(bnn_opt_step_pack(&p, rows, k, h[0], h[1], h[2], h[3], bits, kw), BNN_OK);
        CHECK_ST(bnn_cuda_opt_step_pack(&p, rows, k, dv[0], dv[1], dv[2], dv[3], dbits, kw,
                                        NULL), BNN_OK);
        CHECK_ST(bnn_cuda_synchronize(NULL), BNN_OK);
        for (i = 0; i < 3; i++) cudaMemcpy(h[4 + i], dv[i], (size_t)n * 4, cudaMemcpyDeviceToHost);
        cudaMemcpy(bits + rows * kw, dbits, (size_t)(rows * kw) * 8, cudaMemcpyDeviceToHost);
        CHECK(same_f32s(h[4], h[0], n) && same_f32s(h[5], h[1], n) && same_f32s(h[6], h[2], n));
        CHECK(memcmp(bits, bits + rows * kw, (size_t)(rows * kw) * 8) == 0);
        /* and without the pack, from the new state */
        CHECK_ST(bnn_opt_step(&p, n, h[0], h[1], h[2], h[3]), BNN_OK);
        CHECK_ST(bnn_cuda_opt_step(&p, n, dv[0], dv[1], dv[2], dv[3], NULL), BNN_OK);
        CHECK_ST(bnn_cuda_synchronize(NULL), BNN_OK);
        cudaMemcpy(h[4], dv[0], (size_t)n * 4, cudaMemcpyDeviceToHost);
        cudaMemcpy(h[5], dv[3], (size_t)n * 4, cudaMemcpyDeviceToHost);
        CHECK(same_f32s(h[4], h[0], n) && same_f32s(h[5], h[3], n));
    }
    /* batch norm over x [rows][k]: h0 x, h1 dy, h2 y/dx CPU, h3 gamma|beta|stats CPU */
    for (kind = 0; kind <= 1; kind++) {
        const bnn_bn_kind bk = kind ? BNN_BN_SHIFT : BNN_BN_STANDARD;
        float *st = h[3], *ds = dv[3];        /* gamma, beta, rm, rv, mean, scale, dg, db */
        int64_t j;
        for (j = 0; j < n; j++) {
            h[0][j] = (float)((bt_unit(&r) * 2 - 1) * (1 + j % 7) + j % 5);
            h[1][j] = (float)(bt_unit(&r) * 2 - 1);
        }
        for (j = 0; j < k; j++) {
            st[j] = (float)(bt_unit(&r) * 2 - 0.5);
            st[k + j] = (float)(bt_unit(&r) - 0.5);
            st[2 * k + j] = 0.0f;
            st[3 * k + j] = 1.0f;
        }
        cudaMemcpy(dv[0], h[0], (size_t)n * 4, cudaMemcpyHostToDevice);
        cudaMemcpy(dv[1], h[1], (size_t)n * 4, cudaMemcpyHostToDevice);
        cudaMemcpy(ds, st, (size_t)k * 4 * 8, cudaMemcpyHostToDevice);
        bt_ctx("device batch norm kind %d", kind);
        CHECK_ST(bnn_bn_forward_train(bk, rows, k, h[0], st, st + k, 1e-4f, 0.1f, st + 2 * k,
                                      st + 3 * k, h[2], st + 4 * k, st + 5 * k), BNN_OK);
        CHECK_ST(bnn_cuda_bn_forward_train(bk, rows, k, dv[0], ds, ds + k, 1e-4f, 0.1f,
                                           ds + 2 * k, ds + 3 * k, dv[2], ds + 4 * k,
                                           ds + 5 * k, NULL), BNN_OK);
        CHECK_ST(bnn_bn_backward(bk, rows, k, h[0], st, st + 4 * k, st + 5 * k, h[1], h[1],
                                 st + 6 * k, st + 7 * k), BNN_OK);
        CHECK_ST(bnn_cuda_bn_backward(bk, rows, k, dv[0], ds, ds + 4 * k, ds + 5 * k, dv[1],
                                      dv[1], ds + 6 * k, ds + 7 * k, NULL), BNN_OK);
        CHECK_ST(bnn_cuda_synchronize(NULL), BNN_OK);
        cudaMemcpy(h[4], dv[2], (size_t)n * 4, cudaMemcpyDeviceToHost);
        cudaMemcpy(h[5], dv[1], (size_t)n * 4, cudaMemcpyDeviceToHost);
        cudaMemcpy(h[6], ds, (size_t)k * 4 * 8, cudaMemcpyDeviceToHost);
        CHECK(same_f32s(h[4], h[2], n));            /* y */
        CHECK(same_f32s(h[5], h[1], n));            /* dx, in place */
        CHECK(same_f32s(h[6], st, 8 * k));          /* statistics, dgamma, dbeta */
    }
    /* sign forward and the STE backward: h0 x, h1 grad */
    {
        uint64_t *sw = bits, *mw = bits + rows * kw;
        uint64_t *got = (uint64_t *)bt_alloc((size_t)(rows * kw) * 8 * 2);
        bt_rand_floats(&r, h[0], (size_t)n);
        bt_rand_floats(&r, h[1], (size_t)n);
        cudaMemcpy(dv[0], h[0], (size_t)n * 4, cudaMemcpyHostToDevice);
        cudaMemcpy(dv[1], h[1], (size_t)n * 4, cudaMemcpyHostToDevice);
        bt_ctx("device sign forward / STE backward");
        CHECK_ST(bnn_pack_f32(rows, k, h[0], k, sw, kw), BNN_OK);
        CHECK_ST(bnn_ste_mask_pack(rows, k, h[0], k, mw, kw), BNN_OK);
        CHECK_ST(bnn_ste_backward_packed(rows, k, mw, kw, h[1], k, h[2], k), BNN_OK);
        CHECK_ST(bnn_cuda_sign_forward(rows, k, dv[0], k, dbits, kw, dbits + rows * kw, kw,
                                       NULL), BNN_OK);
        CHECK_ST(bnn_cuda_ste_backward_packed(rows, k, dbits + rows * kw, kw, dv[1], k, dv[2],
                                              k, NULL), BNN_OK);
        CHECK_ST(bnn_cuda_synchronize(NULL), BNN_OK);
        cudaMemcpy(got, dbits, (size_t)(rows * kw) * 8 * 2, cudaMemcpyDeviceToHost);
        cudaMemcpy(h[4], dv[2], (size_t)n * 4, cudaMemcpyDeviceToHost);
        CHECK(memcmp(got, bits, (size_t)(rows * kw) * 8 * 2) == 0);
        CHECK(memcmp(h[4], h[2], (size_t)n * 4) == 0);
        CHECK_ST(bnn_cuda_ste_mask_pack(rows, k, dv[0], k, dbits, kw, NULL), BNN_OK);
        CHECK_ST(bnn_cuda_synchronize(NULL), BNN_OK);
        cudaMemcpy(got, dbits, (size_t)(rows * kw) * 8, cudaMemcpyDeviceToHost);
        CHECK(memcmp(got, mw, (size_t)(rows * kw) * 8) == 0);
        free(got);
    }
    /* the squared hinge gradient of scores [37][300] */
    {
        int64_t j;
        for (i = 0; i < rows; i++) labels[i] = (int32_t)bt_below(&r, (uint64_t)k);
        bt_rand_floats(&r, h[0], (size_t)n);
        cudaMemcpy(dv[0], h[0], (size_t)n * 4, cudaMemcpyHostToDevice);
        cudaMemcpy(dlab, labels, sizeof labels, cudaMemcpyHostToDevice);
        bt_ctx("device squared hinge gradient");
        CHECK_ST(bnn_cuda_squared_hinge_grad(rows, k, dv[0], dlab, dv[1], NULL), BNN_OK);
        CHECK_ST(bnn_cuda_synchronize(NULL), BNN_OK);
        cudaMemcpy(h[4], dv[1], (size_t)n * 4, cudaMemcpyDeviceToHost);
        for (j = 0; j < n; j++) {
            const double t = j % k == labels[j / k] ? 1.0 : -1.0, d = 1.0 - t * h[0][j];
            const double m = d != d ? d : (d > 0.0 ? d : 0.0);
            h[2][j] = (float)(-2.0 * t * m / (double)n);
        }
        CHECK(same_f32s(h[4], h[2], n));
    }
    for (i = 0; i < 8; i++) { cudaFree(dv[i]); free(h[i]); }
    cudaFree(dbits); cudaFree(dlab);
    free(bits);
    printf("  device training step kernels == CPU ok\n");
    return 0;
}

/* The training kernels' argument checks: the CPU twins' statuses for the
 * same arguments, decided before the device is touched (so this runs in
 * a CUDA build without a GPU too); and a host pointer is BNN_ERR_DEVICE
 * (with a device). */
static int test_train_args(int have_device)
{
    float f[4] = {0, 0, 0, 0};
    uint64_t w[2] = {0, 0};
    int32_t lab[1] = {0};
    bnn_opt_params p;
    memset(&p, 0, sizeof p);
    p.kind = BNN_OPT_ADAM; p.t = 1; p.lr = 1e-3; p.beta1 = 0.9; p.beta2 = 0.999; p.lr_scale = 1;
    bt_ctx("training kernels' argument checks");
    CHECK_ST(bnn_cuda_opt_step(NULL, 1, f, f, f, f, NULL), BNN_ERR_NULL);
    p.t = 0;
    CHECK_ST(bnn_cuda_opt_step(&p, 1, f, f, f, f, NULL), BNN_ERR_INVALID);
    p.t = 1;
    CHECK_ST(bnn_cuda_opt_step(&p, -1, f, f, f, f, NULL), BNN_ERR_SHAPE);
    CHECK_ST(bnn_cuda_opt_step(&p, 0, NULL, NULL, NULL, NULL, NULL), BNN_OK);
    CHECK_ST(bnn_cuda_opt_step(&p, 1, f, NULL, f, f, NULL), BNN_ERR_NULL);
    CHECK_ST(bnn_cuda_opt_step_pack(&p, 1, 65, f, f, f, f, w, 1, NULL), BNN_ERR_STRIDE);
    CHECK_ST(bnn_cuda_opt_step_pack(&p, 1, 1, f, f, f, f, NULL, 1, NULL), BNN_ERR_NULL);
    CHECK_ST(bnn_cuda_bn_forward_train(BNN_BN_STANDARD, 0, 1, f, f, f, 1e-5f, 0.1f, NULL, NULL,
                                       f, f, f, NULL), BNN_ERR_SHAPE);
    CHECK_ST(bnn_cuda_bn_forward_train(BNN_BN_STANDARD, 1, 1, f, f, f, 0.0f, 0.1f, NULL, NULL,
                                       f, f, f, NULL), BNN_ERR_INVALID);
    CHECK_ST(bnn_cuda_bn_forward_train((bnn_bn_kind)2, 1, 1, f, f, f, 1e-5f, 0.1f, NULL, NULL,
                                       f, f, f, NULL), BNN_ERR_INVALID);
    CHECK_ST(bnn_cuda_bn_forward_train(BNN_BN_STANDARD, 1, 1, f, f, NULL, 1e-5f, 0.1f, NULL,
                                       NULL, f, f, f, NULL), BNN_ERR_NULL);
    CHECK_ST(bnn_cuda_bn_backward(BNN_BN_SHIFT, 1, -1, f, f, f, f, f, f, f, f, NULL),
             BNN_ERR_SHAPE);
    CHECK_ST(bnn_cuda_bn_backward(BNN_BN_SHIFT, 1, 1, f, f, f, f, f, f, NULL, f, NULL),
             BNN_ERR_NULL);
    CHECK_ST(bnn_cuda_sign_forward(1, 65, f, 65, w, 1, w, 2, NULL), BNN_ERR_STRIDE);
    CHECK_ST(bnn_cuda_sign_forward(1, 1, f, 1, w, 1, NULL, 1, NULL), BNN_ERR_NULL);
    CHECK_ST(bnn_cuda_ste_mask_pack(1, 2, f, 1, w, 1, NULL), BNN_ERR_STRIDE);
    CHECK_ST(bnn_cuda_ste_backward_packed(1, 1, w, 1, f, 1, NULL, 1, NULL), BNN_ERR_NULL);
    CHECK_ST(bnn_cuda_ste_backward_packed(1, 2, w, 1, f, 2, f, 1, NULL), BNN_ERR_STRIDE);
    CHECK_ST(bnn_cuda_squared_hinge_grad(-1, 1, f, lab, f, NULL), BNN_ERR_SHAPE);
    CHECK_ST(bnn_cuda_squared_hinge_grad(1, 1, f, NULL, f, NULL), BNN_ERR_NULL);
    CHECK_ST(bnn_cuda_squared_hinge_grad(0, 1, NULL, NULL, NULL, NULL), BNN_OK);
    if (have_device) {
        float *d = NULL;
        CHECK(cudaMalloc((void **)&d, 64) == cudaSuccess);
        CHECK_ST(bnn_cuda_opt_step(&p, 1, d, f, d, d, NULL), BNN_ERR_DEVICE);
        CHECK(strstr(bnn_cuda_last_error(), "grad = ") != NULL);
        CHECK_ST(bnn_cuda_bn_forward_train(BNN_BN_STANDARD, 1, 1, d, d, d, 1e-5f, 0.1f, f,
                                           NULL, d, d, d, NULL), BNN_ERR_DEVICE);
        CHECK(strstr(bnn_cuda_last_error(), "running_mean = ") != NULL);
        CHECK_ST(bnn_cuda_squared_hinge_grad(1, 1, d, lab, d, NULL), BNN_ERR_DEVICE);
        CHECK(strstr(bnn_cuda_last_error(), "labels = ") != NULL);
        cudaFree(d);
    }
    printf("  training kernels' argument checks  ok\n");
    return 0;
}

int main(int argc, char **argv)
{
    char why[256];
    int devices = 0;
    bnn_status st;
    g_self = argv[0];
    if (argc > 1 && strcmp(argv[1], "--fault") == 0) return fault_child();
    bt_init(argc, argv, "test_cuda_device");
    st = bnn_cuda_available(&devices, why, sizeof why);
    RUN(test_train_args(st == BNN_OK));
    if (st != BNN_OK) {
        printf("test_cuda_device: SKIPPED: no usable CUDA device (%s: %s)\n",
               bnn_status_string(st), why);
        return BT_SKIP;
    }
    printf("test_cuda_device: %s\n", why);
    RUN(test_pack_device());
    RUN(test_gemm_device());
    RUN(test_conv_pool_device());
    RUN(test_pm1_device());
    RUN(test_conv_grad_device());
    RUN(test_quantize_device());
    RUN(test_model_device());
    RUN(test_train_device());
    RUN(test_errors_device());
    printf("test_cuda_device: all passed\n");
    return 0;
}
