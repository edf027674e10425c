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

# The HTML report (sqlpost report): checked as text, and rendered in headless Chromium
# (Debian's chromium, installed by tools/install-deps.sh). The rendering test is
# registered only where chromium is found, so a machine without it still builds and
# runs everything else.
sqlpost_test(ops_report_test SOURCES ops_report_test.cpp LIBS sqlpost_agent
             ARGS --test-suite-exclude=ops-report-render)
find_program(SQLPOST_CHROMIUM NAMES chromium chromium-browser)
if(SQLPOST_CHROMIUM)
  add_test(NAME ops_report_render_test COMMAND ops_report_test --test-suite=ops-report-render)
  set_tests_properties(ops_report_render_test PROPERTIES ENVIRONMENT
    "SQLPOST_BIN=$<TARGET_FILE:sqlpost>;SQLPOST_TEST_TMP=${CMAKE_BINARY_DIR}/test-tmp;SQLPOST_CHROMIUM=${SQLPOST_CHROMIUM}")
else()
  message(STATUS "chromium not found: ops_report_render_test is not registered "
                 "(tools/install-deps.sh installs it)")
endif()

# Per-partner send schedules through the program (site schedule, status, run --send-now).
sqlpost_test(agent_send_schedule_test SOURCES agent_send_schedule_test.cpp LIBS sqlpost_agent)
