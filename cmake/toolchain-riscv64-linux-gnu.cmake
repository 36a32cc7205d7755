# Cross build for 64-bit RISC-V Linux with the GNU cross compilers of
# Debian and Ubuntu (gcc-riscv64-linux-gnu, g++-riscv64-linux-gnu), for
# RV64GC plus the Zbb bit-manipulation extension, whose `cpop` instruction
# is the popcount of the reference kernels (__builtin_popcountll);
# CTest runs the test programs under qemu-user (qemu-riscv64) on a CPU with
# Zbb:
#
#   cmake -S . -B build-rv64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-riscv64-linux-gnu.cmake
#   cmake --build build-rv64 && ctest --test-dir build-rv64
#
# -DBNN_RISCV_MARCH=rv64gc builds for cores without Zbb (a libgcc popcount).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR riscv64)
set(CMAKE_C_COMPILER riscv64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER riscv64-linux-gnu-g++)
set(BNN_RISCV_MARCH rv64gc_zbb CACHE STRING "the -march of the RISC-V build")
set(CMAKE_C_FLAGS_INIT "-march=${BNN_RISCV_MARCH}")
set(CMAKE_CXX_FLAGS_INIT "-march=${BNN_RISCV_MARCH}")
set(BNN_CROSS_SYSROOT /usr/riscv64-linux-gnu CACHE PATH "Target libraries for qemu -L")
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-riscv64 -cpu rv64,zbb=true -L ${BNN_CROSS_SYSROOT})
