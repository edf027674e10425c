# Installation and the Debian package, checked from the outside (shell scripts).
# Both run the install rules: RESOURCE_LOCK keeps them from running at once.
add_test(NAME install_test COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/install_test.sh
         ${CMAKE_BINARY_DIR} ${CMAKE_BINARY_DIR}/test-tmp/install ${PROJECT_VERSION})
add_test(NAME deb_test COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/deb_test.sh
         ${CMAKE_BINARY_DIR} ${CMAKE_BINARY_DIR}/test-tmp/deb ${PROJECT_VERSION})
set_tests_properties(install_test deb_test PROPERTIES RESOURCE_LOCK sqlpost_install)

# The command line's honest interfaces, end to end through the program: exit codes,
# messages, log lines, config --all, help.
sqlpost_test(ops_cli_test SOURCES ops_cli_test.cpp LIBS sqlpost_agent)
target_compile_definitions(ops_cli_test PRIVATE SQLPOST_SOURCE_DIR="${PROJECT_SOURCE_DIR}")

# History an administrator reads: runs, message log, statistics, queues (sqlpost log/stats/queue).
sqlpost_test(ops_history_test SOURCES ops_history_test.cpp LIBS sqlpost_agent)

# Alerts: each provoked and cleared; status text, run exit code, metrics file.
sqlpost_test(ops_alerts_test SOURCES ops_alerts_test.cpp LIBS sqlpost_agent)
