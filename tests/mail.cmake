# Mail link tests against the real servers of tools/mailstack (MAILSTACK_* in the
# environment; fail without them unless SQLPOST_SKIP_MAIL=1). They share the servers'
# "probe" mailbox: RESOURCE_LOCK keeps them from running beside other mailstack tests.
sqlpost_test(mail_link_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/mail_link_test.cpp
  LIBS sqlpost_transport)
set_tests_properties(mail_link_test PROPERTIES RESOURCE_LOCK mailstack)

# The sqlpost program end to end through the same servers (mailboxes hq, site1, site2).
sqlpost_test(e2e_mail_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/e2e_mail_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/mail_support.cpp LIBS sqlpost_agent)
set_tests_properties(e2e_mail_test PROPERTIES RESOURCE_LOCK mailstack)
target_link_libraries(e2e_mail_test PRIVATE util)  # forkpty (glibc < 2.34 keeps it in libutil)

# The same end-to-end cases against the second real mail stack (tools/mailstack2: Exim +
# GNU Mailutils), but for the three about Postfix or Dovecot themselves. Skipped (77)
# when that stack is not running ($MAILSTACK2_DIR/mailstack.env).
add_test(NAME e2e_mail_stack2 COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/mail_stack2.sh
  $<TARGET_FILE:e2e_mail_test>)
set_tests_properties(e2e_mail_stack2 PROPERTIES RESOURCE_LOCK mailstack2 SKIP_RETURN_CODE 77
  ENVIRONMENT "SQLPOST_BIN=$<TARGET_FILE:sqlpost>;SQLPOST_TEST_TMP=${CMAKE_BINARY_DIR}/test-tmp")

# The README's demo over the real mail servers.
add_test(NAME demo_mail COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/demo_mail.sh ${CMAKE_BINARY_DIR}/test-tmp/demo-mail)
set_tests_properties(demo_mail PROPERTIES RESOURCE_LOCK mailstack SKIP_RETURN_CODE 77
  ENVIRONMENT "SQLPOST_BUILD_DIR=${CMAKE_BINARY_DIR}")

# The sqlpost program end to end over the real vsftpd of tools/ftpstack (FTPSTACK_* in
# the environment). It has its own main: without FTPSTACK_HOST it exits 77 (skipped).
add_executable(e2e_ftp_test ${CMAKE_CURRENT_LIST_DIR}/e2e_ftp_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/support.cpp)
target_include_directories(e2e_ftp_test PRIVATE ${PROJECT_SOURCE_DIR})
target_compile_options(e2e_ftp_test PRIVATE ${SQLPOST_WARNINGS})
target_link_libraries(e2e_ftp_test PRIVATE doctest::doctest sqlpost_schema sqlpost_transport
  nlohmann_json::nlohmann_json)
add_test(NAME e2e_ftp_test COMMAND e2e_ftp_test)
set_tests_properties(e2e_ftp_test PROPERTIES SKIP_RETURN_CODE 77 ENVIRONMENT
  "SQLPOST_BIN=$<TARGET_FILE:sqlpost>;SQLPOST_TEST_TMP=${CMAKE_BINARY_DIR}/test-tmp")

# Direct send (smtp.mode=direct) through a real DNS server (dnsmasq, tools/dnsstack,
# started and stopped by each test case) and the mailstack's Postfix as the MX.
sqlpost_test(e2e_direct_mail_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/e2e_direct_mail_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/mail_support.cpp
  LIBS sqlpost_agent)
set_tests_properties(e2e_direct_mail_test PROPERTIES RESOURCE_LOCK mailstack)
set_property(TEST e2e_direct_mail_test APPEND PROPERTY ENVIRONMENT
  "SQLPOST_SOURCE_DIR=${PROJECT_SOURCE_DIR}")

# OAuth2 bearer tokens (`*.oauth2_token_command`) end to end through the same servers:
# the OAuth2-only mailboxes ohub and orem, checked by Dovecot at the stack's local
# token introspection endpoint (tools/mailstack/oauth_introspect.py).
sqlpost_test(e2e_oauth_mail_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/e2e_oauth_mail_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/mail_support.cpp
  LIBS sqlpost_agent)
set_tests_properties(e2e_oauth_mail_test PROPERTIES RESOURCE_LOCK mailstack)

# Push delivery (IMAP IDLE) through the same servers: the remote runs --every 3600 in
# the background and the hub's change must still arrive (mailboxes hq, site1).
add_test(NAME push_mail COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/push_mail.sh
  ${CMAKE_BINARY_DIR}/test-tmp/push-mail)
set_tests_properties(push_mail PROPERTIES RESOURCE_LOCK mailstack SKIP_RETURN_CODE 77
  ENVIRONMENT "SQLPOST_BIN=$<TARGET_FILE:sqlpost>")
