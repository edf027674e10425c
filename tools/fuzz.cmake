# libFuzzer drivers (option SQLPOST_FUZZ, clang only). The transport sources are
# compiled a second time, instrumented (fuzzer-no-link + sanitizers), so that the
# fuzzer sees coverage inside the codec without changing the normal libraries.
if(SQLPOST_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "sqlpost: SQLPOST_FUZZ needs clang (-DCMAKE_CXX_COMPILER=clang++)")
  endif()
  set(sqlpost_fuzz_sources)
  foreach(lib sqlpost_common sqlpost_platform sqlpost_transport)
    get_target_property(lib_dir ${lib} SOURCE_DIR)
    get_target_property(lib_sources ${lib} SOURCES)
    foreach(src ${lib_sources})
      list(APPEND sqlpost_fuzz_sources ${lib_dir}/${src})
    endforeach()
  endforeach()
  set(sqlpost_fuzz_flags -fsanitize=address,undefined -fno-omit-frame-pointer -g)

  add_library(sqlpost_transport_fuzz STATIC ${sqlpost_fuzz_sources})
  sqlpost_module(sqlpost_transport_fuzz)
  target_compile_options(sqlpost_transport_fuzz PRIVATE ${sqlpost_fuzz_flags}
                                                        -fsanitize=fuzzer-no-link)
  target_link_libraries(sqlpost_transport_fuzz PUBLIC OpenSSL::Crypto PkgConfig::ZSTD)

  add_executable(fuzz-decode ${CMAKE_CURRENT_LIST_DIR}/fuzz_decode.cpp)
  sqlpost_module(fuzz-decode)
  target_compile_options(fuzz-decode PRIVATE ${sqlpost_fuzz_flags} -fsanitize=fuzzer)
  target_link_options(fuzz-decode PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(fuzz-decode PRIVATE sqlpost_transport_fuzz)

  # fuzz-apply: payload decoding and apply, with schema/ and replication/ instrumented.
  set(sqlpost_core_fuzz_sources)
  foreach(lib sqlpost_schema sqlpost_replication)
    get_target_property(lib_dir ${lib} SOURCE_DIR)
    get_target_property(lib_sources ${lib} SOURCES)
    foreach(src ${lib_sources})
      list(APPEND sqlpost_core_fuzz_sources ${lib_dir}/${src})
    endforeach()
  endforeach()
  add_library(sqlpost_core_fuzz STATIC ${sqlpost_core_fuzz_sources})
  sqlpost_module(sqlpost_core_fuzz)
  target_compile_options(sqlpost_core_fuzz PRIVATE ${sqlpost_fuzz_flags} -fsanitize=fuzzer-no-link)
  target_link_libraries(sqlpost_core_fuzz PUBLIC sqlpost_transport_fuzz SQLite::SQLite3
                                                 nlohmann_json::nlohmann_json)

  add_executable(fuzz-apply ${CMAKE_CURRENT_LIST_DIR}/fuzz_apply.cpp)
  sqlpost_module(fuzz-apply)
  target_compile_options(fuzz-apply PRIVATE ${sqlpost_fuzz_flags} -fsanitize=fuzzer)
  target_link_options(fuzz-apply PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(fuzz-apply PRIVATE sqlpost_core_fuzz)
endif()
