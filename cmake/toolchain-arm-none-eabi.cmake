# Bare-metal build for a Cortex-M4 (with its single-precision FPU) with
# Debian's Arm embedded toolchain (gcc-arm-none-eabi, libnewlib-arm-none-eabi);
# CTest runs the firmware on an emulated MPS2 AN386 board (qemu-system-arm):
#
#   cmake -S . -B build-m4 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-arm-none-eabi.cmake
#   cmake --build build-m4 && ctest --test-dir build-m4
#
# It selects libbnn's bare-metal profile (BNN_BAREMETAL: no threads, no
# file system, no heap) and builds examples/firmware (board mps2-an386) instead of the tests.
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER arm-none-eabi-gcc)
# A bare-metal program needs a linker script and startup code: compile
# checks only, no test links.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
set(BNN_CPU_FLAGS "-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16")
set(CMAKE_C_FLAGS_INIT "${BNN_CPU_FLAGS} -ffunction-sections -fdata-sections")
set(CMAKE_EXE_LINKER_FLAGS_INIT "${BNN_CPU_FLAGS} --specs=nano.specs -nostartfiles -Wl,--gc-sections")
set(BNN_BAREMETAL ON CACHE BOOL "bare-metal profile" FORCE)
# The Cortex-M4 has no popcount instruction; SWAR on 32-bit halves takes
# the fewest instructions there (docs/EMBEDDED.md); -DBNN_POPCOUNT=... overrides.
set(BNN_POPCOUNT swar32 CACHE STRING "popcount of the reference kernels: builtin, swar32 or table8")
# The program is the -kernel of an MPS2 AN386 (Cortex-M4) board; output
# through semihosting; -icount shift=0: the clock advances the same for
# every instruction, so the firmware counts instructions with SysTick.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-system-arm -M mps2-an386 -nographic -monitor none
    -serial none -semihosting-config enable=on,target=native -icount shift=0 -kernel)
