# Bare-metal build for a 32-bit RISC-V microcontroller (RV32IMC: no FPU,
# no popcount instruction) with Debian's gcc-riscv64-unknown-elf and
# picolibc-riscv64-unknown-elf; CTest runs the firmware on qemu's RISC-V
# `virt` board (qemu-system-riscv32, from qemu-system-misc):
#
#   cmake -S . -B build-rv32 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-riscv32-none-elf.cmake
#   cmake --build build-rv32 && ctest --test-dir build-rv32
#
# It selects libbnn's bare-metal profile (BNN_BAREMETAL) and builds
# examples/firmware (board riscv32-virt) instead of the tests.
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR riscv32)
set(CMAKE_C_COMPILER riscv64-unknown-elf-gcc)
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
# The code is RV32IMC (Zicsr: the counters are CSRs); the C library comes from the toolchain's rv32imac
# multilib (the nearest one: its memcpy and friends use no atomics).
set(CMAKE_C_FLAGS_INIT "-march=rv32imc_zicsr -mabi=ilp32 -ffunction-sections -fdata-sections --specs=picolibc.specs")
set(CMAKE_EXE_LINKER_FLAGS_INIT "-march=rv32imac -mabi=ilp32 -nostartfiles -Wl,--gc-sections")
set(BNN_BAREMETAL ON CACHE BOOL "bare-metal profile" FORCE)
set(BNN_POPCOUNT swar32 CACHE STRING "popcount of the reference kernels: builtin, swar32 or table8")
# -bios none: the ELF is the whole machine's software; -icount shift=0:
# minstret counts the instructions the firmware retires.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-system-riscv32 -M virt -bios none -nographic -monitor none
    -serial none -semihosting-config enable=on,target=native -icount shift=0 -kernel)
