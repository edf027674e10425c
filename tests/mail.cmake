# Mail link tests against the real servers of tools/mailstack (MAILSTACK_* in the
# environment; fail without them unless SQLPOST_SKIP_MAIL=1). They share the servers'
# "probe" mailbox: RESOURCE_LOCK keeps them from running beside other mailstack tests.
sqlpost_test(mail_link_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/mail_link_test.cpp
  LIBS sqlpost_transport)
set_tests_properties(mail_link_test PROPERTIES RESOURCE_LOCK mailstack)
