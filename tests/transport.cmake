# Transport tests: codec (encode/open/reassemble, hostile input) and links.
sqlpost_test(transport_codec_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/transport_codec_test.cpp
  LIBS sqlpost_transport)
sqlpost_test(transport_link_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/transport_link_test.cpp
  LIBS sqlpost_transport)
# Transport behaviour that needs a server answering in ways the real stack does not:
# scripted servers on 127.0.0.1 (tests/mail_reach_support.h), no mail stack needed.
find_package(Threads REQUIRED)
sqlpost_test(transport_reach_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/transport_reach_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/mail_reach_support.cpp LIBS sqlpost_transport Threads::Threads)
