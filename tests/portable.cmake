# SQLPOST_PORTABLE_ONLY: the unit tests of common/ and platform/, built with nothing
# but the doctest header. SQLPOST_DOCTEST_INCLUDE names a folder holding
# doctest/doctest.h when the compiler does not find it (a cross compiler does not
# search /usr/include). Under a cross compiler, ctest runs them through
# CMAKE_CROSSCOMPILING_EMULATOR (tools/mingw-check.sh: Wine).
set(SQLPOST_DOCTEST_INCLUDE "" CACHE PATH "Folder holding doctest/doctest.h")

foreach(name common_test platform_test)
  add_executable(${name} ${CMAKE_CURRENT_LIST_DIR}/test_main.cpp ${CMAKE_CURRENT_LIST_DIR}/${name}.cpp)
  target_compile_options(${name} PRIVATE ${SQLPOST_WARNINGS})
  if(SQLPOST_DOCTEST_INCLUDE)
    target_include_directories(${name} SYSTEM PRIVATE ${SQLPOST_DOCTEST_INCLUDE})
  endif()
  add_test(NAME ${name} COMMAND ${name})
endforeach()
target_link_libraries(common_test PRIVATE sqlpost_common)
target_link_libraries(platform_test PRIVATE sqlpost_platform)
