# Mail link tests against the real servers of tools/mailstack (MAILSTACK_* in the
# environment; fail without them unless SQLPOST_SKIP_MAIL=1). They share the servers'
# "probe" mailbox: RESOURCE_LOCK keeps them from running beside other mailstack tests.
sqlpost_test(mail_link_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/mail_link_test.cpp
  LIBS sqlpost_transport)
set_tests_properties(mail_link_test PROPERTIES RESOURCE_LOCK mailstack)

# The sqlpost program end to end through the same servers (mailboxes hq, site1, site2).
sqlpost_test(e2e_mail_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/e2e_mail_test.cpp LIBS sqlpost_agent)
set_tests_properties(e2e_mail_test PROPERTIES RESOURCE_LOCK mailstack)

# The README's demo over the real mail servers.
add_test(NAME demo_mail COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/demo_mail.sh ${CMAKE_BINARY_DIR}/test-tmp/demo-mail)
set_tests_properties(demo_mail PROPERTIES RESOURCE_LOCK mailstack SKIP_RETURN_CODE 77
  ENVIRONMENT "SQLPOST_BUILD_DIR=${CMAKE_BINARY_DIR}")
