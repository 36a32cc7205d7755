// The public header compiles as C++ and links from C++.
#include "bnn.h"
#include <cstdio>

int main()
{
    if (bnn_version_number() != BNN_VERSION_NUMBER) {
        std::printf("version mismatch\n");
        return 1;
    }
    bnn_epilogue e = {};
    e.kind = BNN_EPI_INT32;
    int32_t c = 7;
    // Zero-size products are valid and write nothing.
    if (bnn_gemm(0, 1, 1, nullptr, 1, nullptr, 1, &e, &c, 1) != BNN_OK || c != 7)
        return 1;
    std::printf("isa %s\n", bnn_isa_name());
    return 0;
}
