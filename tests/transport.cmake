# Transport tests: codec (encode/open/reassemble, hostile input) and links.
sqlpost_test(transport_codec_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/transport_codec_test.cpp
  LIBS sqlpost_transport)
sqlpost_test(transport_link_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/transport_link_test.cpp
  LIBS sqlpost_transport)
