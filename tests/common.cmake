# common/ (hex, Result) and platform/ (the OS seam). tools/mingw-check.sh builds the
# same two programs for Windows (tests/portable.cmake) and runs them under Wine.
sqlpost_test(common_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/common_test.cpp LIBS sqlpost_common)
sqlpost_test(platform_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/platform_test.cpp LIBS sqlpost_platform)
