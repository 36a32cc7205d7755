# Cross build for 64-bit Arm Linux with the GNU cross compilers of Debian
# and Ubuntu (gcc-aarch64-linux-gnu, g++-aarch64-linux-gnu); CTest runs the
# test programs under qemu-user (qemu-aarch64):
#
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-aarch64-linux-gnu.cmake
#   cmake --build build-aarch64 && ctest --test-dir build-aarch64
#
# Only compiler names and the emulator: no CMAKE_FIND_ROOT_PATH, so the
# build must not rely on host-side find_library() results for the target.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# Where the target's C library and loader are (Debian's cross packages
# install them under /usr/aarch64-linux-gnu); qemu reads them from there.
set(BNN_CROSS_SYSROOT /usr/aarch64-linux-gnu CACHE PATH "Target libraries for qemu -L")
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L ${BNN_CROSS_SYSROOT})
