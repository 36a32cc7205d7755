# The install tests (registered in tests/CMakeLists.txt): this build
# installed into a fresh prefix, then a first program (app.c) built against
# it with exactly the link lines README.md gives, and run.
#
#   cmake -DMODE=install       -DBUILD=dir -DPREFIX=dir [-DCONFIG=c] -P run.cmake
#   cmake -DMODE=pkg-config    -DPREFIX=dir -DLIBDIR=lib -DWORK=dir -DCC=compiler
#         -DPKG_CONFIG=pkg-config [common options] -P run.cmake
#   cmake -DMODE=find-package  -DPREFIX=dir -DLIBDIR=lib -DWORK=dir -DCC=compiler
#         -DGENERATOR=g [-DTOOLCHAIN=file] [-DCUDA_ROOT=dir] [common options] -P run.cmake
#
# Common options: "-DEMULATOR=prog;args" runs the program (a cross build's
# CMAKE_CROSSCOMPILING_EMULATOR); -DRUNTIME_PATH=dir is added to the
# loader's path (the CUDA runtime's directory).
cmake_minimum_required(VERSION 3.18)
set(here ${CMAKE_CURRENT_LIST_DIR})

# Runs a command (in WORK, where that exists) and stops on failure.
function(run)
  set(dir ".")
  if(WORK AND IS_DIRECTORY "${WORK}")
    set(dir "${WORK}")
  endif()
  execute_process(COMMAND ${ARGN} WORKING_DIRECTORY "${dir}"
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message("${out}${err}")
  if(NOT rc STREQUAL "0")
    string(REPLACE ";" " " line "${ARGN}")
    message(FATAL_ERROR "failed (${rc}): ${line}")
  endif()
endfunction()

# Runs the built program, which must print "ok".  A shared libbnn is found
# in the prefix (the README's link lines set no run path).
function(run_app program)
  set(path "${PREFIX}/${LIBDIR}")
  if(RUNTIME_PATH)
    string(APPEND path ":${RUNTIME_PATH}")
  endif()
  if(DEFINED ENV{LD_LIBRARY_PATH})
    string(APPEND path ":$ENV{LD_LIBRARY_PATH}")
  endif()
  set(ENV{LD_LIBRARY_PATH} "${path}")
  execute_process(COMMAND ${EMULATOR} ${program}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message("${out}${err}")
  if(NOT rc STREQUAL "0" OR NOT out MATCHES "^ok: libbnn ")
    message(FATAL_ERROR "${program} failed (${rc})")
  endif()
endfunction()

if(MODE STREQUAL "install")
  file(REMOVE_RECURSE "${PREFIX}")
  set(config)
  if(CONFIG)
    set(config --config ${CONFIG})
  endif()
  run(${CMAKE_COMMAND} --install "${BUILD}" --prefix "${PREFIX}" ${config})

elseif(MODE STREQUAL "pkg-config")
  # README: cc -o app app.c $(pkg-config --cflags --libs bnn)
  # (cc is this build's C compiler; only the installed bnn.pc is visible)
  file(REMOVE_RECURSE "${WORK}")
  file(MAKE_DIRECTORY "${WORK}")
  set(ENV{PKG_CONFIG_LIBDIR} "${PREFIX}/${LIBDIR}/pkgconfig")
  unset(ENV{PKG_CONFIG_PATH})
  run(${PKG_CONFIG} --cflags --libs bnn)
  run(sh -c "\"$1\" -o app \"$2\" $(\"$3\" --cflags --libs bnn)" sh
      "${CC}" "${here}/app.c" "${PKG_CONFIG}")
  run_app("${WORK}/app")

elseif(MODE STREQUAL "find-package")
  # README: find_package(bnn REQUIRED) + target_link_libraries(app PRIVATE bnn::bnn)
  file(REMOVE_RECURSE "${WORK}")
  set(args -S "${here}" -B "${WORK}" -G "${GENERATOR}" "-DCMAKE_C_COMPILER=${CC}"
           "-DCMAKE_PREFIX_PATH=${PREFIX}" -DCMAKE_BUILD_TYPE=Release)
  if(TOOLCHAIN)
    list(APPEND args "-DCMAKE_TOOLCHAIN_FILE=${TOOLCHAIN}")
  endif()
  if(CUDA_ROOT)
    list(APPEND args "-DCUDAToolkit_ROOT=${CUDA_ROOT}")
  endif()
  run(${CMAKE_COMMAND} ${args})
  run(${CMAKE_COMMAND} --build "${WORK}" --config Release)
  if(EXISTS "${WORK}/Release/app")
    run_app("${WORK}/Release/app")
  else()
    run_app("${WORK}/app")
  endif()

else()
  message(FATAL_ERROR "run.cmake: MODE must be install, pkg-config or find-package, got '${MODE}'")
endif()
