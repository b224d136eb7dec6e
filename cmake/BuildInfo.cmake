# BuildInfo.cmake — run after each link of libhakmem.so (POST_BUILD, `cmake -P`):
# writes OUT (libhakmem.build-info next to the library) with the commit of the sources
# the library was just linked from, so a benchmark run can say which code it measured
# even after the tree's HEAD has moved on (bench/compare.sh copies it with the library).
#   cmake -DSRC=<source dir> -DOUT=<file> -P BuildInfo.cmake
# A tree with uncommitted changes under src/, include/ or CMakeLists.txt is marked dirty.
execute_process(COMMAND git -C "${SRC}" rev-parse HEAD
  OUTPUT_VARIABLE commit OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE rc)
if(NOT rc EQUAL 0 OR commit STREQUAL "")
  set(commit unknown)
endif()
execute_process(COMMAND git -C "${SRC}" status --porcelain -- src include CMakeLists.txt
  OUTPUT_VARIABLE changes OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(changes STREQUAL "")
  set(dirty 0)
else()
  set(dirty 1)
endif()
string(TIMESTAMP now "%Y-%m-%dT%H:%M:%SZ" UTC)
file(WRITE "${OUT}" "commit=${commit}\ndirty=${dirty}\nbuilt=${now}\nsource=${SRC}\n")
