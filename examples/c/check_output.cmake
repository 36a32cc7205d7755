# Runs a program and checks its exit status and output (a CTest helper;
# PASS_REGULAR_EXPRESSION alone would ignore the exit status).
#
#   cmake -DPROGRAM=path "-DARGS=a;b;c" -DEXPECT_RC=0|nonzero
#         "-DEXPECT=regex;regex..." ["-DREJECT=regex;..."] -P check_output.cmake
#
# PROGRAM may be a list, an emulator and its options before the path
# ("qemu-aarch64;-L;SYSROOT;path": CMAKE_CROSSCOMPILING_EMULATOR).
# Every EXPECT regex must match the combined stdout and stderr; no REJECT
# regex may match.
if(NOT DEFINED PROGRAM OR NOT DEFINED EXPECT_RC)
  message(FATAL_ERROR "check_output.cmake needs -DPROGRAM=... and -DEXPECT_RC=...")
endif()
execute_process(COMMAND ${PROGRAM} ${ARGS}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
set(all "${out}${err}")
message("${all}")
if(EXPECT_RC STREQUAL "nonzero")
  if(rc STREQUAL "0" OR NOT rc MATCHES "^[0-9]+$")
    message(FATAL_ERROR "expected a non-zero exit status, got '${rc}'")
  endif()
elseif(NOT rc STREQUAL EXPECT_RC)
  message(FATAL_ERROR "expected exit status ${EXPECT_RC}, got '${rc}'")
endif()
foreach(re IN LISTS EXPECT)
  if(NOT all MATCHES "${re}")
    message(FATAL_ERROR "the output does not match '${re}'")
  endif()
endforeach()
foreach(re IN LISTS REJECT)
  if(all MATCHES "${re}")
    message(FATAL_ERROR "the output matches '${re}', which it must not")
  endif()
endforeach()
