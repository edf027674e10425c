sqlpost_test(payload_test SOURCES payload_test.cpp LIBS sqlpost_replication)
sqlpost_test(replication_test SOURCES replication_test.cpp cluster.cpp LIBS sqlpost_replication)
sqlpost_test(e2e_file_test SOURCES e2e_file_test.cpp LIBS sqlpost_agent)
