sqlpost_test(payload_test SOURCES payload_test.cpp LIBS sqlpost_replication)
sqlpost_test(replication_test SOURCES replication_test.cpp cluster.cpp LIBS sqlpost_replication)
sqlpost_test(e2e_file_test SOURCES e2e_file_test.cpp LIBS sqlpost_agent)
add_test(NAME demo COMMAND bash ${PROJECT_SOURCE_DIR}/tools/demo.sh ${CMAKE_BINARY_DIR}/test-tmp/demo)
set_tests_properties(demo PROPERTIES ENVIRONMENT "SQLPOST_BUILD_DIR=${CMAKE_BINARY_DIR}")
sqlpost_test(conflicts_test SOURCES conflicts_test.cpp cluster.cpp LIBS sqlpost_replication)
sqlpost_test(subsets_test SOURCES subsets_test.cpp cluster.cpp LIBS sqlpost_replication)
sqlpost_test(scale_test SOURCES scale_test.cpp cluster.cpp LIBS sqlpost_replication)
sqlpost_test(chaos_test SOURCES chaos_test.cpp cluster.cpp LIBS sqlpost_replication)
# The long convergence run (200 seeds), not part of the default tests.
add_custom_target(chaos-long
  COMMAND ${CMAKE_COMMAND} -E env SQLPOST_CHAOS_SEEDS=200 $<TARGET_FILE:chaos_test>
  DEPENDS chaos_test USES_TERMINAL)
sqlpost_test(bounce_test SOURCES bounce_test.cpp cluster.cpp LIBS sqlpost_agent)
sqlpost_test(restore_test SOURCES restore_test.cpp cluster.cpp LIBS sqlpost_replication)
sqlpost_test(send_schedule_test SOURCES send_schedule_test.cpp cluster.cpp LIBS sqlpost_replication)
sqlpost_test(rekey_test SOURCES rekey_test.cpp cluster.cpp LIBS sqlpost_replication)
