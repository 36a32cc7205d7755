# The firmware's linker map must name no allocator (malloc, free, their
# reentrant forms, sbrk) and no stdio: cmake -DMAP=bnn_firmware.map -P check_map.cmake
file(READ ${MAP} map)
foreach(sym malloc calloc realloc free _malloc_r _free_r _sbrk _sbrk_r printf _printf_r fopen)
  string(REGEX MATCH "[ \t\n]${sym}[ \t\n]" hit "${map}")
  if(hit)
    message(FATAL_ERROR "${MAP}: the firmware links '${sym}'")
  endif()
endforeach()
string(REGEX MATCH "[ \t\n]bnn_model_run[ \t\n]" hit "${map}")
if(NOT hit)
  message(FATAL_ERROR "${MAP}: no bnn_model_run: not the firmware's map?")
endif()
message(STATUS "${MAP}: no allocator, no stdio")
